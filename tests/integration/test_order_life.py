"""Orders with a life, end to end (issue 13, items 3 to 5): the real gateway,
executor, dll_gateway with the simulated broker and dead_letter on ipc://
endpoints; the test plays the strategy (PUSH signals and cancel requests,
SUB on order events and acks) and records every tick the gateway publishes.

The gateway replays a CSV the test writes, so that prices are known: EURUSD
every 10 ms, the ask a triangle between 1.08500 and 1.08600 (a 2 s period,
starting at 1.08550 on its way up), the bid 1 pip under it, 2000 displayed
on each side. A buy limit at 1.08505 is marketable near the troughs only,
a sell limit at 1.08585 near the crests only, a buy at 1.08000 never; an
order of more than 2000 fills over several ticks. The CSV's first 450 ms
cannot fill anything, so that the test's tick subscription has joined
before the first tick that can (checked).

Order events are PUB/SUB: the ones a restarted executor publishes while
catching up (within milliseconds of its start) are gone before the test's
subscription has reconnected, so what the executor learned while it was
down is checked in its stats and its database, not in events."""

import os
import signal
import sqlite3
import sys
import time
import unittest

import zmq

import pipeline as pl
import tp_proto

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))
import chaoslib  # noqa: E402  (the sim broker journal's reader)

PROGRAMS = ("gateway", "executor", "dll_gateway", "dead_letter")  # the test plays the strategy
INSTRUMENT = "EURUSD"
BUY, SELL = 1, 2
MARKET, LIMIT = 0, 1
IOC, GTC, GTD = 0, 1, 2
STATUS = {name: n for n, name in tp_proto.ORDER_STATUSES.items()}
ACK = {name: n for n, name in tp_proto.ACK_STATUSES.items()}

DISPLAYED = 2000.0
BUY_LOW = 1.08505     # marketable for ~11 ticks around each trough
SELL_HIGH = 1.08585   # marketable for ~11 ticks around each crest
FAR_BELOW = 1.08000   # never marketable for a buy
MAX_QUOTE_AGE_MS = 1000

CSV_PERIOD_ROWS = 200
FIRST_FILLABLE_SEQ = 46  # the first tick of a run at which SELL_HIGH (or anything above) can fill
CSV_ROWS = 9000       # 90 s at 10 ms: longer than any test runs the gateway


def csv_ask(k):
    phase = (k + 50) % CSV_PERIOD_ROWS
    up = phase if phase <= 100 else CSV_PERIOD_ROWS - phase
    return round(1.08500 + up * 0.00001, 5)


def write_csv(path):
    with open(path, "w") as f:
        f.write("timestamp,instrument,bid,ask,bid_volume,ask_volume\n")
        t0 = 1_700_000_000_000
        for k in range(CSV_ROWS):
            ask = csv_ask(k)
            f.write(f"{t0 + 10 * k},{INSTRUMENT},{ask - 0.0001:.5f},{ask:.5f},{DISPLAYED:g},{DISPLAYED:g}\n")


def config(csv_path):
    return f"""
[gateway]
source = "csv"
csv_path = "{csv_path}"
heartbeat_ms = 200

[executor]
order_timeout_ms = 1000

[dll_gateway.settings]
max_quote_age_ms = {MAX_QUOTE_AGE_MS}
journal_path = "${{run.dir}}/../{chaoslib.SIM_JOURNAL}"
"""


def db_rows(path, sql):
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql)]
    finally:
        con.close()


class OrderLife(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.csv_dir = tempfile.TemporaryDirectory(prefix="tp_life_csv_")
        cls.csv_path = os.path.join(cls.csv_dir.name, "ticks.csv")
        write_csv(cls.csv_path)

    @classmethod
    def tearDownClass(cls):
        cls.csv_dir.cleanup()

    def setUp(self):
        missing = [p for p in PROGRAMS if not os.access(os.path.join(pl.BIN_DIR, p), os.X_OK)]
        self.assertFalse(missing, f"programs not built in TP_BIN_DIR={pl.BIN_DIR!r}: {missing}")
        self.d = pl.Deployment(config(self.csv_path))
        self.ctx = zmq.Context()
        self.addCleanup(self.cleanup)
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(self.d.endpoints["signals"])
        self.handshakes = {}   # subscriber -> [its monitor, handshakes seen]
        self.events_sub = self.subscriber(self.d.endpoints["order_events"], b"")
        self.ticks_sub = self.subscriber(self.d.endpoints["ticks"], b"TICK.")
        self.sent = {}         # signal id -> its payload, kept for resends
        self.resent = set()    # signal ids sent more than once
        self.ticks = {}        # (instrument, seq, gateway_ts_ns) -> tick
        self.first_seq = []    # the seq of the first tick seen after each gateway start
        self.events = {}       # client order id -> [order events], in arrival order
        self.acks = []         # signal acks (either kind), in arrival order
        self.n = 0
        self.run_id = os.path.basename(self.d.dir)[-6:]

    def cleanup(self):
        self.ctx.destroy(linger=0)
        self.d.close()

    def subscriber(self, endpoint, prefix):
        s = self.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, prefix)
        self.handshakes[s] = [s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED), 0]
        s.connect(endpoint)
        return s

    def wait_joined(self, sub, count, what):
        """Until `sub` has completed `count` handshakes with its publisher
        (one per start of it): what that publisher sends after this reaches
        the test (its subscription goes out with the handshake)."""
        from zmq.utils.monitor import recv_monitor_message
        monitor = self.handshakes[sub]

        def joined():
            self.pump()
            while monitor[0].poll(0):
                if recv_monitor_message(monitor[0])["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    monitor[1] += 1
            return monitor[1] >= count
        pl.wait_for(joined, what=f"the test's subscription to {what} (handshake {count})")

    # ------------------------------------------------------------------
    # The strategy side.

    def pump(self, seconds=0.02):
        """Reads whatever the test's subscribers have, waiting up to `seconds`
        for the first message."""
        poller = zmq.Poller()
        poller.register(self.events_sub, zmq.POLLIN)
        poller.register(self.ticks_sub, zmq.POLLIN)
        timeout = int(seconds * 1000)
        while True:
            ready = dict(poller.poll(timeout))
            if not ready:
                return
            timeout = 0
            for s in ready:
                topic, payload = s.recv_multipart()
                name, m = tp_proto.decode(payload)
                if name == "tick":
                    if self.expect_first_tick:
                        self.first_seq.append(m["seq"])
                        self.expect_first_tick = False
                    self.ticks[(m["instrument"], m["seq"], m["gateway_ts_ns"])] = m
                elif name == "order_event":
                    self.events.setdefault(m["client_order_id"], []).append(m)
                elif name == "signal_ack":
                    self.acks.append(m)

    expect_first_tick = False
    gateway_starts = 0
    executor_starts = 0

    def start_gateway(self):
        self.expect_first_tick = True
        self.d.start("gateway")
        self.gateway_starts += 1
        self.wait_joined(self.ticks_sub, self.gateway_starts, "the gateway's ticks")

    def start_executor(self):
        self.d.start("executor")
        self.executor_starts += 1
        self.wait_joined(self.events_sub, self.executor_starts, "the executor's events")

    def start_core(self, gateway=True):
        d = self.d
        d.start("dead_letter")
        d.start("dll_gateway")
        self.start_executor()
        for name in ("dead_letter", "dll_gateway", "executor"):
            pl.wait_for(lambda: d.stats(name), what=f"{name} to start", detail=lambda: d.log(name))
        pl.wait_for(lambda: d.stat("executor", "orders_check", "pending") == "matched",
                    what="the executor's open orders check", detail=lambda: d.log("executor"))
        if gateway:
            self.start_gateway()
            self.wait_fresh_quote()

    def wait_fresh_quote(self):
        """Until the test and dll_gateway have seen ticks of this gateway run."""
        start = self.d.stat("dll_gateway", "ticks_received")

        def fresh():
            self.pump()
            return not self.expect_first_tick and self.d.stat("dll_gateway", "ticks_received") > start
        pl.wait_for(fresh, what="ticks at the test and at dll_gateway", detail=lambda: self.d.log("gateway"))

    def signal(self, side, quantity, order_type=MARKET, limit_price=0.0, tif=IOC, good_till_ns=0):
        """Sends a signal; returns its id (the order's client id is C-<id>)."""
        self.n += 1
        sid = f"life.{self.run_id}.{self.n}"
        t = time.time_ns()
        payload = tp_proto.encode("signal", dict(
            signal_id=sid, strategy="life", instance=0, instrument=INSTRUMENT, action=side,
            quantity=float(quantity), trigger_price=1.0855, confidence=1.0, created_ts_ns=t,
            expires_ts_ns=t + 60_000_000_000, causation_seq=0, causation_ts_ns=t,
            order_type=order_type, limit_price=float(limit_price), time_in_force=tif,
            good_till_ns=good_till_ns))
        self.sent[sid] = payload
        self.push.send(payload)
        return sid

    def cancel(self, sid):
        self.push.send(tp_proto.encode("cancel_request", dict(
            signal_id=sid, strategy="life", instance=0, reason="test", created_ts_ns=time.time_ns())))

    def ack(self, sid, cancel=False, nth=1):
        """The nth ack (of a signal, or of a cancel) for `sid`; waits for it.
        An unacked signal is sent again every 500 ms, as a strategy does
        (a signal PUSHed as its executor restarts may be lost, and so may
        an ack published before the test's subscription is back)."""
        last_send = [time.monotonic()]

        def found():
            self.pump()
            mine = [a for a in self.acks if a["signal_id"] == sid and a["cancel"] == cancel]
            if len(mine) >= nth:
                return mine[nth - 1]
            if not cancel and time.monotonic() - last_send[0] > 0.5:
                self.push.send(self.sent[sid])
                self.resent.add(sid)
                last_send[0] = time.monotonic()
            return None
        return pl.wait_for(found, timeout=10, what=f"ack #{nth} of {'cancel ' if cancel else ''}{sid}",
                           detail=lambda: repr(self.acks[-5:]))

    def assert_accepted(self, sid):
        """The signal was accepted: ACCEPTED, or DUPLICATE for a resend
        whose first ack the test did not see."""
        ack = self.ack(sid)
        want = (ACK["ACCEPTED"], ACK["DUPLICATE"]) if sid in self.resent else (ACK["ACCEPTED"],)
        self.assertIn(ack["status"], want, ack)

    def event(self, sid, status, timeout=15):
        """The first order event of signal `sid` with `status`; waits for it."""
        cid = "C-" + sid

        def found():
            self.pump()
            return next((e for e in self.events.get(cid, []) if e["status"] == STATUS[status]), None)
        return pl.wait_for(found, timeout=timeout, what=f"{status} event of {cid}",
                           detail=lambda: repr([(tp_proto.ORDER_STATUSES[e["status"]], e["filled_quantity"])
                                                for e in self.events.get(cid, [])]))

    def statuses(self, sid):
        """The statuses of the order's events after NEW (the executor's own:
        the order is on its way)."""
        self.pump()
        out = [tp_proto.ORDER_STATUSES[e["status"]] for e in self.events.get("C-" + sid, [])]
        return out[1:] if out[:1] == ["NEW"] else out

    def wait_stat(self, name, key, predicate, timeout=20):
        return pl.wait_for(lambda: (self.pump(), predicate(self.d.stat(name, key, None)))[1], timeout=timeout,
                           what=f"{name} {key}", detail=lambda: f"{name} stats: {self.d.stats(name)}")

    def kill9(self, name):
        proc = self.d.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self):
        """Stops the feed first, lets the executor catch up with the report
        stream, then stops the rest (the databases are readable after)."""
        d = self.d
        if "gateway" in d.procs:
            if d.procs["gateway"].poll() is None:
                d.procs["gateway"].send_signal(signal.SIGCONT)
            self.assertEqual(d.stop("gateway"), 0)
        since = time.time_ns()

        def caught_up():
            self.pump()
            g, e = d.stats("dll_gateway", after_ns=since), d.stats("executor", after_ns=since)
            return g and e and e.get("report_next_seq") == g.get("report_seq", -1) + 1
        pl.wait_for(caught_up, what="the executor to catch up with dll_gateway's reports",
                    detail=lambda: f"executor {d.stats('executor')}\ndll_gateway {d.stats('dll_gateway')}")
        for name in ("executor", "dll_gateway", "dead_letter"):
            self.assertEqual(d.stop(name), 0, d.log(name))

    # ------------------------------------------------------------------
    # The books, from the files (after stop_all).

    def gateway_db(self, sql):
        return db_rows(os.path.join(self.d.run_dir, "dll_gateway.db"), sql)

    def executor_db(self, sql):
        return db_rows(os.path.join(self.d.run_dir, "executor.db"), sql)

    def check_fills_explained(self, expect_fills):
        """Every fill from a tick names a tick the gateway published, whose
        price is at the order's limit or better and equal to the fill's, and
        whose displayed size covers every fill it made on that side."""
        self.assertTrue(all(s <= FIRST_FILLABLE_SEQ for s in self.first_seq),
                        f"the test's tick subscription joined a gateway run late: first seqs {self.first_seq}")
        orders = {o["client_order_id"]: o for o in self.gateway_db("SELECT * FROM orders")}
        fills = self.gateway_db("SELECT * FROM reports WHERE last_quantity > 0 ORDER BY seq")
        from_ticks = [r for r in fills if r["quote_seq"] > 0]
        self.assertGreaterEqual(len(from_ticks), expect_fills, f"fills from ticks: {fills}")
        used = {}
        for r in from_ticks:
            key = (r["instrument"], r["quote_seq"], r["quote_ts_ns"])
            tick = self.ticks.get(key)
            self.assertIsNotNone(tick, f"report {r['seq']} names tick {key}, which the gateway never published")
            o = orders[r["client_order_id"]]
            self.assertEqual(o["order_type"], LIMIT, r)
            if r["side"] == BUY:
                self.assertLessEqual(tick["ask"], o["limit_price"], (r, tick))
                self.assertEqual(r["last_price"], tick["ask"], (r, tick))
                size = tick["ask_volume"]
            else:
                self.assertGreaterEqual(tick["bid"], o["limit_price"], (r, tick))
                self.assertEqual(r["last_price"], tick["bid"], (r, tick))
                size = tick["bid_volume"]
            used[key + (r["side"],)] = used.get(key + (r["side"],), 0.0) + r["last_quantity"]
            self.assertLessEqual(used[key + (r["side"],)], size, f"fills of tick {key} exceed its size {size}")
        return from_ticks

    def check_broker_fills_explained(self):
        """The same from the sim broker's journal, which also names the tick
        of a fill made when the order arrived (a market order's, or a
        marketable limit's): each fill (the cumulative filled quantity going
        up) names a tick the gateway published, at the order's limit or
        better, at that tick's price, within its displayed size. The gateway
        runs once per test, so a seq names one tick. Returns the fills."""
        by_seq = {}
        for (instrument, seq, _), tick in self.ticks.items():
            self.assertNotIn((instrument, seq), by_seq, "two gateway runs in one test")
            by_seq[(instrument, seq)] = tick
        before, used, fills = {}, {}, []
        for e in chaoslib.read_broker_events(self.d.run_dir):
            prev_filled, prev_avg = before.get(e["cid"], (0.0, 0.0))
            before[e["cid"]] = (e["filled"], e["avg_price"])
            qty = e["filled"] - prev_filled
            if qty <= 0:
                continue
            price = (e["filled"] * e["avg_price"] - prev_filled * prev_avg) / qty
            tick = by_seq.get((e["instrument"], e["quote_seq"]))
            self.assertIsNotNone(tick, f"journal fill {e} names no tick the gateway published")
            buy = e["side"] == "BUY"
            self.assertAlmostEqual(price, tick["ask" if buy else "bid"], delta=1e-9, msg=(e, tick))
            if e["terms"].startswith("LIMIT@"):
                limit = float(e["terms"][len("LIMIT@"):].split("/")[0])
                self.assertTrue(tick["ask"] <= limit if buy else tick["bid"] >= limit, (e, tick))
            key = (e["instrument"], e["quote_seq"], e["side"])
            used[key] = used.get(key, 0.0) + qty
            self.assertLessEqual(used[key], tick["ask_volume" if buy else "bid_volume"], (e, tick))
            fills.append(e)
        return fills

    def check_books_agree(self):
        """Every report dll_gateway numbered reached executor.db once; the
        filled quantity of each order is the same in executor.db,
        dll_gateway.db and the sim broker's journal."""
        stream = self.gateway_db("SELECT value FROM meta WHERE key = 'stream'")[0]["value"]
        seqs = [r["seq"] for r in self.gateway_db("SELECT seq FROM reports ORDER BY seq")]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "dll_gateway's report seqs have a gap")
        got = self.executor_db("SELECT stream, seq FROM reports")
        self.assertEqual({r["stream"] for r in got}, {stream})
        self.assertEqual(sorted(r["seq"] for r in got), seqs, "executor.db's reports are not dll_gateway's")
        executor = {o["client_order_id"]: o["filled_quantity"]
                    for o in self.executor_db("SELECT client_order_id, filled_quantity FROM orders")}
        gateway = {o["client_order_id"]: o["filled_quantity"]
                   for o in self.gateway_db("SELECT client_order_id, filled_quantity FROM orders")}
        journal = {}
        for e in chaoslib.read_broker_events(self.d.run_dir):
            journal[e["cid"]] = e["filled"]
        self.assertEqual(executor, gateway)
        self.assertEqual(gateway, journal)
        # A seq used twice (a report lost in a crash and its number given to
        # another) would show as the executor's copy differing from the store's.
        mine = {r["seq"]: (r["client_order_id"], r["status"], r["filled_quantity"])
                for r in self.executor_db("SELECT seq, client_order_id, status, filled_quantity FROM reports")}
        theirs = {r["seq"]: (r["client_order_id"], tp_proto.ORDER_STATUSES[r["status"]], r["filled_quantity"])
                  for r in self.gateway_db("SELECT seq, client_order_id, status, filled_quantity FROM reports")}
        self.assertEqual(mine, theirs)
        return len(seqs)

    # ------------------------------------------------------------------

    def test_resting_orders_fill_later_from_published_ticks(self):
        self.start_core(gateway=False)
        # No quote yet: a GTC limit rests (ACCEPTED) whatever its price.
        buy = self.signal(BUY, 10000, LIMIT, BUY_LOW, GTC)
        sell = self.signal(SELL, 5000, LIMIT, SELL_HIGH, GTC)
        for sid in (buy, sell):
            self.assert_accepted(sid)
            self.event(sid, "ACCEPTED")
        self.start_gateway()
        for sid in (buy, sell):
            self.event(sid, "FILLED")
            statuses = self.statuses(sid)
            self.assertEqual(statuses[0], "ACCEPTED", statuses)
            self.assertIn("PARTIALLY_FILLED", statuses, "more than the displayed size fills over several ticks")
        # The fills came on their own: one request per order reached dll_gateway.
        self.assertEqual(self.d.stat("dll_gateway", "orders_received"), 2, self.d.stats("dll_gateway"))
        self.stop_all()
        fills = self.check_fills_explained(expect_fills=10000 // 2000 + 5000 // 2000 + 1)
        self.assertEqual({r["client_order_id"] for r in fills}, {"C-" + buy, "C-" + sell})
        self.assertEqual(len(self.check_broker_fills_explained()), len(fills))
        self.check_books_agree()

    def test_cancels_once_and_refuses_what_it_cannot_cancel(self):
        self.start_core()
        rest = self.signal(BUY, 1000, LIMIT, FAR_BELOW, GTC)
        self.event(rest, "ACCEPTED")
        self.cancel(rest)
        ack = self.ack(rest, cancel=True)
        self.assertEqual(ack["status"], ACK["ACCEPTED"], ack)
        self.assertEqual(self.event(rest, "CANCELED")["filled_quantity"], 0)
        self.cancel(rest)
        ack = self.ack(rest, cancel=True, nth=2)
        self.assertEqual(ack["status"], ACK["DUPLICATE"], ack)

        filled = self.signal(BUY, 1000)
        self.event(filled, "FILLED")
        self.cancel(filled)
        ack = self.ack(filled, cancel=True)
        self.assertEqual(ack["status"], ACK["REJECTED"], ack)
        self.assertTrue(ack["reason"].startswith("order_final"), ack)

        unknown = f"life.{self.run_id}.nobody"
        self.cancel(unknown)
        ack = self.ack(unknown, cancel=True)
        self.assertEqual(ack["status"], ACK["REJECTED"], ack)
        self.assertTrue(ack["reason"].startswith("unknown_order"), ack)

        self.wait_stat("dll_gateway", "cancels_sent", lambda n: n == 1)
        self.stop_all()
        cancels = [e for e in chaoslib.read_broker_events(self.d.run_dir) if e["kind"] == "CANCEL"]
        self.assertEqual([e["cid"] for e in cancels], ["C-" + rest])
        self.assertEqual(self.executor_db(f"SELECT status FROM orders WHERE client_order_id = 'C-{rest}'"),
                         [{"status": "CANCELED"}])
        self.assertEqual([e["cid"] for e in self.check_broker_fills_explained()], ["C-" + filled])
        self.check_books_agree()

    def test_gtd_order_expires(self):
        self.start_core()
        sid = self.signal(BUY, 1000, LIMIT, FAR_BELOW, GTD, good_till_ns=time.time_ns() + 1_500_000_000)
        self.event(sid, "ACCEPTED")
        self.event(sid, "EXPIRED", timeout=10)
        self.wait_stat("executor", "expired_at_broker", lambda n: n == 1)
        self.stop_all()
        self.assertEqual(self.executor_db(f"SELECT status FROM orders WHERE client_order_id = 'C-{sid}'"),
                         [{"status": "EXPIRED"}])
        self.check_books_agree()

    def test_reports_exactly_once_across_kill9(self):
        d = self.d
        self.start_core(gateway=False)
        first = [self.signal(BUY, 6000, LIMIT, BUY_LOW, GTC), self.signal(SELL, 6000, LIMIT, SELL_HIGH, GTC)]
        for sid in first:
            self.event(sid, "ACCEPTED")

        # The executor dies; the broker fills its orders meanwhile.
        self.kill9("executor")
        self.start_gateway()
        self.wait_stat("dll_gateway", "fills", lambda n: n is not None and n >= 6)  # both orders filled
        seq_while_down = d.stat("dll_gateway", "report_seq")
        self.start_executor()
        self.wait_stat("executor", "report_next_seq", lambda n: n is not None and n > seq_while_down)
        self.wait_stat("executor", "fills", lambda n: n == 2)
        self.assertEqual(d.stat("executor", "orders_working"), 0, d.stats("executor"))
        self.assertGreaterEqual(d.stat("executor", "reports_fetched"), seq_while_down - 2, d.stats("executor"))
        stream = d.stat("dll_gateway", "report_stream")

        # dll_gateway dies with orders resting (each needs two troughs or
        # crests, 2 s apart); they keep matching once it is back.
        second = [self.signal(BUY, 40000, LIMIT, BUY_LOW, GTC), self.signal(SELL, 40000, LIMIT, SELL_HIGH, GTC)]
        for sid in second:
            self.assert_accepted(sid)
        self.wait_stat("executor", "orders_working", lambda n: n == 2)
        last_seq = d.stat("dll_gateway", "report_seq")
        self.kill9("dll_gateway")
        killed_ns = time.time_ns()
        d.start("dll_gateway")
        for sid in second:
            self.event(sid, "FILLED", timeout=20)
        self.assertEqual(d.stat("dll_gateway", "report_stream"), stream)
        self.assertGreater(d.stat("dll_gateway", "report_seq"), last_seq)

        self.stop_all()
        events = chaoslib.read_broker_events(d.run_dir)
        for sid in second:
            after = [e for e in events if e["cid"] == "C-" + sid and e["kind"] == "FILL" and e["ts_ns"] > killed_ns]
            self.assertTrue(after, f"C-{sid} did not fill after dll_gateway's restart")
            self.assertEqual(after[-1]["status"], "FILLED")
        fills = self.check_fills_explained(expect_fills=2 * 3 + 2 * 20)
        self.assertEqual({r["client_order_id"] for r in fills}, {"C-" + s for s in first + second})
        self.assertEqual(len(self.check_broker_fills_explained()), len(fills))
        n = self.check_books_agree()
        executor = d.stats("executor")
        print(f"\nkill -9: {n} reports, executor reports_fetched {executor['reports_fetched']} "
              f"report_gaps {executor['report_gaps']}", file=sys.stderr)

    def test_stale_quote_refused_and_resting_order_held(self):
        d = self.d
        self.start_core()
        live = self.signal(BUY, 1000)
        self.event(live, "FILLED")
        d.procs["gateway"].send_signal(signal.SIGSTOP)
        def aged():
            self.pump()  # ticks published just before the stop may still be on their way
            last_tick_ns = max(t["gateway_ts_ns"] for t in self.ticks.values())
            return time.time_ns() - last_tick_ns > (MAX_QUOTE_AGE_MS + 200) * 1_000_000
        pl.wait_for(aged, what="the last quote to age")
        stale = self.signal(BUY, 1000)
        rejected = self.event(stale, "REJECTED")
        self.assertTrue(rejected["reason"].startswith("stale quote"), rejected)
        self.assertIn(f"max_quote_age_ms {MAX_QUOTE_AGE_MS}", rejected["reason"])
        self.wait_stat("dll_gateway", "rejects_by_reason", lambda r: r and r.get("stale quote") == 1)
        # Marketable at the last quote, but that quote is stale: it rests.
        self.pump()
        last = max(self.ticks.values(), key=lambda t: t["gateway_ts_ns"])
        held = self.signal(BUY, 1000, LIMIT, round(last["ask"] + 0.00002, 5), GTC)
        self.event(held, "ACCEPTED")
        fills = d.stat("dll_gateway", "fills")
        since = time.time_ns()
        pl.wait_for(lambda: (self.pump(), d.stats("dll_gateway", after_ns=since + 1_000_000_000))[1],
                    what="dll_gateway stats a second later")
        self.assertEqual(d.stat("dll_gateway", "fills"), fills)
        self.assertEqual(self.statuses(held), ["ACCEPTED"])
        # The feed is back (the same run goes on, so the test's subscription
        # sees every tick): the order fills from a fresh tick.
        d.procs["gateway"].send_signal(signal.SIGCONT)
        self.event(held, "FILLED")
        self.stop_all()
        fills = self.check_fills_explained(expect_fills=1)
        self.assertEqual([r["client_order_id"] for r in fills], ["C-" + held])
        self.assertEqual([e["cid"] for e in self.check_broker_fills_explained()], ["C-" + live, "C-" + held])
        self.check_books_agree()

    def test_unknown_open_order_at_start_halts_trading(self):
        d = self.d
        for name in ("dead_letter", "dll_gateway"):
            d.start(name)
            pl.wait_for(lambda: d.stats(name), what=f"{name} to start")
        req = self.ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 5000)
        req.connect(d.endpoints["orders"])
        rogue = f"X-rogue-{self.run_id}"
        t = time.time_ns()
        req.send(tp_proto.encode("order_request", dict(
            client_order_id=rogue, signal_id="rogue", instrument=INSTRUMENT, side=BUY, quantity=1000.0,
            price_hint=1.0855, sent_ts_ns=t, expires_ts_ns=t + 60_000_000_000, order_type=LIMIT,
            limit_price=FAR_BELOW, time_in_force=GTC)))
        name, reply = tp_proto.decode(req.recv())
        self.assertEqual((name, reply["status"]), ("order_reply", STATUS["ACCEPTED"]), reply)

        self.start_executor()
        self.wait_stat("executor", "orders_check", lambda c: c == "mismatch")
        self.assertIn(rogue, d.stat("executor", "unknown_open_orders", "").split(), d.stats("executor"))
        sid = self.signal(BUY, 1000)
        ack = self.ack(sid)
        self.assertEqual(ack["status"], ACK["REJECTED"], ack)
        self.assertTrue(ack["reason"].startswith("open_orders_mismatch"), ack)
        self.assertIn("OPEN ORDER MISMATCH", d.log("executor"))
        req.close()


if __name__ == "__main__":
    unittest.main()
