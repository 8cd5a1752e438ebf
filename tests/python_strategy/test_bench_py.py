"""Smoke run of the Python strategy benchmark (bench/python_strategy/bench.py)
with a tiny count: it runs the gateway, the C++ and the Python strategy side
by side and writes every figure. No timing is asserted (the figures depend on
the machine and its load)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in ("gateway", "strategy") if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]


@unittest.skipIf(MISSING, f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR!r}: {MISSING}")
class PythonStrategyBenchSmoke(unittest.TestCase):
    def test_every_figure_is_written(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "py.json")
            r = subprocess.run([sys.executable, os.path.join(REPO, "bench", "python_strategy", "bench.py"),
                                "--bin-dir", BIN_DIR, "--seconds", "1", "--max-rate", "10000", "--out", out],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(out) as f:
                fig = json.load(f)
        self.assertIn("highest gap-free rate, python strategy", r.stdout)
        for key in ("python_tick_to_signal_us", "cpp_tick_to_signal_us"):
            self.assertGreater(fig[key]["p50"], 0, key)
        t = fig["trials"][0]
        for g in ("py", "cpp"):
            self.assertGreater(t[g]["received"], 0, g)
            self.assertGreater(t[g]["signals"], 0, g)


if __name__ == "__main__":
    unittest.main()
