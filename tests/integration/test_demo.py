"""The demo's default deployment shows orders with a life (issue 13, item 7):
the supervisor runs the built-in groups (no [[strategy.groups]] in the file:
trend trades market orders, revert limit GTC orders 1 bp passive that its
strategy cancels after 1 s) with the REAL programs on ipc:// endpoints, as
scripts/demo does, and its --summary must show what the README says the
demo shows: orders resting at the broker (seen while it runs), fills that
arrived later as execution reports, cancels on request, every order
accounted for, and the report stream whole at both ends."""

import os
import re
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))

from svtest import PROGRAMS, SupervisorRun, endpoints_toml, supervisor as sv, wait_for  # noqa: E402

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = f"SKIPPED: missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}" if MISSING else ""
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

DURATION_S = 12  # revert emits ~20 signals a second at the default 1,000 ticks/s
ORDER_LINE = re.compile(
    r"^    orders (\d+) \((.*)\): filled (\d+) \((\d+) later, by report\), resting now (\d+), "
    r"canceled (\d+) \((\d+) on request\), expired (\d+), rejected (\d+)$", re.M)
REPORTS_LINE = re.compile(
    r"^reports: +dll_gateway stored (\d+) \(broker reports (\d+)\), executor through seq (\d+): "
    r"applied (\d+), known (\d+), unknown order (\d+); gaps (\d+), fetched (\d+), duplicates (\d+), "
    r"invalid transitions (\d+)$", re.M)


@unittest.skipIf(MISSING, SKIP_WHY)
class DemoTest(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="tpd", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        config = os.path.join(self.tmp, "demo.toml")
        with open(config, "w") as f:  # the built-in deployment, on this test's sockets
            f.write("\n".join(["[run]", "stats_interval_ms = 200", *endpoints_toml(self.tmp), ""]))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", config, "--duration", str(DURATION_S),
                                                      "--summary"])
        self.addCleanup(self.run_.close)

    def executor(self):
        return sv.read_stats(self.run_.run_dir, "executor") or {}

    def test_the_summary_shows_orders_resting_filled_later_and_canceled(self):
        # Resting: the executor's live count of orders working at the broker.
        wait_for(lambda: (self.executor().get("orders_working") or 0) > 0, DURATION_S,
                 what="an order resting at the broker (executor orders_working > 0)",
                 detail=lambda: self.run_.log())
        self.assertEqual(self.run_.wait_exit(timeout=DURATION_S + 60), 0, self.run_.log())
        with open(self.run_.log_path) as f:
            text = f.read()
        orders = {m.group(2): [int(g) for g in m.groups()[:1] + m.groups()[2:]] for m in ORDER_LINE.finditer(text)}
        self.assertEqual(set(orders), {"market IOC", "limit GTC 1 bp, cancel after 1000 ms"}, text)

        n, filled, later, resting, canceled, on_request, expired, rejected = orders["market IOC"]
        self.assertGreater(n, 0, text)
        self.assertEqual((later, resting, on_request), (0, 0, 0), text)  # market IOC never rests

        n, filled, later, resting, canceled, on_request, expired, rejected = \
            orders["limit GTC 1 bp, cancel after 1000 ms"]
        self.assertGreater(later, 0, "no fill of a resting order arrived later\n" + text)
        self.assertGreater(on_request, 0, "no order was canceled by its strategy\n" + text)
        self.assertLessEqual(later, filled + canceled, text)  # a later fill belongs to a filled or canceled order
        # Every order ended somewhere, or is still resting (a stop may leave
        # one answer in flight: the next start settles it).
        self.assertLessEqual(n - (filled + resting + canceled + expired + rejected), 1, text)

        m = REPORTS_LINE.search(text)
        self.assertIsNotNone(m, text)
        stored, broker, through, applied, known, unknown, gaps, fetched, dup, invalid = map(int, m.groups())
        self.assertGreater(stored, 0, text)
        # The gateway stops first: once it is quiet the executor catches up,
        # so both ends agree and every report was applied or known.
        self.assertEqual(through, stored, text)
        self.assertEqual(applied + known + unknown, stored, text)
        self.assertEqual((unknown, invalid), (0, 0), text)
        self.assertGreaterEqual(applied, later, text)


if __name__ == "__main__":
    unittest.main()
