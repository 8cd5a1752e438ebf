"""Both strategy runtimes serve Prometheus metrics: a C++ strategy (group cpp,
every_nth) and a Python one (group py, tests' EveryNth) against the real
gateway, each with metrics.port set. Their /metrics pass `promtool check
metrics`, carry the same families with the same types and helps (one
dashboard, one set of alert rules), say what their stats files say once the
feed has stopped (ticks received, signals sent and pending, gaps), and
tp_strategy_feed_alive goes from 1 while the gateway publishes to 0 after
it is stopped. A taken port fails either runtime at start, naming it.

Programs run in a temporary directory on ipc:// endpoints; metrics listen on
free loopback ports; every wait polls a stats file or /metrics with a
deadline; children are always killed."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from waiting import read_json, wait_for  # noqa: E402

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PYTHON = sys.executable
PROMTOOL = shutil.which("promtool")
TICKS = 3000

CONFIG = """
[run]
dir = "{run_dir}"
stats_interval_ms = 200
[strategy]
feed_timeout_ms = 1000
[endpoints]
{endpoints}
[[strategy.groups]]
name = "cpp"
kind = "every_nth"
instances = 1
[strategy.groups.params]
n = 10
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "{here}"
instances = 1
[strategy.groups.params]
n = 10
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, ""


def samples(text):
    """{(name, labels text): value} of an exposition's samples."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name, _, labels = series.partition("{")
            out[(name, labels.rstrip("}"))] = float(value)
    return out


def families(text):
    """The # HELP and # TYPE lines, in order."""
    return [line for line in text.splitlines() if line.startswith("# ")]


class Deployment:
    """The gateway, a C++ strategy (cpp-0) and a Python one (py-0)."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_strategy_metrics_")
        self.dir = self.tmp.name
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir)
        endpoints = "".join(f'{k} = "ipc://{self.dir}/{k}.sock"\n'
                            for k in ("ticks", "signals", "order_events", "orders", "dead_letters"))
        self.config = os.path.join(self.dir, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(run_dir=self.run_dir, endpoints=endpoints, here=HERE))
        self.procs = {}
        self.ports = {}

    def start(self, name, *sets, port=None, args=()):
        """Starts `name` (gateway, cpp-0 or py-0) with its metrics on a port of its own."""
        self.ports[name] = port or free_port()
        common = ["--config", self.config, "--set", f"metrics.port={self.ports[name]}"]
        if name == "gateway":
            command = [os.path.join(BIN_DIR, "gateway"), *common]
        elif name == "cpp-0":
            command = [os.path.join(BIN_DIR, "strategy"), *common, "--group", "cpp"]
        else:
            command = [PYTHON, "-m", "tp_strategy", *common, "--group", "py"]
        for s in sets:
            command += ["--set", s]
        command += list(args)
        with open(self.log_path(name), "ab") as log:
            self.procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.procs[name]

    def wait_up(self, name):
        wait_for(lambda: self.stats(name) and http_get(self.url(name))[0] == 200, 15,
                 what=f"{name}'s stats and /metrics", detail=lambda: self.log(name))

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}/metrics"

    def metrics(self, name):
        status, body = http_get(self.url(name))
        assert status == 200, (name, status, body)
        return body

    def sample(self, name, metric):
        """The one sample of `metric` in `name`'s /metrics."""
        found = [v for (n, _), v in samples(self.metrics(name)).items() if n == metric]
        assert len(found) == 1, (name, metric, found)
        return found[0]

    def log_path(self, name):
        return os.path.join(self.dir, name + ".log")

    def log(self, name):
        try:
            with open(self.log_path(name)) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stats(self, name):
        return read_json(os.path.join(self.run_dir, f"{name}.stats.json"))

    def stop(self, name, timeout=10.0):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout)

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        self.tmp.cleanup()


@unittest.skipUnless(BIN_DIR, "TP_BIN_DIR is not set (ctest sets it)")
class StrategyMetrics(unittest.TestCase):
    def setUp(self):
        self.d = Deployment()
        self.addCleanup(self.d.close)

    def test_both_runtimes_serve_the_same_metrics_as_their_stats(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian: apt-get install prometheus)")
        d = self.d
        strategies = ("cpp-0", "py-0")
        for name in strategies:
            d.start(name)
        for name in strategies:
            d.wait_up(name)
            self.assertEqual(d.sample(name, "tp_strategy_feed_alive"), 0, "no gateway yet: no feed")
        # The strategies dial the gateway's ipc:// endpoint again every
        # network.reconnect_ms: the delay lets them subscribe before the first
        # tick (a tick missed then is no gap: the series starts at the first seen).
        d.start("gateway", "gateway.rate=1000", f"gateway.max_ticks={TICKS}", args=["--start-delay-ms", "500"])
        d.wait_up("gateway")

        # While the gateway publishes: the feed is alive in both.
        for name in strategies:
            wait_for(lambda: d.sample(name, "tp_strategy_feed_alive") == 1
                     and d.sample(name, "tp_strategy_ticks_received_total") > 0, 10,
                     what=f"{name}: feed alive and ticks counted", detail=lambda: d.log(name))

        # After the last tick the figures stop moving (the gateway still
        # heartbeats); the snapshot published with the stats file says the same.
        wait_for(lambda: (d.stats("gateway") or {}).get("ticks_published") == TICKS, 15,
                 what=f"{TICKS} ticks published", detail=lambda: d.log("gateway"))
        texts = {}
        for name in strategies:
            received = self.settled(name)
            self.assertGreater(received, TICKS * 0.8, f"{name}: most ticks after the start delay")
            figures = {"tp_strategy_ticks_received_total": "ticks_received",
                       "tp_strategy_signals_sent_total": "signals_emitted",
                       "tp_strategy_signals_pending": "signals_pending",
                       "tp_strategy_sequence_gaps_total": "gaps"}

            def agree():
                stats, got = d.stats(name), samples(d.metrics(name))
                seen = {m: v for (n, _), v in got.items() for m in figures if n == m}
                return seen == {m: float(stats[k]) for m, k in figures.items()} and seen

            seen = wait_for(agree, 5, what=f"{name}: metrics == stats", detail=lambda: str(d.stats(name)))
            self.assertEqual(seen["tp_strategy_ticks_received_total"], received)
            self.assertGreater(seen["tp_strategy_signals_sent_total"], received // 10 - 10,
                               "every 10th tick of each of the instruments, the feed's first tick suppressed")
            self.assertEqual(seen["tp_strategy_sequence_gaps_total"], 0)
            text = texts[name] = d.metrics(name)
            check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                                   timeout=30)
            self.assertEqual(check.returncode, 0, f"{name}:\n{check.stdout}{check.stderr}\n{text}")
            group = name.split("-")[0]
            labels = f'program="strategy",process="{name}",group="{group}"'
            for family in ("tp_strategy_ticks_received_total", "tp_strategy_signals_stale_total",
                           "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                           "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes",
                           "tp_metrics_snapshot_timestamp_seconds"):
                self.assertIn(f"{family}{{{labels}}} ", text, f"{name}: {family}")
            runtime = {"cpp-0": "cpp", "py-0": "python"}[name]
            self.assertIn(f'tp_strategy_info{{{labels},runtime="{runtime}",kind=', text)
            latency = samples(text)[("tp_strategy_tick_latency_seconds_count", labels)]
            self.assertEqual(latency, received, "one latency per tick received")

        # One dashboard for both: the same families, types and helps, in the same order.
        self.assertEqual(families(texts["cpp-0"]), families(texts["py-0"]))

        # The gateway gone, its heartbeats stop: the feed dies in both.
        self.assertEqual(d.stop("gateway"), 0)
        for name in strategies:
            wait_for(lambda: d.sample(name, "tp_strategy_feed_alive") == 0, 10,
                     what=f"{name}: tp_strategy_feed_alive 0 after the gateway stopped",
                     detail=lambda: d.metrics(name))
            self.assertFalse(d.stats(name)["feed_alive"])
        for name in strategies:
            self.assertEqual(d.stop(name), 0, d.log(name))
            self.assertEqual(http_get(d.url(name), timeout=2)[0], 0, f"{name}: the endpoint is gone with it")

    def settled(self, name):
        """The strategy's ticks_received once the feed has stopped: the same
        in two stats files written one after the other, the gateway done."""
        history = []

        def same_twice():
            stats = self.d.stats(name) or {}
            if stats.get("ts_ns") and (not history or history[-1][0] != stats["ts_ns"]):
                history.append((stats["ts_ns"], stats["ticks_received"]))
            return len(history) >= 2 and history[-1][1] == history[-2][1] and history[-1][1]

        return wait_for(same_twice, 15, what=f"{name}: ticks_received settled", detail=lambda: str(history[-5:]))

    def test_a_taken_port_fails_either_runtime_at_start(self):
        d = self.d
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            for name in ("cpp-0", "py-0"):
                p = d.start(name, port=port)
                self.assertEqual(p.wait(15), 1, d.log(name))
                self.assertIn(f"metrics: cannot listen on 127.0.0.1:{port}", d.log(name))
                self.assertIsNone(d.stats(name), f"{name}: failed before its first stats")


if __name__ == "__main__":
    unittest.main()
