"""The executor's and dll_gateway's /metrics on a real pipeline that traded
(gateway -> 2 strategies -> executor -> dll_gateway with the simulated
broker, dead_letter): `promtool check metrics` passes on both, and once the
feed is stopped and the figures settle, each metric says what its program's
stats file says at the same moment (MetricsPipeline, tier process).

"The same moment": a program publishes its metrics right after it writes
its stats file, stamped tp_metrics_snapshot_timestamp_seconds. A scrape is
compared with the stats file only when its snapshot is not older than a
stats file read before it, and that stats file's figures equal those of one
read after it: nothing moved between the two writes, so the snapshot holds
those figures. Skipped, saying why, when promtool is not installed."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pipeline  # noqa: E402
from ports import free_port  # noqa: E402
from prom import PROMTOOL, http_get, samples  # noqa: E402

EXTRA = """
[gateway]
rate = 2000
heartbeat_ms = 200

[strategy]
instances = 2
signal_ttl_ms = 10000

[strategy.sma_crossover]
fast = 2
slow = 5
"""

# executor.stats.json key -> the counter that must say the same.
EXECUTOR_COUNTERS = {
    "signals_received": "tp_executor_signals_received_total",
    "signals_accepted": "tp_executor_signals_accepted_total",
    "duplicates": "tp_executor_signals_duplicate_total",
    "orders_sent": "tp_executor_orders_sent_total",
    "order_retries": "tp_executor_order_retries_total",
    "order_timeouts": "tp_executor_order_timeouts_total",
    "partial_fills": "tp_executor_partial_fills_total",
    "broker_rejects": "tp_executor_broker_rejects_total",
    "reports_received": "tp_executor_reports_received_total",
    "reports_fetched": "tp_executor_reports_fetched_total",
    "reports_applied": "tp_executor_reports_applied_total",
    "reports_known": "tp_executor_reports_known_total",
    "report_gaps": "tp_executor_report_gaps_total",
    "report_queries": "tp_executor_report_queries_total",
    "cancels_sent": "tp_executor_cancels_sent_total",
    "breaker_opens": "tp_executor_circuit_breaker_opens_total",
    "dead_letters_dropped": "tp_dead_letters_dropped_total",
    "orders_working": "tp_executor_orders_working",
    "open_orders": "tp_executor_orders_open",
    "report_next_seq": "tp_executor_report_next_seq",
}

DLL_GATEWAY_COUNTERS = {
    "orders_received": "tp_dll_gateway_orders_received_total",
    "duplicates": "tp_dll_gateway_duplicates_total",
    "submitted": "tp_dll_gateway_orders_submitted_total",
    "queries": "tp_dll_gateway_queries_total",
    "fills": "tp_dll_gateway_fills_total",
    "partial_fills": "tp_dll_gateway_partial_fills_total",
    "rejects": "tp_dll_gateway_rejects_total",
    "reports": "tp_dll_gateway_reports_stored_total",
    "reports_published": "tp_dll_gateway_reports_published_total",
    "report_queries": "tp_dll_gateway_report_queries_total",
    "request_groups": "tp_dll_gateway_request_groups_total",
    "ticks_received": "tp_dll_gateway_ticks_received_total",
    "report_seq": "tp_dll_gateway_report_seq",
    "dead_letters_dropped": "tp_dead_letters_dropped_total",
}

HOPS = {"tick_to_signal", "signal_to_executor", "executor_to_order_sent", "order_sent_to_broker",
        "broker_to_answer"}


def value(text, name, **labels):
    """The one sample of `name` whose labels include `labels`."""
    found = [v for k, v in samples(text, name).items() if set(labels.items()) <= set(k)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def by_label(text, name, label):
    return {dict(k)[label]: v for k, v in samples(text, name).items()}


def settled_figures(stats, keys):
    """What must not move between two stats writes for a comparison."""
    if not stats:
        return None
    return {k: stats.get(k) for k in keys}


@unittest.skipUnless(pipeline.BIN_DIR, "TP_BIN_DIR is not set (ctest sets it)")
class MetricsPipeline(unittest.TestCase):
    def setUp(self):
        missing = pipeline.missing_binaries()
        self.assertFalse(missing, f"programs not built in TP_BIN_DIR={pipeline.BIN_DIR!r}: {missing}")
        self.d = pipeline.Deployment(EXTRA)
        self.addCleanup(self.d.close)
        self.ports = {}

    def start_with_metrics(self, name):
        self.ports[name] = free_port()
        self.d.start(name, "--set", f"metrics.port={self.ports[name]}")

    def metrics(self, name):
        status, body = http_get(f"http://127.0.0.1:{self.ports[name]}/metrics")
        self.assertEqual(status, 200, (name, body))
        return body

    def consistent_scrape(self, name, keys):
        """(stats, metrics text) of one moment: see the module's doc."""
        d = self.d

        def attempt():
            before = d.stats(name)
            if not before:
                return None
            text = self.metrics(name)
            # The next stats write, not the same file read again.
            after = pipeline.wait_for(lambda: (s := d.stats(name)) and s["ts_ns"] > before["ts_ns"] and s,
                                      timeout=5, what=f"{name}'s next stats write")
            snapshot = value(text, "tp_metrics_snapshot_timestamp_seconds")
            if snapshot * 1e9 < before["ts_ns"] - 1e6:  # the float's precision: about 0.2 us
                return None
            if settled_figures(before, keys) != settled_figures(after, keys):
                return None
            return after, text
        return pipeline.wait_for(attempt, timeout=10, what=f"a {name} scrape as of its stats file",
                                 detail=lambda: d.log(name)[-3000:])

    def promtool(self, name, text):
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                               timeout=30)
        self.assertEqual(check.returncode, 0, f"{name}:\n{check.stdout}{check.stderr}\n{text}")

    def test_executor_and_dll_gateway_metrics_after_trading(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian: apt-get install prometheus)")
        d = self.d
        d.start("dead_letter")
        self.start_with_metrics("dll_gateway")
        self.start_with_metrics("executor")
        d.start("strategy:0", "--shard", "0", "--shards", "2")
        d.start("strategy:1", "--shard", "1", "--shards", "2")
        for name in ("dead_letter", "dll_gateway", "executor", "strategy-0", "strategy-1"):
            pipeline.wait_for(lambda: d.stats(name), what=f"{name} to start", detail=lambda: d.log(name))
        # Up: a scrape never sees 503, before any trade too.
        for name in ("executor", "dll_gateway"):
            text = self.metrics(name)
            self.assertEqual(value(text, "tp_executor_trading_state" if name == "executor"
                                   else "tp_dll_gateway_orders_received_total",
                                   **({"state": "ACTIVE"} if name == "executor" else {})),
                             1.0 if name == "executor" else 0.0)
        d.start("gateway")
        pipeline.wait_for(lambda: d.stat("executor", "fills") >= 20, timeout=40, what="20 fills",
                          detail=lambda: str(d.stats("executor")))
        self.assertEqual(d.stop("gateway"), 0)
        pipeline.wait_for(lambda: all(d.stat(f"strategy-{k}", "signals_pending", 1) == 0 for k in (0, 1)),
                          timeout=30, what="every signal acked")

        self.check_executor()
        self.check_dll_gateway()

    def check_executor(self):
        keys = list(EXECUTOR_COUNTERS) + ["fills", "fills_by_instrument", "rejected", "positions",
                                          "latency_tick_to_fill_us", "trading_state", "breaker",
                                          "dead_letters"]
        stats, text = self.consistent_scrape("executor", keys)
        self.promtool("executor", text)
        self.assertGreater(stats["fills"], 0)
        for key, metric in EXECUTOR_COUNTERS.items():
            self.assertEqual(value(text, metric), stats[key], f"{metric} vs stats {key}")
        fills = by_label(text, "tp_executor_fills_total", "instrument")
        self.assertEqual(fills, {k: float(v) for k, v in stats["fills_by_instrument"].items()})
        self.assertEqual(sum(fills.values()), stats["fills"])
        self.assertEqual(by_label(text, "tp_executor_signals_rejected_total", "reason"),
                         {k: float(v) for k, v in stats["rejected"].items()})
        positions = by_label(text, "tp_executor_position", "instrument")
        self.assertEqual(set(positions), set(stats["positions"]))
        for sym, p in stats["positions"].items():
            self.assertAlmostEqual(positions[sym], p["position"], places=6, msg=sym)
            self.assertAlmostEqual(value(text, "tp_executor_realized_pnl", instrument=sym), p["realized_pnl"],
                                   places=6, msg=sym)
        self.assertEqual(by_label(text, "tp_executor_trading_state", "state"),
                         {s: float(s == stats["trading_state"]) for s in ("ACTIVE", "REDUCING", "HALTED")})
        self.assertEqual(value(text, "tp_executor_circuit_breaker_open"), float(stats["breaker"] != "closed"))
        self.assertEqual(value(text, "tp_dead_letters_sent_total") + value(text, "tp_dead_letters_dropped_total"),
                         stats["dead_letters"])

        # Latencies: every fill of a round trip is one tick-to-fill
        # observation, every answered order one round trip.
        self.assertEqual(value(text, "tp_executor_tick_to_fill_seconds_count"),
                         stats["latency_tick_to_fill_us"]["count"])
        self.assertGreater(stats["latency_tick_to_fill_us"]["count"], 0)
        self.assertEqual(value(text, "tp_executor_order_round_trip_seconds_count"),
                         stats["orders_sent"] - stats["order_timeouts"])
        self.assertEqual(value(text, "tp_executor_order_round_trip_seconds_bucket", le="+Inf"),
                         stats["orders_sent"] - stats["order_timeouts"])
        hops = by_label(text, "tp_executor_hop_latency_seconds_count", "hop")
        self.assertEqual(set(hops), HOPS)
        self.assertEqual(hops["signal_to_executor"], stats["signals_received"])
        self.assertGreater(hops["order_sent_to_broker"], 0)
        self.assertGreater(value(text, "tp_executor_order_round_trip_seconds_sum"), 0)
        self.assertLess(value(text, "tp_executor_tick_to_fill_seconds_sum")
                        / value(text, "tp_executor_tick_to_fill_seconds_count"), 1.0, "mean tick-to-fill < 1 s")

    def check_dll_gateway(self):
        keys = list(DLL_GATEWAY_COUNTERS) + ["rejects_by_reason", "dead_letters"]
        stats, text = self.consistent_scrape("dll_gateway", keys)
        self.promtool("dll_gateway", text)
        self.assertGreater(stats["fills"], 0)
        for key, metric in DLL_GATEWAY_COUNTERS.items():
            self.assertEqual(value(text, metric), stats[key], f"{metric} vs stats {key}")
        self.assertEqual(by_label(text, "tp_dll_gateway_rejects_by_reason_total", "reason"),
                         {k: float(v) for k, v in stats["rejects_by_reason"].items()})
        self.assertEqual(value(text, "tp_dead_letters_sent_total") + value(text, "tp_dead_letters_dropped_total"),
                         stats["dead_letters"])
        # Every submit is one timed broker call.
        calls = by_label(text, "tp_dll_gateway_broker_call_seconds_count", "call")
        self.assertEqual(set(calls), {"submit", "query", "cancel"})
        self.assertEqual(calls["submit"], stats["submitted"])
        self.assertIn('{program="dll_gateway",process="dll_gateway"', text)


if __name__ == "__main__":
    unittest.main()
