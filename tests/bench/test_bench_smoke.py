"""Smoke run of micro_bench and pipeline_bench with tiny counts: both run to
completion and every figure of the report is there and positive. No timing
is asserted (the figures depend on the machine and its load)."""

import json
import os
import subprocess
import tempfile
import unittest

BIN_DIR = os.environ.get("TP_BIN_DIR", "")

PIPELINE_ROWS = [
    "tick throughput, 1 strategy, zero gaps",
    "fan-out, 4 strategies, aggregate",
    "tick->fill p50",
    "tick->fill p99",
    "tick->fill p99.9",
    "hop gateway->strategy p50",
    "hop tick->executor accept p50",
    "hop executor accept->fill p50",
    "order round trips",
    "raw CURVE on vs off",
    "tick throughput with CURVE",
]
PROGRAMS = ["gateway", "strategy", "executor", "dll_gateway"]


class BenchSmoke(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_bench_smoke_")
        self.addCleanup(self.tmp.cleanup)

    def program(self, name):
        path = os.path.join(BIN_DIR, name)
        self.assertTrue(os.access(path, os.X_OK), f"{name} not built in TP_BIN_DIR={BIN_DIR!r}")
        return path

    def test_micro_bench_reports_every_ratio(self):
        out = os.path.join(self.tmp.name, "micro.json")
        env = dict(os.environ, TP_BENCH_DEDUPE_IDS="500")
        subprocess.run([self.program("micro_bench"), "--benchmark_min_time=0.002", f"--summary_out={out}"],
                       check=True, timeout=150, env=env, stdout=subprocess.DEVNULL)
        with open(out) as f:
            summary = json.load(f)
        messages = {row["message"] for row in summary["codec"]}
        self.assertEqual(messages, {"tick", "heartbeat", "signal", "order_request", "order_query", "order_reply",
                                    "order_event", "signal_ack", "dead_letter"})
        for row in summary["codec"]:
            for key in ("encode_ns", "plain_encode_ns", "decode_ns", "plain_decode_ns", "encode_ratio",
                        "decode_ratio"):
                self.assertGreater(row[key], 0, f"{row['message']} {key}")
        names = {row["name"] for row in summary["flatness"]}
        for ind in ("sma", "ema", "rsi", "rolling_min", "rolling_max"):
            self.assertIn(f"indicator/{ind}", names)
        self.assertIn("tick_path/sma_crossover", names)
        for row in summary["flatness"]:
            self.assertTrue(all(v > 0 for v in row["ns"]), row["name"])
        for key in ("dedupe/find_seen", "dedupe/find_unseen", "risk/check_pass", "gateway/next_and_encode",
                    "desk/order_life", "dll_desk/order_life"):
            self.assertGreater(summary["other_ns"][key], 0, key)

    def test_pipeline_bench_reports_every_row(self):
        out = os.path.join(self.tmp.name, "pipeline.json")
        proc = subprocess.run([self.program("pipeline_bench"), "--smoke", "--out", out, "--bin-dir", BIN_DIR],
                              timeout=150, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(proc.returncode, 0, proc.stdout.decode(errors="replace")[-3000:])
        with open(out) as f:
            report = json.load(f)
        rows = {row["name"]: row for row in report["rows"]}
        for name in PIPELINE_ROWS + [f"peak RSS {p}" for p in PROGRAMS]:
            self.assertIn(name, rows)
            row = rows[name]
            self.assertGreater(row["baseline"], 0, name)
            if row["pending"]:
                self.assertIn("pending", row["note"], name)
            else:
                self.assertGreater(row["pipeline"], 0, name)
                self.assertGreater(row["ratio"], 0, name)
        self.assertIn("WAL", rows["order round trips"]["note"])
        printed = proc.stdout.decode(errors="replace").splitlines()
        self.assertTrue(any(line.startswith("tick throughput") for line in printed), "no table printed")


if __name__ == "__main__":
    unittest.main()
