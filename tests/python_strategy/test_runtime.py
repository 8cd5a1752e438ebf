"""The Python runtime over real sockets inside one process (inproc://, an
injected clock): what a user's strategy sees and what reaches the wire.
Feed dead and alive (no signal while dead nor from the tick that ends a dead
spell), gaps, duplicates, out-of-order, wrong topics, stale and future
ticks, a restarted gateway; the journal written before the send; acks,
refusals, order updates and positions; timers; a strategy that raises; order
terms from the group's settings and per request; cancels held behind their
signal, resent until acked, ended by a final order."""

import itertools
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "strategy", "python"))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import zmq  # noqa: E402

from tp_strategy import BUY, SELL, Strategy, api, config, runtime, wire  # noqa: E402
from waiting import wait_for  # noqa: E402

MS = 1_000_000
_ids = itertools.count()


class Clock:
    def __init__(self):
        self.t = time.time_ns()

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms * MS


class Recorder(Strategy):
    def on_start(self):
        self.ticks, self.feed, self.orders, self.emitted = [], [], [], []
        self.emit_on_tick = False
        self.raise_on_tick = False

    def on_tick(self, tick):
        self.ticks.append((tick.instrument, tick.seq, tick.bid, tick.ask))
        if self.raise_on_tick:
            raise RuntimeError("boom")
        if self.emit_on_tick:
            self.emitted.append(self.ctx.emit(tick.instrument, BUY))

    def on_feed(self, event):
        self.feed.append((event.kind, event.instrument, event.missed))

    def on_order(self, update):
        self.orders.append(update)


class RuntimeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        n = next(_ids)
        self.ep = {k: f"inproc://{k}-{n}" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
        text = (f'[run]\ndir = "{self.tmp.name}"\n[endpoints]\n' +
                "".join(f'{k} = "{v}"\n' for k, v in self.ep.items()) +
                "[strategy]\nfeed_timeout_ms = 1000\nmax_tick_age_ms = 5000\nmax_clock_skew_ms = 1000\n"
                "resend_ms = 100\n"
                '[[strategy.groups]]\nname = "g"\nkind = "python"\nentry = "x:Y"\nquantity = 250\n')
        self.cfg = config.parse_config(text)
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, 0)
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.bind(self.ep["ticks"])
        self.events = self.ctx.socket(zmq.PUB)
        self.events.bind(self.ep["order_events"])
        self.signals = self.ctx.socket(zmq.PULL)
        self.signals.bind(self.ep["signals"])
        self.dl = self.ctx.socket(zmq.PULL)
        self.dl.bind(self.ep["dead_letters"])
        self.clock = Clock()
        self.s = Recorder()
        self.rt = runtime.Runtime(self.cfg, self.cfg.group("g"), 0, 1, self.s, clock_ns=self.clock)
        self.rt.start_strategy()
        self.rt.open(self.ctx)
        self.addCleanup(self.rt.close)
        self.seq_hb = 0
        # The subscriptions reach the PUB sockets asynchronously: heartbeats
        # and position reports until one of each is heard.
        wait_for(lambda: self.heartbeat() or self.rt.heartbeats, timeout=5, what="a heartbeat heard")
        wait_for(lambda: self.send_event(b"POS.g", [12, 1, "g", "AUDUSD", 0.0, 1]) or self.rt.position_reports,
                 timeout=5, what="a position report heard")

    def heartbeat(self, seq=None, ticks_sent=0):
        self.seq_hb = seq if seq is not None else self.seq_hb + 1
        self.pub.send_multipart([b"HB.gateway", wire.packb([2, 1, "gateway", self.seq_hb, self.clock(), ticks_sent])])
        if self.rt.ticks.poll(200):
            self.rt._on_ticks()

    def tick(self, seq, sym="EURUSD", bid=1.1, ask=1.1002, ts=None, topic=None, instrument=None):
        topic = topic or f"TICK.{sym}".encode()
        payload = wire.packb([1, 1, instrument or sym, bid, ask, 1e6, 1e6, self.clock(), seq,
                              self.clock() if ts is None else ts])
        self.pub.send_multipart([topic, payload])
        self.assertTrue(self.rt.ticks.poll(2000), "tick not delivered")
        self.rt._on_ticks()

    def send_event(self, topic, fields):
        self.events.send_multipart([topic, wire.packb(fields)])
        if self.rt.events.poll(200):
            self.rt._on_events()

    def event(self, topic, fields):
        self.events.send_multipart([topic, wire.packb(fields)])
        self.assertTrue(self.rt.events.poll(2000), "event not delivered")
        self.rt._on_events()

    def letters(self):
        out = []
        while self.dl.poll(100):
            m = wire.unpackb(self.dl.recv())
            out.append((m[2], m[3]))  # source, reason
        return out

    def journal(self):
        with open(os.path.join(self.tmp.name, "g-0.journal"), "rb") as f:
            return f.read()

    def test_no_signal_while_dead_nor_from_the_tick_that_revives(self):
        self.s.emit_on_tick = True
        self.tick(1)  # alive through the heartbeat: this one may trade
        sid = self.s.emitted[-1]
        self.assertRegex(sid, r"^g\.0\.\d+\.1$")
        payload = self.signals.recv()
        self.assertIn(b"S " + payload.hex().encode() + b"\n", self.journal())
        m = wire.unpackb(payload)
        self.assertEqual((m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[12]),
                         (sid, "g", 0, "EURUSD", BUY, 250.0, 1.1002, 1))
        self.clock.advance(1001)
        self.rt._check_feed(self.clock())
        self.assertEqual(self.s.feed[-1], (api.DEAD, "", 0))
        self.assertFalse(self.rt.ctx.feed_alive())
        self.assertEqual(self.rt.ctx.emit("EURUSD", SELL), "")  # e.g. from a timer
        self.tick(2)  # ends the dead spell: seen, but no signal from it
        self.assertEqual(self.s.feed[-1], (api.ALIVE, "", 0))
        self.assertEqual(self.s.emitted[-1], "")
        self.assertEqual(self.rt.signals_suppressed, 2)
        self.tick(3)
        self.assertTrue(self.s.emitted[-1])
        self.assertEqual(self.rt.signals_emitted, 2)
        self.assertEqual(self.rt.stats()["feed_alive"], True)

    def test_no_signal_from_a_tick_older_than_the_signal_bound(self):
        self.s.emit_on_tick = True
        # The backlog of a pause: 3 s old ticks move the indicators...
        self.tick(1, ts=self.clock() - 3000 * MS)
        self.assertEqual(self.s.ticks[-1][1], 1)
        self.assertEqual(self.s.emitted[-1], "")  # ...but make no signal
        self.tick(2, ts=self.clock() - 251 * MS)
        self.assertEqual(self.s.emitted[-1], "")
        self.assertEqual(self.rt.ctx.emit("EURUSD", SELL), "")  # nor from a timer on that price
        self.assertEqual((self.rt.signals_stale, self.rt.signals_emitted, self.rt.signals_suppressed), (3, 0, 0))
        self.tick(3, ts=self.clock() - 250 * MS)  # within the bound
        self.assertTrue(self.s.emitted[-1])
        m = wire.unpackb(self.signals.recv())
        self.assertEqual((m[12], m[10] - m[13]), (3, 250 * MS))  # causation seq, its age when created
        st = self.rt.stats()
        self.assertEqual((st["signals_stale"], st["signals_emitted"]), (3, 1))

    def test_heartbeats_stamped_too_old_do_not_keep_the_feed_alive(self):
        # A gateway whose clock is 6 s behind: every tick and heartbeat refused.
        self.s.emit_on_tick = True
        self.clock.advance(1001)
        self.rt._check_feed(self.clock())
        self.assertFalse(self.rt.ctx.feed_alive())
        for i in range(3):
            self.clock.advance(400)
            hb = wire.packb([2, 1, "gateway", 100 + i, self.clock() - 6000 * MS, 0])
            self.pub.send_multipart([b"HB.gateway", hb])
            self.assertTrue(self.rt.ticks.poll(2000))
            self.rt._on_ticks()
            self.tick(10 + i, ts=self.clock() - 6000 * MS)
            self.rt._check_feed(self.clock())
            self.assertFalse(self.rt.ctx.feed_alive())
        st = self.rt.stats()
        self.assertEqual((st["feed_alive"], st["heartbeats_refused"], st["signals_emitted"]), (False, 3, 0))
        self.assertEqual(self.s.ticks, [])
        # Its clock put right: the next heartbeat revives the feed.
        self.heartbeat()
        self.assertTrue(self.rt.ctx.feed_alive())

    def test_bad_ticks_are_refused_and_counted(self):
        self.tick(5)
        self.tick(8)
        self.assertEqual(self.s.feed[-1], (api.GAP, "EURUSD", 2))
        self.tick(8)
        self.tick(7)
        self.tick(9, topic=b"TICK.EURUSDX", instrument="EURUSDX")  # our subscription is its prefix
        self.tick(9, ts=self.clock() - 6000 * MS)
        self.tick(9, ts=self.clock() + 2000 * MS)
        self.tick(9, instrument="GBPUSD")
        self.pub.send_multipart([b"TICK.EURUSD", b"\xc1"])
        self.pub.send_multipart([b"TICK.EURUSD", wire.packb([1, 1, "EURUSD", 1.2, 1.1, 0, 0, 1, 9, 1])])
        self.pub.send_multipart([b"TICK.EURUSD"])
        self.pub.send_multipart([b"TICK.EURUSD", b"a", b"b"])
        wait_for(lambda: (self.rt._on_ticks(), len(self.letters_seen()) >= 9)[1], timeout=5, what="nine dead letters")
        self.assertEqual([t[1] for t in self.s.ticks], [5, 8])
        reasons = [r for _, r in self.seen]
        for r in ("duplicate_seq", "out_of_order", "stale", "future_timestamp", "topic_mismatch", "malformed",
                  "out_of_range", "bad_frames"):
            self.assertIn(r, reasons)
        self.assertEqual({src for src, _ in self.seen}, {"g:0"})
        st = self.rt.stats()
        self.assertEqual((st["gaps"], st["out_of_order"], st["wrong_topic"], st["ticks_received"]), (2, 2, 1, 2))
        self.tick(10)
        self.assertEqual(self.s.ticks[-1][1], 10)

    def letters_seen(self):
        self.seen = getattr(self, "seen", [])
        self.seen += self.letters()
        return self.seen

    def test_a_restarted_gateway_starts_new_series(self):
        self.tick(500)
        self.heartbeat(seq=100, ticks_sent=1000)
        self.heartbeat(seq=1, ticks_sent=3)  # backwards: a new gateway process
        self.tick(40)  # its first ticks were lost while the subscription came back
        self.assertEqual(self.s.feed[-1], (api.RESTARTED, "EURUSD", 0))
        self.assertEqual([t[1] for t in self.s.ticks], [500, 40])
        self.tick(1, sym="GBPUSD")
        self.tick(2, sym="GBPUSD")
        self.assertEqual(self.rt.stats()["gaps"], 0)

    def test_acks_refusals_orders_and_positions(self):
        self.s.emit_on_tick = True
        self.tick(1)
        self.tick(2)
        a, b = self.s.emitted
        self.assertEqual(self.rt.signals_pending(), 2)
        self.event(b"ACK.g.0", [8, 1, a, 1, "", self.clock()])
        self.event(b"ACK.g.0", [8, 1, a, 2, "", self.clock()])  # the ack of a resend
        self.event(b"ACK.g.0", [8, 1, b, 3, "risk_rejected: too big", self.clock()])
        self.assertEqual((self.rt.signals_acked, self.rt.acks_unmatched, self.rt.signals_pending()), (2, 1, 0))
        refused = self.s.orders[-1]
        self.assertTrue(refused.refused)
        self.assertEqual((refused.signal_id, refused.instrument, refused.reason, refused.status),
                         (b, "EURUSD", "risk_rejected: too big", api.REJECTED))
        self.assertTrue(self.journal().endswith(f"A {a}\nA {b}\n".encode()))

        ctx = self.rt.ctx
        self.assertEqual((ctx.position("EURUSD"), ctx.position_known("EURUSD")), (0.0, False))
        self.event(b"POS.g", [12, 1, "g", "EURUSD", 300.0, self.clock()])
        self.assertEqual((ctx.position("EURUSD"), ctx.position_known("EURUSD")), (300.0, True))

        def order(sid, side, status, filled):
            return [7, 1, "B-1", "C-" + sid, sid, "EURUSD", side, status, 100.0, filled, 1.1, "", 1, 2, 3]
        self.event(b"ORDER.EURUSD", order(a, BUY, api.NEW, 0.0))
        self.event(b"ORDER.EURUSD", order(a, BUY, api.FILLED, 100.0))
        self.event(b"ORDER.EURUSD", order(a, BUY, api.FILLED, 100.0))  # the same event again
        self.event(b"ORDER.EURUSD", order("other.0.1.1", SELL, api.FILLED, 50.0))  # another group's
        self.assertEqual(ctx.position("EURUSD"), 400.0)
        self.assertEqual([(u.signal_id, u.status, u.filled_quantity) for u in self.s.orders[-3:]],
                         [(a, api.NEW, 0.0), (a, api.FILLED, 100.0), (a, api.FILLED, 100.0)])
        self.event(b"POS.g", [12, 1, "g", "EURUSD", 1000.0, self.clock()])
        self.assertEqual(ctx.position("EURUSD"), 1000.0)

    def test_resend_until_acked_with_the_same_bytes(self):
        self.s.emit_on_tick = True
        self.tick(1)
        first = self.signals.recv()
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertEqual(self.signals.recv(), first)
        self.assertEqual(self.rt.signals_resent, 1)

    def test_give_up_with_an_unacked_dead_letter(self):
        self.s.emit_on_tick = True
        self.tick(1)
        sid = self.s.emitted[-1]
        self.clock.advance(self.cfg.signal_ttl_ms + self.cfg.give_up_after_ms)
        self.rt._scan_outboxes(self.clock())
        self.assertEqual(self.rt.signals_given_up, 1)
        self.assertIn(("g:0", "unacked"), self.letters())
        self.assertTrue(self.journal().endswith(f"X {sid}\n".encode()))

    def test_timers_and_a_strategy_that_raises(self):
        fired = []
        ctx = self.rt.ctx
        t1 = ctx.every(10, lambda: fired.append("every"))
        t2 = ctx.at(self.clock() - 1, lambda: fired.append("at"))
        t3 = ctx.every(10, lambda: fired.append("cancelled"))
        ctx.cancel(t3)
        ctx.cancel(12345)  # unknown: a no-op
        self.rt._run_user_timers(time.monotonic_ns() + 25 * MS)
        self.assertEqual(sorted(set(fired)), ["at", "every"])
        self.assertNotIn(t2, self.rt.timer_fns)
        self.assertIn(t1, self.rt.timer_fns)
        self.s.raise_on_tick = True
        self.tick(1)
        self.s.raise_on_tick = False
        self.tick(2)
        self.assertEqual(self.rt.strategy_errors, 1)
        self.assertIn(("g:0", "strategy_error"), self.letters())
        self.assertEqual(self.s.ticks[-1][1], 2)

    def test_a_departed_shards_journal_is_adopted_resent_and_settled(self):
        # g-1.journal left by a scale-down from 2 shards to 1: instance 0 of 1 adopts it.
        from tp_strategy import journal
        path = os.path.join(self.tmp.name, "g-1.journal")
        j = journal.SignalJournal(path)
        j.append_boot(77)
        payload = wire.encode_signal("g.1.77.1", "g", 1, "GBPUSD", SELL, 5, 1.3, 1, self.clock(),
                                     self.clock() + 10**12, 9, self.clock())
        j.append_signal(payload)
        j.close()
        self.rt._adopt_departed(self.clock())
        self.assertEqual(self.rt.stats()["adopted_shards"], "1")
        self.assertEqual(self.rt.signals_pending(), 1)
        self.rt._scan_outboxes(self.clock())
        self.assertEqual(self.signals.recv(), payload)  # its original bytes and id
        wait_for(lambda: self.send_event(b"ACK.g.1", [8, 1, "g.1.77.1", 2, "", self.clock()]) or
                 self.rt.signals_pending() == 0, timeout=5, what="the adopted signal acked")
        self.clock.advance(1000)
        self.rt._scan_outboxes(self.clock())
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"B 77\n")  # settled: compacted to its boot record, still locked
        with self.assertRaises(journal.JournalLocked):
            journal.SignalJournal(path)

    def test_a_journal_that_cannot_be_written_stops_emission_until_it_can(self):
        self.s.emit_on_tick = True
        self.tick(1)
        self.assertTrue(self.s.emitted[-1])
        self.signals.recv()
        good_fd = self.rt.journal.fd
        self.rt.journal.fd = os.open(os.devnull, os.O_RDONLY)  # every write fails (EBADF), as a full disk would
        self.tick(2)
        self.assertEqual(self.s.emitted[-1], "")
        st = self.rt.stats()
        self.assertEqual((st["emitting"], st["signals_not_journaled"], st["journal_state"]), (False, 1, "write_failed"))
        self.assertIn("not emitting", st["alert"])
        self.assertEqual(st["write_failures"], 1)
        self.assertIn("Bad file descriptor", st["files_failing"][self.rt.journal.path])
        self.assertFalse(self.signals.poll(100), "a signal that is not journaled must not be sent")
        os.close(self.rt.journal.fd)
        self.rt.journal.fd = good_fd
        self.clock.advance(600)
        self.rt._probe_journal(self.clock())
        self.assertTrue(self.rt.emitting)
        self.tick(3)
        self.assertTrue(self.s.emitted[-1])
        self.assertEqual(self.rt.stats()["files_failing"], {})

    def test_unreadable_and_torn_records_are_reported_and_dropped_at_start(self):
        self.rt.close()
        path = os.path.join(self.tmp.name, "g-0.journal")
        pending = wire.encode_signal("g.0.5.1", "g", 0, "EURUSD", BUY, 1, 1.1, 1, self.clock(), self.clock() + 10**12,
                                     1, self.clock())
        torn = wire.encode_signal("g.0.5.2", "g", 0, "EURUSD", SELL, 1, 1.1, 1, self.clock(),
                                  self.clock() + 10**12, 2, self.clock())
        with open(path, "wb") as f:
            f.write(b"B 5\nS " + pending.hex().encode() + b"\nS zz\nS " + torn.hex().encode()[:40])
        rt = runtime.Runtime(self.cfg, self.cfg.group("g"), 0, 1, Recorder(), clock_ns=self.clock)
        rt.start_strategy()
        rt.open(self.ctx)
        self.addCleanup(rt.close)
        self.assertEqual((rt.journal_corrupt, rt.journal_torn, rt.signals_pending()), (1, 1, 1))
        reasons = [r for _, r in self.letters()]
        self.assertIn("journal_corrupt", reasons)
        self.assertIn("journal_torn", reasons)
        with open(path, "rb") as f:
            # Rewritten at start: this run's boot record and the one pending signal.
            self.assertEqual(f.read(), b"B %d\nS %s\n" % (rt.ids.boot_ms, pending.hex().encode()))
        self.assertGreater(rt.ids.boot_ms, 5)

    def test_emit_refusals(self):
        ctx = self.rt.ctx
        self.assertEqual(ctx.emit("EURUSD", BUY), "")  # no price yet
        self.tick(1)
        self.assertEqual(ctx.emit("XAUUSD", BUY), "")
        self.assertEqual(ctx.emit("EURUSD", 7), "")
        self.assertEqual(ctx.emit("EURUSD", BUY, quantity=-1), "")
        self.assertEqual(ctx.emit("EURUSD", BUY, ttl_ms=-5), "")
        self.assertEqual(self.rt.signals_refused, 5)
        sid = ctx.emit("EURUSD", "SELL", quantity=10, confidence=7, ttl_ms=50, trigger_price=1.5)
        m = wire.unpackb(self.signals.recv())
        self.assertEqual((m[2], m[6], m[7], m[8], m[9], m[11] - m[10]), (sid, SELL, 10.0, 1.5, 1.0, 50 * MS))

    # ---- orders with a life: terms, cancels ----

    def terms(self, payload):
        m = wire.unpackb(payload)
        return m[2], m[14:18]

    def ack(self, sid, status=1, reason="", cancel=None):
        fields = [8, 1, sid, status, reason, self.clock()]
        if cancel is not None:
            fields.append(cancel)
        self.event(b"ACK.g.0", fields)

    def order(self, sid, status, filled, side=BUY):
        self.event(b"ORDER.EURUSD", [7, 1, "B-1", "C-" + sid, sid, "EURUSD", side, status, 100.0, filled, 1.1, "",
                                     1, 2, 3])

    def test_order_terms_from_the_groups_settings_and_per_request(self):
        ctx = self.rt.ctx
        self.tick(1)  # bid 1.1, ask 1.1002
        sid = ctx.emit("EURUSD", BUY)
        self.assertEqual(self.terms(self.signals.recv()), (sid, [0, 0, 0, 0]))  # market IOC: no keys set
        self.assertEqual(ctx.order_settings, {"order_type": "market", "time_in_force": "ioc", "limit_offset_bps": 0.0,
                                              "good_till_ms": 0, "cancel_after_ms": 0})
        # The group's settings as the deployment file gives them ([strategy]'s, the group's over them).
        cfg = config.parse_config('[strategy]\norder_type = "limit"\ntime_in_force = "gtc"\nlimit_offset_bps = 10\n'
                                  '[[strategy.groups]]\nname = "g"\nkind = "python"\nentry = "x:Y"\n'
                                  'time_in_force = "gtd"\ncancel_after_ms = 3000\n')
        self.rt._read_order_defaults(cfg.group("g"), cfg)
        self.assertEqual(ctx.order_settings["cancel_after_ms"], 3000)
        now = self.clock()
        ttl = self.cfg.signal_ttl_ms * MS
        sid = ctx.emit("EURUSD", BUY)  # a limit 10 bps below the ask, good till the signal expires
        m = wire.unpackb(self.signals.recv())
        self.assertEqual((m[2], m[14], m[16], m[17], m[11]), (sid, 1, 2, now + ttl, now + ttl))
        self.assertAlmostEqual(m[15], 1.1002 * (1 - 0.001), places=12)
        _, t = self.terms(self.signals.recv() if ctx.emit("EURUSD", SELL, trigger_price=1.5) else b"")
        self.assertAlmostEqual(t[1], 1.5 * 1.001, places=12)  # a sell's limit above its trigger
        # Per request: a market order is IOC whatever the group's time in force.
        for kw, want in [(dict(order_type="market"), [0, 0.0, 0, 0]),
                         (dict(limit_price=1.2, time_in_force="gtc"), [1, 1.2, 1, 0]),
                         (dict(order_type=api.LIMIT, time_in_force=api.IOC), [1, 1.1002 * 0.999, 0, 0]),
                         (dict(good_till_ms=250), [1, 1.1002 * 0.999, 2, now + 250 * MS]),
                         (dict(ttl_ms=700), [1, 1.1002 * 0.999, 2, now + 700 * MS])]:
            sid = ctx.emit("EURUSD", BUY, **kw)
            self.assertTrue(sid, kw)
            got_sid, got = self.terms(self.signals.recv())
            self.assertEqual(got_sid, sid)
            self.assertEqual(got[0::2], want[0::2], kw)
            self.assertAlmostEqual(got[1], want[1], places=12, msg=kw)
        refused = self.rt.signals_refused
        for kw in [dict(order_type="stop"), dict(order_type="market", time_in_force="gtc"),
                   dict(order_type="market", limit_price=1.1), dict(time_in_force="gtc", good_till_ms=5),
                   dict(limit_price=-1.0), dict(time_in_force="day"), dict(good_till_ms=-1)]:
            self.assertEqual(ctx.emit("EURUSD", BUY, **kw), "", kw)
        self.assertEqual(self.rt.signals_refused, refused + 7)
        self.assertFalse(self.signals.poll(50), "a refused signal must not be sent")

    def test_a_cancel_follows_its_signal_and_is_resent_until_acked(self):
        ctx = self.rt.ctx
        self.s.emit_on_tick = True
        self.tick(1)
        self.tick(2)
        a, b = self.s.emitted
        self.signals.recv()
        self.signals.recv()
        self.assertEqual(ctx.open_orders(), [a, b])
        self.assertFalse(ctx.cancel("other.0.1.1"))  # not this group's
        self.assertFalse(ctx.cancel("g.1.1.1"))      # another instance's
        self.assertFalse(ctx.cancel(f"g.0.{self.rt.ids.boot_ms}.99"))  # this boot's, never emitted
        asked = self.clock()
        self.assertTrue(ctx.cancel(a, "too slow"))
        self.assertTrue(ctx.cancel(a))  # already on its way: no second request
        # Held while its signal is unacked: it must not overtake the signal.
        self.assertFalse(self.signals.poll(50))
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertEqual(self.terms(self.signals.recv())[0], a)
        self.assertEqual(self.terms(self.signals.recv())[0], b)
        self.assertFalse(self.signals.poll(50))
        # A cancel's ack is not its signal's, and the other way round.
        self.ack(b, cancel=True)
        self.assertEqual((self.rt.signals_pending(), self.rt.cancel_acks_unmatched), (2, 1))
        self.ack(a)
        import tp_proto
        name, c = tp_proto.decode(self.signals.recv())  # released by the signal's ack
        self.assertEqual((name, c["signal_id"], c["strategy"], c["instance"], c["reason"], c["created_ts_ns"]),
                         ("cancel_request", a, "g", 0, "too slow", asked))
        first = wire.packb([13, 1, a, "g", 0, "too slow", asked])
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertEqual(self.terms(self.signals.recv())[0], b)  # b still unacked
        self.assertEqual(self.signals.recv(), first)             # the cancel resent, the same bytes
        self.ack(a, status=2)  # the signal's duplicate ack: the cancel goes on
        self.assertEqual(self.rt.stats()["cancels_pending"], 1)
        self.ack(a, cancel=True)
        st = self.rt.stats()
        self.assertEqual((st["cancels_sent"], st["cancels_acked"], st["cancels_resent"], st["cancels_pending"]),
                         (1, 1, 1, 0))
        self.ack(b)
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertFalse(self.signals.poll(50), "nothing left to resend")
        self.assertEqual(self.rt.signals_pending(), 0)
        self.assertEqual(self.journal().count(b"A "), 2)  # cancels are not journaled
        # An order of an earlier run: cancelable once an ORDER event tells of it; sent at once (no signal pending).
        self.assertFalse(ctx.cancel("g.0.1.5"))
        self.order("g.0.1.5", api.ACCEPTED, 0.0)
        self.assertTrue(ctx.cancel("g.0.1.5"))
        self.assertEqual(tp_proto.decode(self.signals.recv())[1]["signal_id"], "g.0.1.5")
        self.ack("g.0.1.5", status=3, reason="order_final", cancel=True)
        st = self.rt.stats()
        self.assertEqual((st["cancels_sent"], st["cancels_refused"], st["cancels_not_open"], st["orders_open"]),
                         (2, 1, 4, 3))

    def test_a_final_order_ends_a_pending_cancel(self):
        ctx = self.rt.ctx
        self.s.emit_on_tick = True
        self.tick(1)
        self.tick(2)
        a, b = self.s.emitted
        self.ack(a)
        self.ack(b)
        self.signals.recv()
        self.signals.recv()
        self.assertTrue(ctx.cancel(a))
        self.signals.recv()
        self.order(a, api.PARTIALLY_FILLED, 30.0)  # not final any more: the cancel goes on
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertEqual(wire.unpackb(self.signals.recv())[0], 13)
        self.order(a, api.CANCELED, 40.0)  # the rest canceled, keeping its fills
        self.assertEqual(self.s.orders[-1].status_name, "CANCELED")
        self.assertTrue(self.s.orders[-1].final)
        st = self.rt.stats()
        self.assertEqual((st["cancels_pending"], st["cancels_overtaken"]), (0, 1))
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertFalse(self.signals.poll(50))
        self.assertFalse(ctx.cancel(a))  # final: nothing to cancel
        self.ack(a, cancel=True)         # its ack comes late: unmatched, harmless
        self.assertEqual(self.rt.cancel_acks_unmatched, 1)
        # EXPIRED: final, told to the strategy, its fills in the position.
        self.order(b, api.ACCEPTED, 0.0)
        self.assertEqual(ctx.open_orders(), [b])
        self.order(b, api.EXPIRED, 25.0)
        u = self.s.orders[-1]
        self.assertEqual((u.signal_id, u.status_name, u.filled_quantity, u.final), (b, "EXPIRED", 25.0, True))
        self.assertEqual(ctx.open_orders(), [])
        self.assertEqual(self.rt.fills_counted, {a: 40.0, b: 25.0})

    def test_a_refused_signal_drops_its_held_cancel(self):
        ctx = self.rt.ctx
        self.s.emit_on_tick = True
        self.tick(1)
        a = self.s.emitted[-1]
        self.signals.recv()
        self.assertTrue(ctx.cancel(a))
        self.ack(a, status=3, reason="risk_rejected: too big")
        self.assertTrue(self.s.orders[-1].refused)
        st = self.rt.stats()
        self.assertEqual((st["cancels_overtaken"], st["cancels_sent"], st["orders_open"]), (1, 0, 0))
        self.clock.advance(100)
        self.rt._scan_outboxes(self.clock())
        self.assertFalse(self.signals.poll(50), "no order, nothing to cancel")
        self.assertFalse(ctx.cancel(a))

    def test_the_examples_patient_cross_rests_a_limit_order_then_cancels_it(self):
        sys.path.insert(0, os.path.join(REPO, "examples", "python"))
        self.addCleanup(sys.path.remove, os.path.join(REPO, "examples", "python"))
        from my_strategies import PatientCross
        self.rt.params = self.rt.ctx.params = api.Params({"fast": "1", "slow": "2", "patience_ms": "500"})
        self.rt.strategy = PatientCross()
        self.rt.start_strategy()
        self.tick(1, bid=1.1, ask=1.1002)
        self.tick(2, bid=1.2, ask=1.2002)  # fast above slow
        self.tick(3, bid=1.1, ask=1.1002)  # crosses below: a SELL
        m = wire.unpackb(self.signals.recv())
        sid = m[2]
        self.assertEqual((m[6], m[14], m[16], m[17]), (SELL, 1, 1, 0))  # a limit, GTC
        self.assertAlmostEqual(m[15], 1.1001, places=12)                # at the mid
        self.ack(sid)
        self.order(sid, api.ACCEPTED, 0.0, side=SELL)  # resting
        self.rt._run_user_timers(time.monotonic_ns() + 600 * MS)
        import tp_proto
        name, c = tp_proto.decode(self.signals.recv())
        self.assertEqual((name, c["signal_id"], c["reason"]), ("cancel_request", sid, "not filled within 500 ms"))
        self.ack(sid, cancel=True)
        self.order(sid, api.CANCELED, 0.0, side=SELL)
        self.assertEqual((self.rt.cancels_acked, self.rt.ctx.open_orders(), self.rt.strategy_errors), (1, [], 0))


if __name__ == "__main__":
    unittest.main()
