"""The run report (scripts/tp_report.py, tp_supervisor/html_report.py).

ReportData (unit): the figures' data from a small synthetic run directory
(executor.db, dll_gateway.db, a strategy journal, dead-letter files, stats)
whose every figure is known by hand: fills, positions, PnL at average cost,
tick->fill and its hops, throughput bins, dead letters by reason; and a run
directory with nothing in it still gives a page, each figure saying why it
is absent.

ReportInBrowser (system): a CSV replay of a generated tick file under the
real supervisor with the REAL programs on ipc:// endpoints (risk limits low
enough that some signals are refused, so there are dead letters), stopped
once every tick is published and every signal answered; tp_report.py writes
report.html, and headless Chromium loads it: no script or console error,
every figure present, drawn (an <svg> with a non-empty <title>, a box of
non-zero size) and titled; the report's positions and dead letters agree
with the programs' own counters. Skipped only when chromium is not
installed. TP_REPORT_SCREENSHOT=FILE keeps the browser's screenshot."""

import html.parser
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))

from svtest import PROGRAMS, SCRIPTS, SupervisorRun, endpoints_toml, supervisor as sv, wait_for  # noqa: E402
import tp_proto  # noqa: E402  (scripts/, put on the path by svtest)
from tp_supervisor import html_report  # noqa: E402

TP_REPORT = os.path.join(SCRIPTS, "tp_report.py")
FIGURE_IDS = ("fig-pnl-total", "fig-pnl-instrument", "fig-positions", "fig-fills", "fig-latency", "fig-hops",
              "fig-throughput", "fig-dead-letters")
MS = 1_000_000
T0 = 1_767_000_000_000_000_000  # the synthetic run's time zero (ns)


# ---------------------------------------------------------------- a synthetic run

EXECUTOR_SCHEMA = """
CREATE TABLE signals (signal_id TEXT PRIMARY KEY, strategy TEXT, instance INTEGER, instrument TEXT,
  status TEXT, reason TEXT, received_ns INTEGER);
CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, signal_id TEXT, instrument TEXT, side TEXT,
  quantity REAL, price_hint REAL, state TEXT, status TEXT, filled_quantity REAL, fill_price REAL,
  order_id TEXT, reason TEXT, causation_ts_ns INTEGER, created_ns INTEGER, updated_ns INTEGER,
  expires_ns INTEGER, strategy TEXT, order_type INTEGER);
CREATE TABLE reports (report_id TEXT PRIMARY KEY, stream TEXT, seq INTEGER, client_order_id TEXT,
  status TEXT, last_quantity REAL, filled_quantity REAL, applied INTEGER, received_ns INTEGER);
CREATE TABLE equity (ts_ns INTEGER, equity REAL, realized_pnl REAL, unrealized_pnl REAL, daily_pnl REAL,
  complete INTEGER);
"""
DLL_SCHEMA = """
CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, broker_ts_ns INTEGER, created_ts_ns INTEGER,
  updated_ts_ns INTEGER);
CREATE TABLE reports (seq INTEGER PRIMARY KEY, client_order_id TEXT, instrument TEXT, side INTEGER,
  last_quantity REAL, last_price REAL, broker_ts_ns INTEGER, ts_ns INTEGER);
"""


def synthetic_run(d):
    """Three orders on EURUSD: o1 BUY 1000 @1.1000 and o2 SELL 1000 @1.1010,
    each filled in its answer (o2's journal is compacted away: its first two
    hops unknown), o3 a resting BUY 500 filled later by a report @1.1005;
    two dead letters, one valuation. Hops of o1 (us): 100, 200, 300, 400, 500."""
    ex = sqlite3.connect(os.path.join(d, "executor.db"))
    ex.executescript(EXECUTOR_SCHEMA)
    # (cid, sid, side, qty, hint, filled, price, causation, received, updated, strategy)
    orders = [("C-s1", "s1", "BUY", 1000, 1.0999, 1000, 1.1000, T0, T0 + 300_000, T0 + 1_500_000, "trend"),
              ("C-s2", "s2", "SELL", 1000, 1.1011, 1000, 1.1010, T0 + 1000 * MS, T0 + 1001 * MS, T0 + 1002 * MS,
               "trend"),
              ("C-s3", "s3", "BUY", 500, 1.1004, 500, 1.1005, T0 + 2000 * MS, T0 + 2001 * MS, T0 + 3000 * MS,
               "revert")]
    for cid, sid, side, qty, hint, filled, price, cause, received, updated, group in orders:
        ex.execute("INSERT INTO signals VALUES (?, ?, 0, 'EURUSD', 'ACCEPTED', '', ?)", (sid, group, received))
        ex.execute("INSERT INTO orders VALUES (?, ?, 'EURUSD', ?, ?, ?, 'DONE', 'FILLED', ?, ?, '', '', ?, ?, ?, 0, "
                   "?, 0)", (cid, sid, side, qty, hint, filled, price, cause, received, updated, group))
    ex.execute("INSERT INTO signals VALUES ('s4', 'trend', 0, 'EURUSD', 'REJECTED', 'risk_rejected', ?)",
               (T0 + 2500 * MS,))
    ex.executemany("INSERT INTO reports VALUES (?, 'dg', ?, ?, ?, ?, ?, ?, ?)", [
        ("dg:1", 1, "C-s1", "FILLED", 1000, 1000, 0, T0 + 1_500_000),
        ("dg:2", 2, "C-s2", "FILLED", 1000, 1000, 0, T0 + 1002 * MS),
        ("dg:3", 3, "C-s3", "ACCEPTED", 0, 0, 0, T0 + 2001 * MS),
        ("dg:4", 4, "C-s3", "FILLED", 500, 500, 1, T0 + 3000 * MS)])
    ex.executemany("INSERT INTO equity VALUES (?, ?, ?, ?, ?, 1)",
                   [(T0, 1e6, 0, 0, 0), (T0 + 1500 * MS, 1e6 + 1.0, 1.0, 0, 1.0)])
    ex.commit()
    ex.close()
    dg = sqlite3.connect(os.path.join(d, "dll_gateway.db"))
    dg.executescript(DLL_SCHEMA)
    dg.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [
        ("C-s1", T0 + 1_000_000, T0 + 600_000, T0 + 1_000_000),
        ("C-s2", T0 + 1001 * MS + 500_000, T0 + 1001 * MS + 100_000, T0 + 1001 * MS + 500_000),
        ("C-s3", T0 + 2999 * MS, T0 + 2001 * MS, T0 + 2999 * MS)])
    dg.executemany("INSERT INTO reports VALUES (?, ?, 'EURUSD', ?, ?, ?, ?, ?)", [
        (1, "C-s1", 1, 1000, 1.1000, T0 + 1_000_000, T0 + 1_000_100),
        (2, "C-s2", 2, 1000, 1.1010, T0 + 1001 * MS + 500_000, T0 + 1001 * MS + 600_000),
        (3, "C-s3", 1, 0, 0, T0 + 2001 * MS, T0 + 2001 * MS),
        (4, "C-s3", 1, 500, 1.1005, T0 + 2999 * MS, T0 + 2999 * MS)])
    dg.commit()
    dg.close()
    signal = {"signal_id": "s1", "strategy": "trend", "instance": 0, "instrument": "EURUSD", "action": 1,
              "quantity": 1000, "trigger_price": 1.0999, "confidence": 1.0, "created_ts_ns": T0 + 100_000,
              "expires_ts_ns": T0 + 5000 * MS, "causation_seq": 1, "causation_ts_ns": T0}
    with open(os.path.join(d, "trend-0.journal"), "wb") as f:
        f.write(b"B 1\n" + b"S " + tp_proto.encode("signal", signal).hex().encode() + b"\nA s1\n")
    with open(os.path.join(d, "dead_letters.jsonl.1"), "w") as f:
        f.write(json.dumps({"ts_ns": T0 + 2500 * MS, "source": "executor", "reason": "risk_rejected"}) + "\n")
    with open(os.path.join(d, "dead_letters.jsonl"), "w") as f:
        f.write(json.dumps({"ts_ns": T0 + 2600 * MS, "source": "strategy:1", "reason": "unacked"}) + "\n")
        f.write('{"ts_ns": 1, "source": "torn')  # a torn last line is not a letter
    for name, data in (("executor", {"account_currency": "USD", "latency_tick_to_fill_us":
                                     {"p50": 1500, "p99": 2000, "count": 2}}),
                       ("dead_letter", {"dead_letters": 2, "by_reason": {"risk_rejected": 1, "unacked": 1}})):
        with open(os.path.join(d, f"{name}.stats.json"), "w") as f:
            json.dump(data, f)


class ReportData(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tprep")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        synthetic_run(self.dir)
        self.run_ = html_report.read_run(self.dir)

    def test_fills_come_one_per_report_with_their_price_group_and_path(self):
        fills = html_report.fills(self.run_)
        self.assertEqual([(f.side, f.quantity, f.price, f.group, f.by_report) for f in fills],
                         [("BUY", 1000, 1.1000, "trend", False), ("SELL", 1000, 1.1010, "trend", False),
                          ("BUY", 500, 1.1005, "revert", True)])
        self.assertEqual([f.ts_ns for f in fills], [T0 + 1_000_000, T0 + 1001 * MS + 500_000, T0 + 2999 * MS])
        self.assertEqual(self.run_.problems, [])

    def test_positions_step_per_fill_in_total_and_per_group(self):
        s = html_report.positions(html_report.fills(self.run_))["EURUSD"]
        self.assertEqual(s["total"], [1000, 0, 500])
        self.assertEqual(s["groups"], {"trend": [1000, 0, 0], "revert": [0, 0, 500]})

    def test_pnl_realises_at_average_cost_and_values_the_rest_at_the_last_price(self):
        fills = html_report.fills(self.run_)
        s = html_report.pnl(fills, html_report.price_points(self.run_))["EURUSD"]
        self.assertAlmostEqual(s["realized"][-1], 1.0, places=9)  # (1.1010 - 1.1000) x 1000
        # A point per fill and per trigger price once there is a book (s1's came before any fill).
        self.assertEqual(s["t"], [T0 + 1_000_000, T0 + 1000 * MS, T0 + 1001 * MS + 500_000, T0 + 2000 * MS,
                                  T0 + 2999 * MS])
        self.assertAlmostEqual(s["unrealized"][1], 1.1, places=9)  # 1000 long from 1.1000, marked at 1.1011
        # The last event is the fill of 500 at 1.1005: nothing unrealised at its own price.
        self.assertAlmostEqual(s["unrealized"][-1], 0.0, places=9)
        book = html_report.final_books(fills)["EURUSD"]
        self.assertEqual((book.position, book.avg_price), (500, 1.1005))

    def test_latency_counts_answered_fills_and_measures_each_hop(self):
        lat = html_report.latencies(self.run_)
        self.assertEqual(lat["filled_later"], 1)  # s3 rested: not latency
        self.assertEqual(sorted(lat["tick_to_fill"]), [1500.0, 2000.0])
        self.assertEqual(lat["tick_to_signal"], [100.0])   # s2's journal record is gone
        self.assertEqual(lat["signal_to_executor"], [200.0])
        self.assertEqual(sorted(lat["executor_to_dll"]), [100.0, 300.0])
        self.assertEqual(sorted(lat["dll_to_broker"]), [400.0, 400.0])
        self.assertEqual(sorted(lat["broker_to_recorded"]), [500.0, 500.0])
        self.assertEqual(html_report.percentile([5, 1, 4, 2, 3], 0.5), 3)
        self.assertEqual(html_report.percentile([5, 1, 4, 2, 3], 0.99), 5)
        self.assertIsNone(html_report.percentile([], 0.5))

    def test_throughput_bins_by_second_and_letters_count_by_reason_over_rotated_files(self):
        fills = html_report.fills(self.run_)
        t0 = html_report.start_ns(self.run_, fills)
        self.assertEqual(t0, T0)
        bins = html_report.throughput(self.run_, fills, t0)
        self.assertEqual(bins["signals received"], [1, 1, 2])
        self.assertEqual(bins["orders created"], [1, 1, 1])
        self.assertEqual(bins["fills"], [1, 1, 1])
        self.assertEqual(bins["dead letters"], [0, 0, 2])
        self.assertEqual(html_report.dead_letters_by_reason(self.run_.letters),
                         {"risk_rejected": {"executor": 1}, "unacked": {"strategy": 1}})

    def test_the_page_has_every_figure_drawn_and_an_empty_run_says_why_each_is_absent(self):
        page = html_report.render_html(self.run_)
        for fid in FIGURE_IDS:
            self.assertRegex(page, f'<figure id="{fid}" data-status="ok">', fid)
            self.assertIn(f'<title id="{fid}-title">', page)
        empty = tempfile.mkdtemp(prefix="tprep-empty")
        self.addCleanup(shutil.rmtree, empty, ignore_errors=True)
        page = html_report.render_html(html_report.read_run(empty))
        for fid in FIGURE_IDS:
            self.assertRegex(page, f'<figure id="{fid}" data-status="absent"><h2>[^<]+</h2><p class="absent">[^<]+',
                             fid)
        self.assertIn("executor.db: no such file", page)

    def test_a_long_run_is_drawn_through_every_kth_point(self):
        self.assertEqual(html_report.thin(3, 4), ([0, 1, 2], 1))
        self.assertEqual(html_report.thin(10, 4), ([0, 3, 6, 9], 3))
        self.assertEqual(html_report.thin(11, 4), ([0, 3, 6, 9, 10], 3))  # the last value always
        n = 30_000  # fills on one instrument, 1 ms apart: the page stays a few MB
        run = html_report.Run(run_dir=self.dir, dll_reports=[
            {"seq": i, "client_order_id": f"C-{i}", "instrument": "EURUSD", "side": 1 + i % 2,
             "last_quantity": 1000.0, "last_price": 1.1 + (i % 7) * 1e-4, "broker_ts_ns": T0 + i * MS,
             "ts_ns": T0 + i * MS} for i in range(n)])
        page = html_report.render_html(run)
        self.assertLess(len(page), 4_000_000)
        self.assertIn("every 8th point", page)

    def test_tp_report_writes_the_page_into_the_run_dir(self):
        r = subprocess.run([sys.executable, TP_REPORT, "--run-dir", self.dir], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), os.path.join(self.dir, "report.html"))
        self.assertTrue(os.path.getsize(r.stdout.strip()) > 10_000)
        r = subprocess.run([sys.executable, TP_REPORT, "--run-dir", os.path.join(self.dir, "nope")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no run directory", r.stderr)


# ---------------------------------------------------------------- the real thing, in a browser

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
CHROMIUM = shutil.which("chromium")
SKIP_WHY = (f"SKIPPED: missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}" if MISSING else
            "SKIPPED: chromium is not installed (scripts/install-deps installs it)" if not CHROMIUM else "")

# The default deployment's instruments: (symbol, first mid, spread, step sd).
INSTRUMENTS = (("EURUSD", 1.0850, 0.0001, 0.00005), ("GBPUSD", 1.2650, 0.0002, 0.00006),
               ("USDJPY", 151.20, 0.01, 0.006), ("AUDUSD", 0.6550, 0.0001, 0.00004))
TICKS = 4000        # round robin over the instruments, 2 ms apart: 8 s replayed at speed 1
TICK_MS = 2


def write_ticks_csv(path):
    """A recorded-ticks file (README, Recorded ticks): a seeded random walk."""
    rng = random.Random(15)
    mids = {s: m for s, m, _, _ in INSTRUMENTS}
    with open(path, "w") as f:
        f.write("timestamp,instrument,bid,ask,bid_volume,ask_volume\n")
        for i in range(TICKS):
            sym, _, spread, sd = INSTRUMENTS[i % len(INSTRUMENTS)]
            mids[sym] += rng.gauss(0, sd)
            bid, ask = mids[sym] - spread / 2, mids[sym] + spread / 2
            f.write(f"{1704182400000 + i * TICK_MS},{sym},{bid:.5f},{ask:.5f},1000000,1000000\n")


class Page(html.parser.HTMLParser):
    """The dumped DOM: each <figure>'s attributes, its svg's <title> text,
    and the <body>'s attributes."""

    def __init__(self):
        super().__init__()
        self.figures, self.body, self._fig, self._in_title = {}, {}, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "figure":
            self._fig = self.figures.setdefault(a.get("id"), dict(a, svg=0, title=""))
        elif tag == "svg" and self._fig is not None:
            self._fig["svg"] += 1
        elif tag == "title" and self._fig is not None:
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "figure":
            self._fig = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title and self._fig is not None:
            self._fig["title"] += data


@unittest.skipIf(SKIP_WHY, SKIP_WHY)
class ReportInBrowser(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="tprb", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.csv = os.path.join(self.tmp, "ticks.csv")
        write_ticks_csv(self.csv)
        config = os.path.join(self.tmp, "replay.toml")
        with open(config, "w") as f:
            f.write("\n".join([
                "[run]", "stats_interval_ms = 200", *endpoints_toml(self.tmp),
                "[gateway]", 'source = "csv"', f'csv_path = "{self.csv}"', "speed = 1.0",
                # Low enough that some signals are refused: dead letters to draw.
                "[risk]", "max_position = 6000", "max_orders_per_second = 30",
                "[portfolio]", "interval_ms = 250", ""]))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", config, "--summary"])
        self.addCleanup(self.run_.close)
        self.run_dir = self.run_.run_dir

    def stats(self, name):
        return sv.read_stats(self.run_dir, name) or {}

    def replay_then_stop(self):
        wait_for(lambda: self.stats("gateway").get("ticks_published") == TICKS, 30,
                 what=f"the gateway to publish the file's {TICKS} ticks", detail=self.run_.status_text)

        def answered():  # every signal emitted has its answer: nothing in flight at the stop
            names = [n for n in self.run_.status() if n[-1].isdigit()]
            strategies = [self.stats(n) for n in names]
            return names and all(s.get("signals_emitted") == s.get("signals_acked") for s in strategies)
        wait_for(answered, 10, what="every signal acked", detail=self.run_.status_text)
        r = self.run_.tpctl("shutdown")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.run_.wait_exit(timeout=30), 0, self.run_.log())

    def chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="chrome", dir=self.tmp)
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
                              capture_output=True, text=True, timeout=60)

    def test_a_csv_replay_report_loads_in_chromium_with_every_figure_drawn(self):
        self.replay_then_stop()
        r = subprocess.run([sys.executable, TP_REPORT, "--run-dir", self.run_dir], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        report = os.path.join(self.run_dir, "report.html")
        self.assertEqual(r.stdout.strip(), report)

        dom = self.chromium("--dump-dom", "file://" + report)
        self.assertEqual(dom.returncode, 0, dom.stderr[-3000:])
        console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
        self.assertEqual(console, [], "the page logged to the console")
        page = Page()
        page.feed(dom.stdout)
        self.assertEqual(page.body.get("data-loaded"), "yes", dom.stdout[:2000])
        self.assertEqual(page.body.get("data-errors"), "0", dom.stdout[:2000])
        self.assertEqual(set(page.figures), set(FIGURE_IDS))
        for fid in FIGURE_IDS:
            fig = page.figures[fid]
            self.assertEqual((fig.get("data-status"), fig.get("data-rendered"), fig["svg"]), ("ok", "yes", 1), fid)
            self.assertTrue(fig["title"].strip(), f"{fid}: its svg has no title")

        shot = os.path.join(self.tmp, "report.png")
        r = self.chromium(f"--screenshot={shot}", "--window-size=1200,2400", "file://" + report)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertGreater(os.path.getsize(shot), 20_000)
        if os.environ.get("TP_REPORT_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["TP_REPORT_SCREENSHOT"])

        # The pictures tell what the programs counted.
        run = html_report.read_run(self.run_dir)
        fills = html_report.fills(run)
        ex = self.stats("executor")
        self.assertEqual(len(fills), ex["fills"])
        books = html_report.final_books(fills)
        for sym, p in ex["positions"].items():
            self.assertAlmostEqual(books[sym].position if sym in books else 0.0, p["position"], places=6, msg=sym)
        by_reason = {k: sum(v.values()) for k, v in html_report.dead_letters_by_reason(run.letters).items()}
        self.assertEqual(by_reason, self.stats("dead_letter").get("by_reason"))
        self.assertTrue(by_reason, "the risk limits refused nothing: no dead letters drawn")


if __name__ == "__main__":
    unittest.main()
