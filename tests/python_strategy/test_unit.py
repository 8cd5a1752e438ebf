"""The Python strategy runtime's pure parts, without sockets or processes:
the signal journal (format, replay, torn and unreadable records, the lock,
compaction), the outbox (resend, ack, give-up), ids, sequence tracking,
feed liveness, sharding, params, the config's groups, the entry loader and
its exit code 2, the indicators against from-scratch references, and the
wire: order terms, cancel requests, cancel acks, EXPIRED."""

import contextlib
import io
import math
import os
import random
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "strategy", "python"))
sys.path.insert(0, os.path.join(REPO, "scripts"))
sys.path.insert(0, HERE)

from tp_strategy import api, config, feed, indicators, journal, main as tp_main, wire  # noqa: E402


def signal_payload(n, group="g", shard=0, boot=1000, expires=2_000_000_000_000_000_000):
    sid = f"{group}.{shard}.{boot}.{n}"
    return sid, wire.encode_signal(sid, group, shard, "EURUSD", 1 + n % 2, 1000, 1.085, 0.5,
                                   1_700_000_000_000_000_000, expires, n, 1_700_000_000_000_000_000)


class JournalTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.path = os.path.join(self.tmp.name, "g-0.journal")

    def read(self):
        with open(self.path, "rb") as f:
            return f.read()

    def test_records_are_the_cpp_format_and_replay_keeps_what_is_pending(self):
        j = journal.SignalJournal(self.path)
        self.assertTrue(j.append_boot(1000))
        payloads = {}
        for n in (1, 2, 3):
            sid, p = signal_payload(n)
            payloads[sid] = p
            self.assertTrue(j.append_signal(p))
        self.assertTrue(j.append_acked("g.0.1000.1"))
        self.assertTrue(j.append_given_up("g.0.1000.2"))
        j.close()
        lines = self.read().split(b"\n")
        self.assertEqual(lines[0], b"B 1000")
        self.assertEqual(lines[1], b"S " + payloads["g.0.1000.1"].hex().encode())
        self.assertEqual(lines[4:], [b"A g.0.1000.1", b"X g.0.1000.2", b""])
        j = journal.SignalJournal(self.path)
        r = j.replay
        self.assertEqual([s["signal_id"] for s in r.pending], ["g.0.1000.3"])
        self.assertEqual(r.pending_payloads, [payloads["g.0.1000.3"]])
        self.assertEqual((r.last_boot_ms, r.records, r.bad_records, r.torn_tail), (1000, 6, 0, False))
        self.assertEqual(r.pending[0]["instrument"], "EURUSD")
        j.close()

    def test_a_torn_last_record_is_set_aside_and_cut_off(self):
        sid, p = signal_payload(7)
        with open(self.path, "wb") as f:
            f.write(b"B 5\nS " + p.hex().encode()[:60])  # a crash mid-write
        j = journal.SignalJournal(self.path)
        self.assertTrue(j.replay.torn_tail)
        self.assertEqual(j.replay.torn.signal_id, sid)
        self.assertFalse(j.replay.torn.settled)
        self.assertEqual(j.replay.pending, [])
        self.assertEqual(self.read(), b"B 5\n")
        with open(self.path + ".torn", "rb") as f:
            self.assertIn(b"offset=4 bytes=62 raw=S ", f.read())
        self.assertTrue(j.append_boot(6))
        self.assertEqual(self.read(), b"B 5\nB 6\n")
        j.close()

    def test_an_unreadable_line_is_reported_with_its_id_never_skipped(self):
        sid, p = signal_payload(4)
        h = p.hex()
        garbled = h[:80] + "zz" + h[82:]  # the id sits in the first bytes: still recoverable
        with open(self.path, "wb") as f:
            f.write(b"B 1\nS " + garbled.encode() + b"\nQ what\nA \n")
        j = journal.SignalJournal(self.path)
        r = j.replay
        self.assertEqual(r.bad_records, 3)
        self.assertEqual([u.offset for u in r.unreadable], [4, 6 + len(garbled) + 1, 6 + len(garbled) + 1 + 7])
        self.assertEqual(r.unreadable[0].signal_id, sid)
        self.assertFalse(r.unreadable[0].settled)
        self.assertEqual(r.records, 1)
        j.close()

    def test_one_holder_at_a_time(self):
        j = journal.SignalJournal(self.path)
        with self.assertRaises(journal.JournalLocked):
            journal.SignalJournal(self.path)
        j.close()
        journal.SignalJournal(self.path).close()
        with self.assertRaises(journal.JournalError):
            journal.SignalJournal(self.path + ".missing", mode=journal.SignalJournal.ADOPT)

    def test_compaction_keeps_the_pending_signals_and_the_lock(self):
        j = journal.SignalJournal(self.path, compact_bytes=200)
        out = journal.SignalOutbox(j, resend_ns=1000)
        j.append_boot(1)
        for n in range(1, 6):
            sid, p = signal_payload(n)
            self.assertTrue(out.add(sid, p, 2 * 10**18, 0))
        for n in (1, 2, 4):
            self.assertTrue(out.ack(f"g.0.1000.{n}"))
        self.assertFalse(out.ack("g.0.1000.1"))  # a repeated ack
        self.assertTrue(j.should_compact())
        self.assertTrue(out.maybe_compact(1))
        self.assertFalse(os.path.exists(self.path + ".tmp"))
        with self.assertRaises(journal.JournalLocked):
            journal.SignalJournal(self.path)
        j.close()
        r = journal.SignalJournal(self.path).replay
        self.assertEqual(sorted(s["signal_id"] for s in r.pending), ["g.0.1000.3", "g.0.1000.5"])
        self.assertEqual(r.records, 3)

    def test_outbox_resends_until_acked_and_gives_up_after_expiry(self):
        j = journal.SignalJournal(self.path)
        out = journal.SignalOutbox(j, resend_ns=100, give_up_after_expiry_ns=1000)
        sid, p = signal_payload(1, expires=5000)
        self.assertTrue(out.add(sid, p, 5000, now_ns=0))
        sent = []
        self.assertEqual(out.resend_due(50, lambda q: sent.append(q.signal_id) or True), 0)
        self.assertEqual(out.resend_due(100, lambda q: sent.append(q.signal_id) or True), 1)
        self.assertEqual(out.resend_due(150, lambda q: True), 0)
        self.assertEqual(out.resend_due(200, lambda q: False), 0)  # not sent: still scheduled
        self.assertEqual(sent, [sid])
        self.assertEqual(out.give_up(5999), [])
        given = out.give_up(6000)
        self.assertEqual([g.signal_id for g in given], [sid])
        self.assertEqual(len(out), 0)
        j.close()
        self.assertTrue(self.read().endswith(b"X " + sid.encode() + b"\n"))
        j2 = journal.SignalJournal(self.path)
        out2 = journal.SignalOutbox(j2, resend_ns=100)
        out2.restore(now_ns=7)
        self.assertEqual(len(out2), 0)
        j2.close()

    def test_restore_makes_every_pending_signal_due_now(self):
        j = journal.SignalJournal(self.path)
        out = journal.SignalOutbox(j, resend_ns=10**9)
        for n in (1, 2):
            out.add(*signal_payload(n)[:2], 2 * 10**18, 0)
        j.close()
        j = journal.SignalJournal(self.path)
        out = journal.SignalOutbox(j, resend_ns=10**9)
        out.restore(now_ns=42)
        seen = []
        self.assertEqual(out.resend_due(42, lambda q: seen.append(q.payload) or True), 2)
        self.assertEqual(seen, [signal_payload(1)[1], signal_payload(2)[1]])
        j.close()

    def test_ids_never_repeat_across_restarts(self):
        self.assertEqual(journal.choose_boot_ms(2000, 1000), 2000)
        self.assertEqual(journal.choose_boot_ms(1000, 1000), 1001)
        self.assertEqual(journal.choose_boot_ms(500, 1000), 1001)  # the clock stepped back
        g = journal.SignalIdGenerator("py", 3, 1001)
        self.assertEqual([g.next(), g.next()], ["py.3.1001.1", "py.3.1001.2"])

    def test_recover_signal_id(self):
        sid, p = signal_payload(12)
        self.assertEqual(journal.recover_signal_id(p.hex()[:70]), sid)
        self.assertEqual(journal.recover_signal_id("c1c1"), "")
        self.assertEqual(journal.recover_signal_id(""), "")


class FeedTest(unittest.TestCase):
    def test_sequence_tracking(self):
        t = feed.SeqTracker()
        self.assertEqual(t.on_seq(40), feed.ACCEPT)  # joining a running feed: no gap
        self.assertEqual(t.on_seq(41), feed.ACCEPT)
        self.assertEqual(t.on_seq(45), feed.ACCEPT)
        self.assertEqual(t.gaps, 3)
        self.assertEqual(t.on_seq(45), feed.STALE)  # duplicate
        self.assertEqual(t.on_seq(43), feed.STALE)  # out of order
        self.assertEqual(t.out_of_order, 2)
        self.assertEqual(t.on_seq(1), feed.RESTART)  # the gateway started again
        self.assertEqual(t.on_seq(2), feed.ACCEPT)
        t.expect_restart()  # heartbeats said so: the next seq starts a series
        self.assertEqual(t.on_seq(7), feed.RESTART)
        self.assertEqual((t.restarts, t.gaps), (2, 3))

    def test_liveness(self):
        m = feed.FeedMonitor(100)
        self.assertFalse(m.alive(0))  # dead before the first tick or heartbeat
        m.on_activity(1000)
        self.assertTrue(m.alive(1100))
        self.assertFalse(m.alive(1101))

    def test_freshness_the_same_rules_as_the_cpp_runtime(self):
        ms = 1_000_000
        now, age, skew, signal_age = 1_800_000_000 * 10**9, 5000 * ms, 1000 * ms, 250 * ms
        self.assertEqual(feed.judge_stamp(now - 5000 * ms, now, age, skew), feed.FRESH)
        self.assertEqual(feed.judge_stamp(now - 5000 * ms - 1, now, age, skew), feed.TOO_OLD)
        self.assertEqual(feed.judge_stamp(now + 1000 * ms, now, age, skew), feed.FRESH)
        self.assertEqual(feed.judge_stamp(now + 1000 * ms + 1, now, age, skew), feed.FUTURE)
        # A backlog: believed (indicators), not traded on.
        self.assertTrue(feed.tradeable(now - 250 * ms, now, signal_age))
        self.assertFalse(feed.tradeable(now - 250 * ms - 1, now, signal_age))
        self.assertEqual(feed.judge_stamp(now - 3000 * ms, now, age, skew), feed.FRESH)
        self.assertFalse(feed.tradeable(now - 3000 * ms, now, signal_age))
        self.assertTrue(feed.tradeable(now + 900 * ms, now, signal_age))

    def test_a_feed_whose_every_message_is_refused_is_dead(self):
        ms = 1_000_000
        m = feed.FeedMonitor(2000 * ms)
        now = 1_800_000_000 * 10**9
        for step in range(1000):  # a gateway 6 s behind, every 4 ms for 4 s
            t = now + step * 4 * ms
            self.assertFalse(m.on_message(t, feed.judge_stamp(t - 6000 * ms, t, 5000 * ms, 1000 * ms)))
            self.assertFalse(m.alive(t))
        t = now + 4000 * ms
        self.assertTrue(m.on_message(t, feed.judge_stamp(t, t, 5000 * ms, 1000 * ms)))
        self.assertTrue(m.alive(t))



class ParamsTest(unittest.TestCase):
    def test_typed_getters_and_unread_keys(self):
        p = api.Params({"fast": "5", "ratio": "0.25", "on": "true", "name": "x", "typo": "1"}, "grp.params")
        self.assertEqual(p.integer("fast", 1), 5)
        self.assertEqual(p.number("ratio", 1.0), 0.25)
        self.assertTrue(p.flag("on", False))
        self.assertEqual(p.text("name", ""), "x")
        self.assertEqual(p.integer("missing", 9), 9)
        self.assertEqual(p.unread(), ["typo"])
        with self.assertRaisesRegex(api.ParamError, r'grp.params.name must be an integer \(got "x"\)'):
            p.integer("name", 0)
        with self.assertRaisesRegex(api.ParamError, "must be true or false"):
            api.Params({"on": "yes"}).flag("on", False)
        with self.assertRaisesRegex(api.ParamError, "must be a number"):
            api.Params({"r": "1.5x"}).number("r", 0)
        with self.assertRaisesRegex(api.ParamError, "fast must be >= 1"):
            api.Params({"fast": "0"}).require(False, "fast", ">= 1")


GROUPS_TOML = """
[[instruments]]
symbol = "EURUSD"
[[instruments]]
symbol = "GBPUSD"
[strategy]
quantity = 500
resend_ms = 300
[[strategy.groups]]
name = "trend"
kind = "sma_crossover"
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "."
instances = 3
instruments = ["GBPUSD"]
[strategy.groups.params]
n = 7
ratio = 0.5
on = true
"""


class ConfigTest(unittest.TestCase):
    def test_groups_as_the_cpp_resolves_them(self):
        c = config.parse_config(GROUPS_TOML, ["strategy.feed_timeout_ms=900"])
        self.assertEqual([g.name for g in c.groups], ["trend", "py"])
        py = c.group("py")
        self.assertEqual((py.kind, py.entry, py.instances, py.quantity, py.instruments),
                         ("python", "strategies:EveryNth", 3, 500.0, ["GBPUSD"]))
        self.assertEqual(py.params, {"n": "7", "ratio": "0.5", "on": "true"})
        self.assertEqual(c.group("trend").params, {"fast": "10", "slow": "30"})
        self.assertEqual((c.resend_ms, c.feed_timeout_ms), (300, 900))

    def test_shorthand_and_default_groups(self):
        c = config.parse_config('[strategy]\nname = "every_nth"\n', ["strategy.every_nth.n=4"])
        self.assertEqual([(g.name, g.kind, g.params) for g in c.groups], [("strategy", "every_nth", {"n": "4"})])
        # A float parameter keeps every digit (the C++ prints 6 significant ones).
        c = config.parse_config('[strategy]\nname = "rsi_reversion"\n',
                                ["strategy.rsi_reversion.oversold=25.123456789"])
        self.assertEqual(c.groups[0].params, {"period": "14", "oversold": "25.123456789", "overbought": "70.0"})
        c = config.parse_config("")
        self.assertEqual([(g.name, g.kind, g.instances) for g in c.groups],
                         [("trend", "sma_crossover", 2), ("revert", "rsi_reversion", 1)])

    def test_every_endpoint_of_the_file_is_read(self):
        # Those of the executor and dll_gateway too, which the shipped file
        # has commented out: uncommented, a strategy still starts.
        with open(os.path.join(REPO, "config", "default.toml")) as f:
            text = f.read().replace('# reports = "', 'reports = "').replace('# control = "', 'control = "')
        self.assertIn('\nreports = "tcp://127.0.0.1:7106"', text)
        self.assertIn('\ncontrol = "tcp://127.0.0.1:7107"', text)
        c = config.parse_config(text)
        self.assertEqual(c.endpoints["orders"], "tcp://127.0.0.1:7104")
        self.assertEqual(c.endpoints["control"], "tcp://127.0.0.1:7107")
        # Unset, they are derived from orders as common/src/endpoints.cpp derives them.
        c = config.parse_config('[endpoints]\norders = "tcp://127.0.0.1:9000"\n')
        self.assertEqual((c.endpoints["reports"], c.endpoints["control"]),
                         ("tcp://127.0.0.1:9002", "tcp://127.0.0.1:9003"))
        c = config.parse_config('[endpoints]\norders = "ipc:///tmp/tp/orders"\n')
        self.assertEqual(c.endpoints["reports"], "ipc:///tmp/tp/orders.reports")
        with self.assertRaisesRegex(config.ConfigError, "endpoints.reports: cannot derive it from orders"):
            config.parse_config('[endpoints]\norders = "tcp://dll-host:orders"\n')
        with self.assertRaisesRegex(config.ConfigError, "endpoints.control must be a tcp://, ipc:// or inproc://"):
            config.parse_config('[endpoints]\ncontrol = "http://127.0.0.1:7107"\n')

    def test_refusals_name_the_key(self):
        for text, msg in [
            ('[[strategy.groups]]\nname = "py"\nkind = "python"\n', "entry must be set"),
            ('[[strategy.groups]]\nname = "py"\nkind = "python"\nentry = "nocolon"\n', 'entry must be "module:Class"'),
            ('[[strategy.groups]]\nname = "Py"\nkind = "every_nth"\n', "name must be"),
            ('[[strategy.groups]]\nname = "py"\nkind = "every_nth"\nbogus = 1\n', "unknown key strategy.groups"),
            ('[strategy]\nresend_ms = 0\n', "strategy.resend_ms must be > 0"),
            ('[run]\nstats_every = 5\n', "unknown key run.stats_every"),
            # The supervisor's reading (settings.py), held to the C++ one: the same refusals and texts.
            ('[strategy.sma_crossover]\nfast = 40\n', "strategy.sma_crossover.slow must be > fast"),
            ('[strategy]\nresend_ms = 9999999999\n', "strategy.resend_ms must be an integer in range"),
        ]:
            with self.assertRaisesRegex(config.ConfigError, msg):
                config.parse_config(text)


class EntryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_bad_entries_are_clear_errors(self):
        with self.assertRaisesRegex(tp_main.EntryError, "module no_such_module_xyz not found"):
            tp_main.load_entry("no_such_module_xyz:X")
        with self.assertRaisesRegex(tp_main.EntryError, "has no Missing"):
            tp_main.load_entry("strategies:Missing")
        with self.assertRaisesRegex(tp_main.EntryError, "not a subclass of tp_strategy.Strategy"):
            tp_main.load_entry("strategies:NotAStrategy")
        with self.assertRaisesRegex(tp_main.EntryError, "python_path /nonexistent-dir: no such directory"):
            tp_main.load_entry("strategies:EveryNth", "/nonexistent-dir")
        self.assertIs(tp_main.load_entry("strategies:EveryNth").__name__, "EveryNth")

    def run_main(self, entry, params=""):
        cfg = os.path.join(self.tmp.name, "deploy.toml")
        run_dir = os.path.join(self.tmp.name, "run")
        with open(cfg, "w") as f:
            f.write(f'[run]\ndir = "{run_dir}"\n[[strategy.groups]]\nname = "py"\nkind = "python"\n'
                    f'entry = "{entry}"\n[strategy.groups.params]\n{params}\n')
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = tp_main.main(["--config", cfg, "--group", "py", "--shard", "0", "--shards", "1"])
        return rc, err.getvalue(), run_dir

    def test_exit_code_2_before_any_file_or_socket(self):
        for entry, params, msg in [
            ("no_such_module_xyz:X", "", "not found"),
            ("strategies:NotAStrategy", "", "not a subclass"),
            ("strategies:WantsParam", 'window = "wide"', 'window must be an integer'),
            ("strategies:WantsParam", "windw = 3", "unknown parameter\\(s\\) windw"),
            ("strategies:EveryNth", "n = 0", "n must be >= 1"),
        ]:
            rc, err, run_dir = self.run_main(entry, params)
            self.assertEqual(rc, 2, err)
            self.assertRegex(err, msg)
            self.assertFalse(os.path.exists(os.path.join(run_dir, "py-0.journal")))


def random_walk(n, seed, start=100.0, step=0.5):
    rng = random.Random(seed)
    x, out = start, []
    for _ in range(n):
        x += rng.gauss(0.0, step)
        out.append(x)
    return out


def rel_close(got, want, rel=1e-9):
    return abs(got - want) <= rel * max(abs(got), abs(want), 1e-300)


class IndicatorTest(unittest.TestCase):
    WINDOWS = (1, 2, 3, 7, 30, 200)
    POINTS = 1500

    def test_sma_is_the_mean_of_the_window(self):
        xs = random_walk(self.POINTS, 1)
        for w in self.WINDOWS:
            sma = indicators.Sma(w)
            for i, x in enumerate(xs):
                sma.update(x)
                n = min(w, i + 1)
                self.assertEqual(sma.ready(), i + 1 >= w)
                self.assertTrue(rel_close(sma.value(), math.fsum(xs[i + 1 - n:i + 1]) / n), (w, i))

    def test_ema_seeded_with_the_mean_of_the_first_n(self):
        xs = random_walk(self.POINTS, 2)
        for n in self.WINDOWS:
            ema = indicators.Ema(n)
            alpha = 2.0 / (n + 1.0)
            ref = None
            for i, x in enumerate(xs):
                ema.update(x)
                self.assertEqual(ema.ready(), i + 1 >= n)
                if i + 1 == n:
                    ref = sum(xs[:n]) / n
                elif i + 1 > n:
                    ref = alpha * x + (1 - alpha) * ref
                if ref is not None:
                    self.assertTrue(rel_close(ema.value(), ref), (n, i))

    def test_rsi_is_wilders(self):
        xs = random_walk(self.POINTS, 3)
        for period in (1, 2, 14, 50):
            rsi = indicators.Rsi(period)
            g = l = 0.0
            for i, x in enumerate(xs):
                rsi.update(x)
                self.assertEqual(rsi.ready(), i >= period)
                if i == 0:
                    continue
                d = x - xs[i - 1]
                if i <= period:
                    g += max(d, 0.0)
                    l += max(-d, 0.0)
                    if i == period:
                        g, l = g / period, l / period
                else:
                    g = (g * (period - 1) + max(d, 0.0)) / period
                    l = (l * (period - 1) + max(-d, 0.0)) / period
                if i >= period:
                    want = 100.0 if l == 0 else 100.0 - 100.0 / (1.0 + g / l)
                    self.assertTrue(rel_close(rsi.value(), want), (period, i))

    def test_rsi_conventions(self):
        rsi = indicators.Rsi(3)
        for x in (1.0, 2.0, 3.0, 4.0, 4.0):
            rsi.update(x)
        self.assertEqual(rsi.value(), 100.0)  # no loss: 100, a flat series too
        rsi.update(3.0)
        self.assertLess(rsi.value(), 100.0)
        rsi = indicators.Rsi(14)
        for p in (1.0, 1.0002, 1.0001, 1.0003, 1.0, 1.0004, 1.0002, 1.0001, 1.0005, 1.0003, 1.0002, 1.0006, 1.0004,
                  1.0005, 1.0003, 1.0007):
            rsi.update(p)
        level = rsi.value()
        for _ in range(100_000):
            rsi.update(1.0007)
        self.assertAlmostEqual(rsi.value(), level, delta=1e-9)  # no drift on a long flat series
        rsi.update(1.0008)
        self.assertGreater(rsi.value(), 99.0)

    def test_rolling_min_max_match_a_window_scan(self):
        xs = random_walk(self.POINTS, 4)
        xs = [round(x) if i % 2 == 0 else x for i, x in enumerate(xs)]  # ties
        for w in self.WINDOWS:
            lo, hi = indicators.RollingMin(w), indicators.RollingMax(w)
            for i, x in enumerate(xs):
                lo.update(x)
                hi.update(x)
                self.assertEqual(lo.ready(), i + 1 >= w)
                window = xs[max(0, i + 1 - w):i + 1]
                self.assertEqual((lo.value(), hi.value()), (min(window), max(window)), (w, i))

    def test_non_finite_values_are_ignored(self):
        sma, ema, rsi = indicators.Sma(3), indicators.Ema(3), indicators.Rsi(2)
        for x in (1.0, 2.0, math.nan, 3.0, math.inf, 4.0, -math.inf):
            sma.update(x)
            ema.update(x)
            rsi.update(x)
        self.assertEqual(sma.value(), 3.0)
        self.assertTrue(math.isfinite(ema.value()))
        self.assertEqual(rsi.value(), 100.0)
        for cls in (indicators.Sma, indicators.Ema, indicators.Rsi, indicators.RollingMin, indicators.RollingMax):
            with self.assertRaises(ValueError):
                cls(0)


class WireTest(unittest.TestCase):
    def test_tick_check_names_the_cpp_reasons(self):
        import tp_proto
        good = dict(instrument="EURUSD", bid=1.1, ask=1.2, bid_volume=1, ask_volume=2, source_ts_ns=5, seq=3,
                    gateway_ts_ns=6)
        self.assertEqual(wire.check_tick(wire.unpack(tp_proto.encode("tick", good))),
                         ("EURUSD", 1.1, 1.2, 1.0, 2.0, 5, 3, 6))
        for change, reason in [({"bid": 1.3}, "out_of_range"), ({"seq": 0}, "out_of_range"),
                               ({"instrument": "EUR.USD"}, "out_of_range"), ({"bid": math.nan}, "out_of_range")]:
            payload = wire.packb([1, 1, *dict(good, **change).values()])
            with self.assertRaises(wire.WireError) as e:
                wire.check_tick(wire.unpack(payload))
            self.assertEqual(e.exception.reason, reason, change)
        for payload, reason in [(b"\xc1", "malformed"), (wire.packb(5), "not_an_array"),
                                (wire.packb([2, 1, "gateway", 1, 2, 3]), "wrong_message"),
                                (wire.packb([1, 2]), "unknown_version"), (wire.packb([1, 1, "EURUSD"]), "missing_field"),
                                (wire.packb([1, 1, 5, 1.0, 1.0, 0, 0, 0, 1, 0]), "wrong_type")]:
            with self.assertRaises(wire.WireError) as e:
                wire.check_tick(wire.unpack(payload))
            self.assertEqual(e.exception.reason, reason, payload)

    def test_signal_encoding_is_what_tp_proto_decodes(self):
        import tp_proto
        p = wire.encode_signal("g.0.1.1", "g", 0, "EURUSD", 1, 1000, 1.5, 1, 10, 20, 3, 4)
        name, m = tp_proto.decode(p)
        self.assertEqual(name, "signal")
        self.assertEqual((m["signal_id"], m["quantity"], m["confidence"], m["expires_ts_ns"]), ("g.0.1.1", 1000.0, 1.0, 20))
        self.assertEqual(journal.decode_signal(p)["signal_id"], "g.0.1.1")
        # Market IOC when no terms are given, appended all the same (as the C++ encoder does).
        self.assertEqual((m["order_type"], m["limit_price"], m["time_in_force"], m["good_till_ns"]), (0, 0.0, 0, 0))
        self.assertEqual(len(wire.unpack(p)), 2 + 12 + 4)

    def test_signal_terms_on_the_wire(self):
        import tp_proto
        p = wire.encode_signal("g.0.1.2", "g", 0, "EURUSD", 2, 5, 1.5, 1, 10, 20, 3, 4, wire.LIMIT, 1.5015, wire.GTD,
                               99)
        name, m = tp_proto.decode(p)
        self.assertEqual((m["order_type"], m["limit_price"], m["time_in_force"], m["good_till_ns"]),
                         (1, 1.5015, 2, 99))
        s = journal.decode_signal(p)
        self.assertEqual((s["order_type"], s["limit_price"], s["time_in_force"], s["good_till_ns"]), (1, 1.5015, 2, 99))
        # An older writer's signal (no terms) reads as market IOC.
        old = wire.packb(wire.unpack(p)[:14])
        s = journal.decode_signal(old)
        self.assertEqual((s["order_type"], s["limit_price"], s["time_in_force"], s["good_till_ns"]), (0, 0.0, 0, 0))
        # Terms the C++ validate() refuses: the C++ replay could not read them, nor can this one.
        for terms in [(wire.LIMIT, 0.0, wire.GTC, 0), (wire.MARKET, 1.5, wire.IOC, 0), (wire.MARKET, 0.0, wire.GTC, 0),
                      (wire.LIMIT, 1.5, wire.GTD, 0), (wire.LIMIT, 1.5, wire.GTC, 7), (2, 1.5, wire.IOC, 0),
                      (wire.LIMIT, 1.5, 3, 0), (wire.LIMIT, "1.5", wire.IOC, 0)]:
            bad = wire.packb([*wire.unpack(p)[:14], *terms])
            self.assertIsNone(journal.decode_signal(bad), terms)

    def test_check_terms_speaks_as_the_cpp(self):
        ok = [(wire.MARKET, 0.0, wire.IOC, 0), (wire.LIMIT, 1.1, wire.IOC, 0), (wire.LIMIT, 1.1, wire.GTC, 0),
              (wire.LIMIT, 1.1, wire.GTD, 5)]
        for t in ok:
            self.assertIsNone(wire.check_terms(*t), t)
        for t, why in [((wire.LIMIT, 0.0, wire.IOC, 0), "limit_price must be positive and finite for a LIMIT order"),
                       ((wire.LIMIT, math.inf, wire.IOC, 0), "limit_price must be positive and finite for a LIMIT order"),
                       ((wire.MARKET, 1.1, wire.IOC, 0), "limit_price must be 0 for a MARKET order"),
                       ((wire.MARKET, 0.0, wire.GTD, 5), "a MARKET order is IOC"),
                       ((wire.LIMIT, 1.1, wire.GTD, 0), "good_till_ns must be set for a GTD order"),
                       ((wire.LIMIT, 1.1, wire.GTC, 5), "good_till_ns is for GTD orders only")]:
            self.assertEqual(wire.check_terms(*t), why, t)

    def test_cancel_request_encoding_is_what_tp_proto_decodes(self):
        import tp_proto
        p = wire.encode_cancel("g.0.1.2", "g", 3, "x" * 2000, 77)
        name, m = tp_proto.decode(p)
        self.assertEqual(name, "cancel_request")
        self.assertEqual((m["signal_id"], m["strategy"], m["instance"], len(m["reason"]), m["created_ts_ns"]),
                         ("g.0.1.2", "g", 3, wire.MAX_TEXT, 77))

    def test_acks_with_and_without_the_cancel_field(self):
        import tp_proto
        old = tp_proto.encode("signal_ack", dict(signal_id="g.0.1.1", status=1, reason="", ts_ns=5))
        self.assertEqual(wire.decode_ack(old), ("g.0.1.1", 1, "", False))
        self.assertEqual(wire.decode_ack(wire.packb([8, 1, "g.0.1.1", 1, "", 5])), ("g.0.1.1", 1, "", False))
        acked = tp_proto.encode("signal_ack", dict(signal_id="g.0.1.1", status=3, reason="order_final", ts_ns=5,
                                                  cancel=True))
        self.assertEqual(wire.decode_ack(acked), ("g.0.1.1", 3, "order_final", True))
        # A newer writer's further field is ignored; a cancel that is not a boolean is refused.
        self.assertEqual(wire.decode_ack(wire.packb([8, 1, "g.0.1.1", 2, "", 5, True, "more"]))[3], True)
        with self.assertRaises(wire.WireError) as e:
            wire.decode_ack(wire.packb([8, 1, "g.0.1.1", 2, "", 5, 1]))
        self.assertEqual((e.exception.reason, e.exception.detail), ("wrong_type", "cancel is not a boolean"))

    def test_order_events_may_be_expired(self):
        ev = [7, 1, "B-1", "C-g.0.1.1", "g.0.1.1", "EURUSD", 1, api.EXPIRED, 10.0, 4.0, 1.1, "", 1, 2, 3]
        self.assertEqual(wire.decode_order_event(wire.packb(ev))["status"], api.EXPIRED)
        ev[7] = 9
        with self.assertRaises(wire.WireError):
            wire.decode_order_event(wire.packb(ev))
        self.assertEqual([s for s in api.STATUS_NAMES if api.is_final(s)],
                         [api.FILLED, api.REJECTED, api.CANCELED, api.EXPIRED])
        self.assertTrue(api.OrderUpdate(status=api.EXPIRED).final)
        self.assertFalse(api.OrderUpdate(status=api.PARTIALLY_FILLED).final)


if __name__ == "__main__":
    unittest.main()
