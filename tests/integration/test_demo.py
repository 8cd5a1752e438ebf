"""The demo's default deployment shows orders with a life (issue 13, item 7):
the supervisor runs the built-in groups (no [[strategy.groups]] in the file:
trend trades market orders, revert limit GTC orders 1 bp passive that its
strategy cancels after 1 s) with the REAL programs on ipc:// endpoints, as
scripts/demo does, and its --summary must show what the README says the
demo shows: orders resting at the broker (seen while it runs), fills that
arrived later as execution reports, cancels on request, every order
accounted for, and the report stream whole at both ends; and the portfolio
in one currency (issue 14, item 3): equity = capital + realised +
unrealised, each total the sum of the instruments' converted figures
(USDJPY's yen among them), the trading state ACTIVE."""

import os
import re
import shutil
import sqlite3
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))

from svtest import PROGRAMS, SupervisorRun, endpoints_toml, supervisor as sv, wait_for  # noqa: E402
from tp_supervisor import portfolio, report  # noqa: E402  (scripts/, put on the path by svtest)

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
NUM = r"(-?\d+\.\d+)"
PORTFOLIO_LINE = re.compile(
    rf"^portfolio: +account (\w+): equity {NUM} = capital {NUM} \+ realised {NUM} \+ unrealised {NUM}; "
    rf"day's PnL {NUM}; (complete|INCOMPLETE)", re.M)
# instrument, position, avg price, mark, realised, unrealised (quote), quote
# currency, rate, realised, unrealised (account)
PNL_LINE = re.compile(
    rf"^  ([A-Z]{{6}}) +(-?\d+) +{NUM} +(\S+) +{NUM} +{NUM} +([A-Z]{{3}}) +(\S+) +(\S+) +(\S+)$", re.M)
TOTAL_LINE = re.compile(rf"^  total (\w+) +{NUM} +{NUM}$", re.M)
TRADING_LINE = re.compile(r"^trading: +(\w+)", re.M)
CAPITAL = 1000000.0  # [portfolio] capital's default
ROUNDING = 0.006  # a figure printed to 2 decimals, and the float parsed back


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

        self.check_portfolio(text)

    def watcher_log(self):
        try:
            with open(os.path.join(self.run_.run_dir, "logs", "portfolio.log"), errors="replace") as f:
                return "portfolio watcher's log:\n" + f.read()[-2000:]
        except OSError as e:
            return f"no portfolio watcher's log: {e}"

    def check_portfolio(self, text):
        """One total in the account currency: each instrument's PnL in its
        quote currency and converted (USDJPY's yen at 1/mid), the totals
        the sums of the converted figures, equity = capital + both, and
        the figures those of the equity point the executor stored."""
        self.assertEqual(TRADING_LINE.search(text).group(1) if TRADING_LINE.search(text) else None,
                         "ACTIVE", text)
        m = PORTFOLIO_LINE.search(text)
        self.assertIsNotNone(m, text + "\n" + self.watcher_log())
        ccy, equity, capital, realized, unrealized, _daily, complete = m.groups()
        equity, capital, realized, unrealized = map(float, (equity, capital, realized, unrealized))
        self.assertEqual((ccy, capital, complete), ("USD", CAPITAL, "complete"), text)
        self.assertAlmostEqual(equity, capital + realized + unrealized, delta=ROUNDING * 3, msg=text)
        # A valuation the executor stored: its equity point of the same instant.
        snap = portfolio.read_snapshot(self.run_.run_dir)
        self.assertIsNotNone(snap, text + "\n" + self.watcher_log())
        con = sqlite3.connect(f"file:{os.path.join(self.run_.run_dir, 'executor.db')}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT equity, realized_pnl, unrealized_pnl FROM equity WHERE ts_ns = ?",
                              (snap["event"]["ts_ns"],)).fetchone()
        finally:
            con.close()
        self.assertIsNotNone(row, f"no equity point at the summary's valuation\n{text}")
        for stored, shown in zip(row, (equity, realized, unrealized)):
            self.assertAlmostEqual(stored, shown, delta=ROUNDING, msg=text)

        lines = {g[0]: g for g in PNL_LINE.findall(text)}
        self.assertEqual(set(lines), {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"}, text)
        self.assertEqual({sym: g[6] for sym, g in lines.items()},
                         {"EURUSD": "USD", "GBPUSD": "USD", "USDJPY": "JPY", "AUDUSD": "USD"}, text)
        traded = [g for g in lines.values() if float(g[4]) != 0 or int(g[1]) != 0]
        self.assertTrue(traded, "no instrument was traded\n" + text)
        for sym, pos, avg, mark, real_q, unreal_q, quote, rate, real_a, unreal_a in lines.values():
            self.assertNotEqual(mark, "none", f"{sym} has no mark\n{text}")
            rate, real_q, unreal_q = float(rate), float(real_q), float(unreal_q)
            if quote == "USD":
                self.assertEqual(rate, 1.0, text)
            else:  # USDJPY: yen to dollars at 1 / its own mid
                self.assertAlmostEqual(rate, 1 / float(mark), delta=1e-6, msg=text)
            # Each converted figure is its quote figure at the rate (both printed to 2 decimals).
            self.assertAlmostEqual(float(real_a), real_q * rate, delta=ROUNDING * (1 + rate), msg=text)
            self.assertAlmostEqual(float(unreal_a), unreal_q * rate, delta=ROUNDING * (1 + rate), msg=text)
        total = TOTAL_LINE.search(text)
        self.assertIsNotNone(total, text)
        self.assertEqual(total.group(1), ccy, text)
        rounding = ROUNDING * (len(lines) + 1)
        self.assertAlmostEqual(float(total.group(2)), sum(float(g[8]) for g in lines.values()), delta=rounding,
                               msg=text)
        self.assertAlmostEqual(float(total.group(3)), sum(float(g[9]) for g in lines.values()), delta=rounding,
                               msg=text)
        self.assertAlmostEqual(float(total.group(2)), realized, delta=ROUNDING, msg=text)
        self.assertAlmostEqual(float(total.group(3)), unrealized, delta=ROUNDING, msg=text)


def pnl(sym, quote, position, avg, mark, real_q, unreal_q, rate, ts=7):
    return dict(instrument=sym, quote_currency=quote, position=position, avg_price=avg, mark_price=mark,
                realized_pnl=real_q, unrealized_pnl=unreal_q, rate_to_account=rate,
                realized_account=real_q * rate, unrealized_account=unreal_q * rate, ts_ns=ts)


class PortfolioLinesTest(unittest.TestCase):
    """The summary's portfolio block from a valuation, without processes."""

    EVENT = dict(account_currency="USD", equity=1000010.0, realized_pnl=4.0, unrealized_pnl=6.0, daily_pnl=10.0,
                 day_start_ns=0, complete=False, state="ACTIVE", open_orders=0, ts_ns=7)

    def test_a_line_without_a_rate_is_shown_but_not_added(self):
        snap = {"capital": CAPITAL, "event": self.EVENT, "lines": [
            pnl("EURUSD", "USD", 1000, 1.08, 1.09, 4.0, 6.0, 1.0),
            pnl("XAUCHF", "CHF", 1, 2000.0, 2010.0, 0.0, 10.0, 0.0)]}
        text = "\n".join(report.portfolio_lines({}, snap))
        self.assertRegex(text, r"equity 1000010\.00 = capital 1000000\.00 \+ realised 4\.00 \+ unrealised 6\.00; "
                               r"day's PnL 10\.00; INCOMPLETE")
        lines = {g[0]: g for g in PNL_LINE.findall(text)}
        self.assertEqual(lines["XAUCHF"][6:], ("CHF", "n/a", "n/a", "n/a"), text)
        self.assertEqual(lines["EURUSD"][7:], ("1.000000", "4.00", "6.00"), text)
        self.assertEqual(TOTAL_LINE.search(text).groups(), ("USD", "4.00", "6.00"), text)

    def test_without_an_event_the_stats_totals_and_positions_labelled_with_their_currency(self):
        ex = {"account_currency": "USD", "equity": 999990.0, "realized_pnl": -10.0, "unrealized_pnl": 0.0,
              "daily_pnl": -10.0, "portfolio_complete": True,
              "positions": {"USDJPY": {"position": 1000, "avg_price": 151.2, "realized_pnl": -1512.0}}}
        text = "\n".join(report.portfolio_lines(ex, None, {"capital": CAPITAL}))
        self.assertIsNotNone(PORTFOLIO_LINE.search(text), text)
        self.assertRegex(text, r"USDJPY +position +1000 .* realised PnL +-1512\.00 JPY")
        self.assertEqual(PNL_LINE.findall(text), [], text)

    def test_the_trading_state_and_its_cause(self):
        self.assertEqual(report.trading_lines({})[0], "trading:          n/a")
        line = report.trading_lines({"trading_state": "REDUCING", "trading_state_cause": "daily loss limit: x",
                                        "open_orders": 2, "control_commands": 1})[0]
        self.assertEqual(TRADING_LINE.search(line).group(1), "REDUCING")
        self.assertIn("(daily loss limit: x)", line)

    def test_the_watcher_reads_the_endpoint_and_keys_from_the_config(self):
        d = tempfile.mkdtemp(prefix="tpd", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        path = os.path.join(d, "c.toml")
        with open(path, "w") as f:
            f.write('[endpoints]\norder_events = "ipc:///tmp/x.ipc"\n[portfolio]\naccount_currency = "EUR"\n'
                    "capital = 5000\n[security]\ncurve = true\n")
        cfg = portfolio.portfolio_settings(path, ["portfolio.capital=7000"])
        self.assertEqual((cfg["endpoint"], cfg["account_currency"], cfg["capital"], cfg["curve"]),
                         ("ipc:///tmp/x.ipc", "EUR", 7000.0, True))
        cfg = portfolio.portfolio_settings(None)
        self.assertEqual((cfg["endpoint"], cfg["account_currency"], cfg["capital"], cfg["curve"]),
                         ("tcp://127.0.0.1:7103", "USD", CAPITAL, False))


if __name__ == "__main__":
    unittest.main()
