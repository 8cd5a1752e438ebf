"""The pipeline's supervisor, shaped like Circus: one watcher per process
(watcher.py), an arbiter running the loop (arbiter.py), a controller on the
control socket (controller.py); around them the pure parts: settings.py
(config), sharding.py (FNV-1a, as common/include/common/sharding.hpp),
policy.py (back-off, flapping guard, heartbeat), states.py, stats.py, and
report.py (status, status line, summary), cli.py (the command line).
scripts/supervisor.py and scripts/tpctl are the entry points. Standard
library only; portfolio.py's watcher, which keeps the executor's last
valuation for the summary, runs as a process of its own (pyzmq, msgpack)."""
