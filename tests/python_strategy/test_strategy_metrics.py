"""Both strategy runtimes serve Prometheus metrics: a C++ strategy (group cpp,
every_nth) and a Python one (group py, tests' EveryNth) against the real
gateway, each with metrics.port set. Their /metrics pass `promtool check
metrics`, carry the same families with the same types and helps (one
dashboard, one set of alert rules), say what their stats files say once the
feed has stopped (every figure of the file, each with its metric: a stats key
added without one fails), and tp_strategy_feed_alive goes from 1 while the
gateway publishes to 0 after it is stopped. A taken port fails either
runtime at start, naming it. (StrategyMetrics, tier process.)

A real Prometheus (Debian's `prometheus`) scraping both with the project's
alert rules (config/prometheus/alerts.yml) fires TpFeedDead for both while
no gateway runs, resolves it once the feed is alive, and reads the same
ticks received as the stats files and a tick latency quantile
(RealPrometheusStrategies, tier system).

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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from ports import free_port  # noqa: E402
from prom import PROMETHEUS, Prometheus, http_get  # noqa: E402
from waiting import read_json, wait_for  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
ALERT_RULES = os.path.join(REPO, "config", "prometheus", "alerts.yml")
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


def samples(text):
    """{(name, labels text): value} of an exposition's samples."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name, _, labels = series.partition("{")
            out[(name, labels.rstrip("}"))] = float(value)
    return out


# Each stats key (both runtimes) and the metric that carries it.
STATS_METRICS = {
    "ticks_received": "tp_strategy_ticks_received_total", "heartbeats": "tp_strategy_heartbeats_received_total",
    "heartbeats_refused": "tp_strategy_heartbeats_refused_total", "gaps": "tp_strategy_sequence_gaps_total",
    "out_of_order": "tp_strategy_ticks_out_of_order_total", "feed_restarts": "tp_strategy_feed_restarts_total",
    "wrong_topic": "tp_strategy_wrong_topic_total", "signals_emitted": "tp_strategy_signals_sent_total",
    "signals_suppressed": "tp_strategy_signals_suppressed_total", "signals_stale": "tp_strategy_signals_stale_total",
    "signals_refused": "tp_strategy_signals_refused_total", "strategy_errors": "tp_strategy_errors_total",
    "order_updates": "tp_strategy_order_updates_total", "position_reports": "tp_strategy_position_reports_total",
    "signals_acked": "tp_strategy_signals_acked_total", "signals_resent": "tp_strategy_signals_resent_total",
    "signals_pending": "tp_strategy_signals_pending", "adopted_pending": "tp_strategy_adopted_signals_pending",
    "journals_adopted": "tp_strategy_journals_adopted", "signals_given_up": "tp_strategy_signals_given_up_total",
    "send_would_block": "tp_strategy_signal_sends_blocked_total", "acks_unmatched": "tp_strategy_acks_unmatched_total",
    "orders_open": "tp_strategy_orders_open", "cancels_sent": "tp_strategy_cancels_sent_total",
    "cancels_resent": "tp_strategy_cancels_resent_total", "cancels_acked": "tp_strategy_cancels_acked_total",
    "cancels_refused": "tp_strategy_cancels_refused_total", "cancels_overtaken": "tp_strategy_cancels_overtaken_total",
    "cancels_pending": "tp_strategy_cancels_pending", "cancels_not_open": "tp_strategy_cancels_not_open_total",
    "cancel_acks_unmatched": "tp_strategy_cancel_acks_unmatched_total",
    "cancel_send_would_block": "tp_strategy_cancel_sends_blocked_total", "emitting": "tp_strategy_emitting",
    "signals_not_journaled": "tp_strategy_signals_not_journaled_total",
    "acks_not_journaled": "tp_strategy_acks_not_journaled_total", "settlements_owed": "tp_strategy_settlements_owed",
    "give_ups_not_journaled": "tp_strategy_give_ups_not_journaled_total",
    "journal_compactions_failed": "tp_strategy_journal_compactions_failed_total",
    "emission_stops": "tp_strategy_emission_stops_total", "journal_errors": "tp_strategy_journal_errors_total",
    "journal_bytes": "tp_strategy_journal_bytes", "journal_corrupt": "tp_strategy_journal_corrupt_records_total",
    "journal_torn": "tp_strategy_journal_torn_records_total",
    "journal_locked": "tp_strategy_journal_adoptions_locked_total", "feed_alive": "tp_strategy_feed_alive",
    "shards": "tp_strategy_shards", "connections_dropped": "tp_connections_dropped_total",
    "handshakes_failed": "tp_handshakes_failed_total", "redials": "tp_connections_redialled_total",
    "write_failures": "tp_write_failures_total", "disk_free_bytes": "tp_disk_free_bytes",
    "disk_floor_bytes": "tp_disk_floor_bytes", "disk_low": "tp_disk_low",
}
# Stats keys without a metric of their own: labels (program, group, kind,
# runtime), ids and lists (shard is in process; adopted_shards; entry), the
# time of the file, a string the state says already (journal_state, alert).
NO_METRIC = {"program", "pid", "ts_ns", "shard", "strategy", "group", "kind", "runtime", "entry", "adopted_shards",
             "journal_state", "alert"}


def stats_vs_metrics(stats, got):
    """The differences between a stats file and the metrics of the same
    write ({metric: {labels: value}}), as text; empty when they agree."""
    def one(metric):
        values = list(got.get(metric, {}).values())
        return values[0] if len(values) == 1 else None

    diff = []
    for key, value in stats.items():
        if key in NO_METRIC:
            continue
        if key in STATS_METRICS:
            want, have = float(value), one(STATS_METRICS[key])
        elif key == "ticks_per_s":  # rounded to 3 decimals in the Python runtime's file
            want, have = round(float(value), 3), one("tp_strategy_ticks_per_second")
            have = None if have is None else round(have, 3)
        elif key == "instruments":
            want, have = float(len(value.split(",")) if value else 0), one("tp_strategy_instruments")
        elif key == "tick_latency_us":
            want, have = float(value["count"]), one("tp_strategy_tick_latency_seconds_count")
        elif key == "dead_letters":
            want = float(value)
            have = (one("tp_dead_letters_sent_total") or 0) + (one("tp_dead_letters_dropped_total") or 0)
        elif key == "dead_letters_by_reason":
            want = {r: float(n) for r, n in value.items()}
            have = {labels.split('reason="')[1][:-1]: v
                    for labels, v in got.get("tp_strategy_dead_letters_total", {}).items()}
        elif key == "clock_lag_min_ms":  # ms in the file, seconds in the metric: compared to the nanosecond
            want = {src: round(ms / 1e3, 9) for src, ms in value.items()}
            have = {labels.split('source="')[1][:-1]: round(v, 9)
                    for labels, v in got.get("tp_clock_lag_min_seconds", {}).items()}
        elif key == "files_failing":
            want, have = float(len(value)), one("tp_files_failing")
        elif key == "positions":  # the Python runtime's; a position is a metric once known
            want = {sym: float(q) for sym, q in value.items()}
            have = {labels.split('instrument="')[1][:-1]: v
                    for labels, v in got.get("tp_strategy_position", {}).items()}
            want = {sym: q for sym, q in want.items() if sym in have or q}
        else:
            diff.append(f"{key}: no metric")
            continue
        if want != have:
            diff.append(f"{key}: stats {want} metric {have}")
    return diff


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

    def settled(self, name):
        """The strategy's ticks_received once the feed has stopped: the same
        in two stats files written one after the other, the gateway done."""
        history = []

        def same_twice():
            stats = self.stats(name) or {}
            if stats.get("ts_ns") and (not history or history[-1][0] != stats["ts_ns"]):
                history.append((stats["ts_ns"], stats["ticks_received"]))
            return len(history) >= 2 and history[-1][1] == history[-2][1] and history[-1][1]

        return wait_for(same_twice, 15, what=f"{name}: ticks_received settled", detail=lambda: str(history[-5:]))

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
            received = d.settled(name)
            self.assertGreater(received, TICKS * 0.8, f"{name}: most ticks after the start delay")
            seen = self.metrics_as_stats(name)
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
            # The stats file is written on its own period, after or before the
            # metrics' snapshot: wait for it too, then check it.
            wait_for(lambda: d.stats(name).get("feed_alive") is False, 10,
                     what=f"{name}: feed_alive false in its stats after the gateway stopped",
                     detail=lambda: d.stats(name))
            self.assertFalse(d.stats(name)["feed_alive"])
        for name in strategies:
            self.assertEqual(d.stop(name), 0, d.log(name))
            self.assertEqual(http_get(d.url(name), timeout=2)[0], 0, f"{name}: the endpoint is gone with it")

    def metrics_as_stats(self, name):
        """{metric: value} of a scrape whose snapshot was published with the
        stats file read just before and after it (the same ts_ns), once every
        figure of the file has its metric with the same value (a stats key
        with neither a metric nor a place in NO_METRIC fails: a figure added
        to the stats must reach Prometheus too)."""
        last = {}

        def one_write():
            before = self.d.stats(name)
            text = self.d.metrics(name)
            after = self.d.stats(name)
            if not before or not after or before["ts_ns"] != after["ts_ns"]:
                return None
            got = {}
            for (metric, labels), value in samples(text).items():
                got.setdefault(metric, {})[labels] = value
            last.update(stats=after, got=got, diff=stats_vs_metrics(after, got))
            return not last["diff"] and {m: next(iter(v.values())) for m, v in got.items() if len(v) == 1}

        return wait_for(one_write, 10, what=f"{name}: every stats figure == its metric",
                        detail=lambda: f"differences: {last.get('diff')}")

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


@unittest.skipUnless(BIN_DIR, "TP_BIN_DIR is not set (ctest sets it)")
class RealPrometheusStrategies(unittest.TestCase):
    def test_prometheus_alerts_on_a_dead_feed_and_reads_both_runtimes(self):
        if not PROMETHEUS:
            self.skipTest("the prometheus server is not installed (Debian: apt-get install prometheus)")
        d = Deployment()
        self.addCleanup(d.close)
        strategies = ("cpp-0", "py-0")
        for name in strategies:
            d.start(name)
        for name in strategies:
            d.wait_up(name)
        prom = Prometheus(d.dir, [f"127.0.0.1:{d.ports[name]}" for name in strategies], rules=[ALERT_RULES])
        self.addCleanup(prom.close)
        wait_for(lambda: sorted(v for _, v in prom.query('up{job="tp"}')) == [1.0, 1.0], 20,
                 what="up == 1 for both strategies", detail=prom.log)

        def feed_dead_firing():
            return sorted((m["process"], m["group"])
                          for m, _ in prom.query('ALERTS{alertname="TpFeedDead",alertstate="firing"}'))

        # No gateway: no feed, for longer than the rule's `for: 10s`.
        wait_for(lambda: feed_dead_firing() == [("cpp-0", "cpp"), ("py-0", "py")], 30,
                 what="TpFeedDead firing for both", detail=lambda: f"{feed_dead_firing()}\n{prom.log()}")

        d.start("gateway", "gateway.rate=1000", f"gateway.max_ticks={TICKS}", args=["--start-delay-ms", "500"])
        wait_for(lambda: not prom.query('ALERTS{alertname="TpFeedDead"}'), 20,
                 what="TpFeedDead resolved once the feed is alive", detail=lambda: f"{feed_dead_firing()}")

        wait_for(lambda: (d.stats("gateway") or {}).get("ticks_published") == TICKS, 15,
                 what=f"{TICKS} ticks published", detail=lambda: d.log("gateway"))
        want = {name: float(d.settled(name)) for name in strategies}

        def received():
            return {m["process"]: v for m, v in prom.query("tp_strategy_ticks_received_total")}

        wait_for(lambda: received() == want, 15, what=f"Prometheus' ticks received == the stats files' {want}",
                 detail=lambda: f"{received()}")
        p50 = {m["process"]: v for m, v in
               prom.query("histogram_quantile(0.5, tp_strategy_tick_latency_seconds_bucket)")}
        self.assertEqual(sorted(p50), list(strategies))
        self.assertTrue(all(0 < v <= 10 for v in p50.values()), p50)


if __name__ == "__main__":
    unittest.main()
