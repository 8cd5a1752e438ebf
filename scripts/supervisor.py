#!/usr/bin/python3
"""Starts, watches, restarts and rescales the pipeline's programs.

Modelled on Circus: one watcher per program, and per strategy group G
(config [[strategy.groups]]) its instances G-0..G-(n-1); a start order,
SIGTERM -> grace -> SIGKILL, exponential back-off and a flapping guard;
unlike supervisord, a group's instance count changes at run time, one
process restarts without its group, and crash restarts are never closer than
supervisor.backoff_min_ms. Standard library only; single thread.

The code is the package tp_supervisor/ beside this file (a watcher per
process, an arbiter, a controller; settings, sharding, policy, report, cli);
this file is its entry point and re-exports its names for the tests and tools
that `import supervisor`.

The start order and the operations are described in tp_supervisor/arbiter.py.

States:
  STARTING  spawned; becomes RUNNING when its stats file carries its own pid
            or after it has stayed alive for STARTUP_S (1 s), whichever is first
  RUNNING   up
  HUNG      alive, but its heartbeat (its stats file, rewritten every
            run.stats_interval_ms) has not changed for supervisor.hang_timeout_ms;
            judged only from the second heartbeat of that pid on (a program may
            write its first stats file before a long start-up step: the executor
            does, before its start-up reconciliation), so a long start-up is
            never HUNG. Back to RUNNING on the next heartbeat; with
            supervisor.restart_hung = true it is SIGKILLed (a stopped process
            cannot handle SIGTERM) and restarted like a crash (back-off, flapping)
  STOPPING  SIGTERM (then SIGCONT, so that a stopped process can exit cleanly)
            sent; SIGKILL after supervisor.stop_grace_ms
  BACKOFF   exited without being asked to; restarts after the back-off delay
            (backoff_min_ms doubling up to backoff_max_ms; the doubling is
            forgotten once a process has run healthy_after_ms)
  STOPPED   stopped on request (or never started)
  FATAL     flapping: it would need more than flap_max_restarts restarts within
            flap_window_s; left stopped (`start NAME` tries again), the rest run on

Control: a Unix stream socket ([supervisor].control, default
<run.dir>/supervisor.sock). One JSON request line, one JSON reply line:
  {"cmd": "status"}
  {"cmd": "stop"|"start"|"restart", "name": "executor"|"trend"|"trend-1"|"trend:1"|"strategy"}
  {"cmd": "scale", "name": "trend", "n": 3}   (no "name": the only group)
  {"cmd": "shutdown"}
Replies: {"ok": true, ...} or {"ok": false, "error": "..."}. Commands that
change processes reply when the change is done (stopped, or spawned again).
With [supervisor] control_port the same requests come over tcp as well,
sealed with the shared secret (tp_supervisor/remote.py).

Several hosts ([[hosts]] in the file, README "Several machines"): --host NAME
runs that host's share (its programs and the shards placed on it), in the
same start order; --all-hosts runs every host's processes here; neither is
refused. A scale of a group spread over hosts comes from tpctl in two
phases ({"cmd": "scale", ..., "phase": "stop"|"start"}, controller.py).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from tp_supervisor.arbiter import Arbiter, Supervisor  # noqa: E402,F401
from tp_supervisor.cli import main  # noqa: E402,F401
from tp_supervisor.controller import Client, Controller  # noqa: E402,F401
from tp_supervisor.policy import Heartbeat, RestartPolicy  # noqa: E402,F401
from tp_supervisor.settings import (  # noqa: E402,F401
    DEFAULT_INSTRUMENTS, MAX_INSTANCES, SUPERVISOR_BOOLS, SUPERVISOR_INTS, ConfigError,
    Settings, StrategyGroup, apply_override, control_path, default_groups, load_settings,
    parse_settings)
from tp_supervisor.sharding import fnv1a64, instruments_for_shard, shard_of  # noqa: E402,F401
from tp_supervisor.states import (  # noqa: E402,F401
    BACKOFF, FATAL, HUNG, PROGRAMS, RUNNING, SCALABLE, STARTING, STARTUP_S, STOPPED,
    STOPPING, TICK_S)
from tp_supervisor.stats import read_stats, stats_signature  # noqa: E402,F401
from tp_supervisor.watcher import Proc, exit_reason  # noqa: E402,F401

SCRIPTS_DIR = os.path.dirname(os.path.realpath(__file__))

if __name__ == "__main__":
    sys.exit(main())
