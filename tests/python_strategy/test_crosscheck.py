"""The Python runtime against the C++ code itself (crosscheck.cpp, run as a
small tool): a journal written by the C++ SignalJournal is replayed by the
Python one, a journal written (and compacted, torn, garbled) by the Python
one is replayed by the C++ one with the same result, the indicators give
the C++ values bit for bit on the same series, and the C++ decoder reads the
runtime's signals (their order terms) and cancel requests, refusing bad terms
in the words of wire.check_terms, while the runtime reads the C++ cancel acks
and EXPIRED order events; the Prometheus writer (tp_strategy/metrics.py)
writes the C++ MetricsText's text, byte for byte, for the same calls and
values."""

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "strategy", "python"))

from tp_strategy import indicators, journal, metrics, wire  # noqa: E402

TOOL = os.environ.get("TP_CROSSCHECK", "")


def tool(*args, stdin=None):
    r = subprocess.run([TOOL, *args], input=stdin, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"crosscheck {' '.join(args)}: rc {r.returncode}: {r.stderr}")
    return r.stdout


def replay_line(out):
    """The tool's JSON line (spdlog's warnings about a torn or unreadable
    record go to stdout before it)."""
    return json.loads(out.strip().splitlines()[-1])


@unittest.skipUnless(TOOL and os.access(TOOL, os.X_OK), "TP_CROSSCHECK (the crosscheck tool) not built")
class JournalCrossCheck(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.path = os.path.join(self.tmp.name, "g-0.journal")

    def cpp_replay(self):
        return replay_line(tool("read", self.path))

    def test_python_replays_a_cpp_journal(self):
        tool("write", self.path)
        j = journal.SignalJournal(self.path)
        r = j.replay
        self.assertEqual((r.last_boot_ms, r.records, r.bad_records, r.torn_tail), (1000, 6, 0, False))
        self.assertEqual([s["signal_id"] for s in r.pending], ["g.0.1000.3"])
        s = r.pending[0]
        self.assertEqual((s["strategy"], s["instance"], s["instrument"], s["action"], s["quantity"],
                          s["confidence"], s["causation_seq"], s["expires_ts_ns"]),
                         ("g", 0, "EURUSD", 1, 1000, 0.5, 3, 1_700_000_005_000_000_000))
        # Appending after the C++ records keeps one journal both can read.
        self.assertTrue(j.append_acked("g.0.1000.3"))
        j.close()
        self.assertEqual(self.cpp_replay()["pending"], [])

    def test_cpp_replays_a_python_journal_the_same_way(self):
        j = journal.SignalJournal(self.path)
        out = journal.SignalOutbox(j, resend_ns=1)
        j.append_boot(1234)
        ids = []
        for n in range(1, 6):
            sid = f"py.0.1234.{n}"
            ids.append(sid)
            self.assertTrue(out.add(sid, wire.encode_signal(sid, "py", 0, "GBPUSD", 2, 10.5, 1.25, 0.75, 1, 2, n, 0),
                                    2, 0))
        out.ack(ids[0])
        out.give_up(10**12)  # every one expired long ago...
        j.close()
        want = self.cpp_replay()
        self.assertEqual((want["pending"], want["records"], want["bad_records"], want["last_boot_ms"]),
                         ([], 11, 0, 1234))
        # ...and the same again with some still pending, a garbled line and a torn tail.
        os.unlink(self.path)
        j = journal.SignalJournal(self.path)
        out = journal.SignalOutbox(j, resend_ns=1)
        j.append_boot(99)
        payloads = []
        for n in range(1, 4):
            sid = f"py.0.99.{n}"
            p = wire.encode_signal(sid, "py", 0, "GBPUSD", 1, 1, 1.5, 1, 1, 2 * 10**18, n, 0)
            payloads.append(p)
            out.add(sid, p, 2 * 10**18, 0)
        out.ack("py.0.99.2")
        j.close()
        with open(self.path, "ab") as f:
            f.write(b"S " + payloads[0].hex()[:50].encode() + b"zz\n")  # an unreadable copy of #1
            f.write(b"S " + payloads[2].hex()[:40].encode())             # torn: a crash mid-write
        py = journal.SignalJournal(self.path, mode=journal.SignalJournal.ADOPT)
        py_view = {"pending": [s["signal_id"] for s in py.replay.pending], "records": py.replay.records,
                   "bad_records": py.replay.bad_records, "torn": py.replay.torn_tail,
                   "torn_id": py.replay.torn.signal_id,
                   "unreadable": [[u.offset, u.signal_id, u.settled] for u in py.replay.unreadable]}
        size_after_cut = py.size
        py.close()
        cpp = self.cpp_replay()  # the torn tail is gone now: both cut it at the same offset
        self.assertEqual(cpp["size"], size_after_cut)
        self.assertEqual(py_view["pending"], ["py.0.99.1", "py.0.99.3"])
        self.assertEqual(py_view["unreadable"], [[size_after_cut - 55, "py.0.99.1", True]])
        self.assertEqual(py_view["torn_id"], "py.0.99.3")
        for key in ("pending", "records", "bad_records", "unreadable"):
            self.assertEqual(cpp[key], py_view[key], key)

    def test_each_reads_the_others_compaction(self):
        tool("write", self.path)
        j = journal.SignalJournal(self.path)
        out = journal.SignalOutbox(j, resend_ns=1)
        out.restore(0)
        self.assertTrue(out.compact(j.replay.last_boot_ms))
        j.close()
        with open(self.path, "rb") as f:
            self.assertEqual(f.read().count(b"\n"), 2)  # B and the one pending S
        self.assertEqual(self.cpp_replay()["pending"], ["g.0.1000.3"])
        cpp = replay_line(tool("compact", self.path))
        self.assertEqual(cpp["pending"], ["g.0.1000.3"])
        j = journal.SignalJournal(self.path)
        self.assertEqual([s["signal_id"] for s in j.replay.pending], ["g.0.1000.3"])
        self.assertEqual(j.replay.last_boot_ms, 1000)
        j.close()


@unittest.skipUnless(TOOL and os.access(TOOL, os.X_OK), "TP_CROSSCHECK (the crosscheck tool) not built")
class IndicatorCrossCheck(unittest.TestCase):
    def test_bit_for_bit_the_cpp_values(self):
        rng = random.Random(11)
        x, series = 1.085, []
        for i in range(3000):
            x = round(x + rng.gauss(0, 0.0002), 5)
            series.append(x)
        series[100:400] = [series[99]] * 300           # a flat stretch
        text = "\n".join(repr(v) for v in series) + "\n"
        for n in (1, 2, 14, 50):
            lines = tool("indicators", str(n), stdin=text).splitlines()
            sma, ema, rsi = indicators.Sma(n), indicators.Ema(n), indicators.Rsi(n)
            lo, hi = indicators.RollingMin(n), indicators.RollingMax(n)
            self.assertEqual(len(lines), len(series))
            for i, (v, line) in enumerate(zip(series, lines)):
                for ind in (sma, ema, rsi, lo, hi):
                    ind.update(v)
                *vals, flags = line.split()
                got = [sma.value(), ema.value(), rsi.value(), lo.value(), hi.value()]
                want = [float(s) for s in vals]
                for name, g, w in zip(("sma", "ema", "rsi", "min", "max"), got, want):
                    if math.isnan(w):
                        self.assertTrue(math.isnan(g), (n, i, name))
                    else:
                        self.assertEqual(g, w, (n, i, name))
                self.assertEqual(flags, "".join(str(int(ind.ready())) for ind in (sma, ema, rsi, lo)), (n, i))


@unittest.skipUnless(TOOL and os.access(TOOL, os.X_OK), "TP_CROSSCHECK (the crosscheck tool) not built")
class WireCrossCheck(unittest.TestCase):
    """What the runtime sends, as the executor's C++ decoder reads it, and
    what the executor sends, as the runtime reads it."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def cpp_decode(self, payload):
        path = os.path.join(self.tmp.name, "payload.bin")
        with open(path, "wb") as f:
            f.write(payload)
        return json.loads(tool("decode", path).strip().splitlines()[-1])

    def test_signals_with_terms_from_the_groups_settings_and_per_request(self):
        from tp_strategy import api, config, runtime
        cfg = config.parse_config('[strategy]\norder_type = "limit"\ntime_in_force = "gtd"\nlimit_offset_bps = 25\n'
                                  '[[strategy.groups]]\nname = "g"\nkind = "python"\nentry = "x:Y"\n')
        rt = runtime.Runtime(cfg, cfg.group("g"), 0, 1, api.Strategy())
        now, ttl = 1_700_000_000_000_000_000, 5_000_000_000
        cases = [
            (dict(), (1, 1.2345 * (1 - 0.0025), 2, now + ttl)),
            (dict(order_type="market"), (0, 0.0, 0, 0)),
            (dict(limit_price=1.23, time_in_force="gtc"), (1, 1.23, 1, 0)),
            (dict(time_in_force="ioc"), (1, 1.2345 * (1 - 0.0025), 0, 0)),
            (dict(good_till_ms=1500), (1, 1.2345 * (1 - 0.0025), 2, now + 1_500_000_000)),
        ]
        for n, (kw, want) in enumerate(cases, 1):
            terms = rt.resolve_terms(kw.get("order_type"), kw.get("limit_price", 0.0), kw.get("time_in_force"),
                                     kw.get("good_till_ms", 0), api.BUY, 1.2345, now, ttl)
            self.assertNotIsInstance(terms, str, kw)
            sid = f"g.0.1000.{n}"
            got = self.cpp_decode(wire.encode_signal(sid, "g", 0, "EURUSD", 1, 1000, 1.2345, 1, now, now + ttl, n, 0,
                                                     *terms))
            self.assertEqual(got.get("signal_id"), sid, got)
            self.assertEqual((got["order_type"], got["limit_price"], got["time_in_force"], got["good_till_ns"]), want,
                             kw)

    def test_the_cpp_refuses_bad_terms_in_the_same_words(self):
        for terms in [(wire.LIMIT, 0.0, wire.GTC, 0), (wire.MARKET, 1.5, wire.IOC, 0), (wire.MARKET, 0.0, wire.GTC, 0),
                      (wire.LIMIT, 1.5, wire.GTD, 0), (wire.LIMIT, 1.5, wire.GTC, 7)]:
            got = self.cpp_decode(wire.encode_signal("g.0.1.1", "g", 0, "EURUSD", 1, 1, 1.5, 1, 1, 2, 3, 4, *terms))
            self.assertEqual(got, {"error": "out_of_range: " + wire.check_terms(*terms)}, terms)

    def test_cancel_request(self):
        got = self.cpp_decode(wire.encode_cancel("g.0.1000.7", "g", 3, 'too "slow"', 1_700_000_000_000_000_009))
        self.assertEqual(got, {"type": "cancel_request", "signal_id": "g.0.1000.7", "strategy": "g", "instance": 3,
                               "reason": 'too "slow"', "created_ts_ns": 1_700_000_000_000_000_009})

    def test_a_cancels_ack_and_an_expired_order_from_the_cpp(self):
        tool("encode", self.tmp.name)
        with open(os.path.join(self.tmp.name, "ack_cancel.bin"), "rb") as f:
            self.assertEqual(wire.decode_ack(f.read()), ("g.0.1000.2", 3, "order_final", True))
        with open(os.path.join(self.tmp.name, "event_expired.bin"), "rb") as f:
            e = wire.decode_order_event(f.read())
        self.assertEqual((e["signal_id"], e["status"], e["filled_quantity"], e["side"]), ("g.0.1000.3", 8, 250.0, 2))

    def test_a_journal_of_limit_signals_replays_in_the_cpp(self):
        path = os.path.join(self.tmp.name, "g-0.journal")
        j = journal.SignalJournal(path)
        j.append_boot(1000)
        for n, terms in enumerate([(wire.LIMIT, 1.2, wire.GTC, 0), (wire.LIMIT, 1.2, wire.GTD, 5), ()], 1):
            j.append_signal(wire.encode_signal(f"g.0.1000.{n}", "g", 0, "EURUSD", 1, 1, 1.5, 1, 1, 2 * 10**18, n, 0,
                                               *terms))
        j.close()
        self.assertEqual(replay_line(tool("read", path))["pending"], ["g.0.1000.1", "g.0.1000.2", "g.0.1000.3"])
        j = journal.SignalJournal(path)
        self.assertEqual([(p["signal_id"], p["order_type"], p["time_in_force"], p["good_till_ns"]) for p in
                          j.replay.pending], [("g.0.1000.1", 1, 1, 0), ("g.0.1000.2", 1, 2, 5), ("g.0.1000.3", 0, 0, 0)])
        j.close()


class _BothWriters:
    """Each call made on the Python MetricsText and written as a line of
    `crosscheck metrics text` (text as hex, numbers as hex floats or
    integers), so that the C++ MetricsText makes the same calls."""

    def __init__(self, common):
        self.py = metrics.MetricsText(common)
        self.lines = ["common " + self._labels(common)]

    @staticmethod
    def _labels(labels):
        return " ".join(f"{k.encode().hex()} {v.encode().hex()}" for k, v in labels)

    def _call(self, method, kind, name, help_text, value, labels):
        getattr(self.py, method)(name, help_text, value, labels)
        number = float(value).hex() if kind == "d" else str(int(value))
        self.lines.append(f"{method} {kind} {name.encode().hex()} {help_text.encode().hex()} {number} "
                          + self._labels(labels))

    def counter(self, name, help_text, value, labels=(), kind=None):
        self._call("counter", kind or ("d" if isinstance(value, float) else "u"), name, help_text, value, labels)

    def gauge(self, name, help_text, value, labels=()):
        kind = ("b" if isinstance(value, bool) else "d" if isinstance(value, float)
                else "i" if value < 0 else "u")
        self._call("gauge", kind, name, help_text, value, labels)

    def counters(self, name, help_text, by, label):
        self.py.counters(name, help_text, by, label)
        pairs = " ".join(f"{k.encode().hex()} {n}" for k, n in by.items())
        self.lines.append(f"counters {name.encode().hex()} {help_text.encode().hex()} {label.encode().hex()} {pairs}")

    def histogram(self, name, help_text, h, labels=()):
        s = h.sample()
        self.py.histogram(name, help_text, s, labels)
        self.lines.append(f"histogram {name.encode().hex()} {help_text.encode().hex()} "
                          f"{','.join(float(b).hex() for b in s.upper_bounds)} "
                          f"{','.join(str(c) for c in s.cumulative_counts)} {float(s.sum).hex()} {s.count} "
                          + self._labels(labels))


@unittest.skipUnless(TOOL and os.access(TOOL, os.X_OK), "TP_CROSSCHECK (the crosscheck tool) not built")
class MetricsCrossCheck(unittest.TestCase):
    def test_values_as_std_to_chars(self):
        rng = random.Random(7)
        values = [0.0, -0.0, 1.0, 0.1, 1e21, 1e22, 1e23, 100000.0, 123456.0, 1e-4, 1e-5, 5e-05, 2.5e-3, 1e15, 1e16,
                  1e17, 9007199254740993.0, 1.2345678901234568e+20, 5e-324, 2.2250738585072014e-308,
                  1.7976931348623157e308, math.inf, -math.inf, math.nan, 1764178000.123456, 0.5065]
        for _ in range(3000):
            values.append(rng.choice([
                rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-30, 30), float(rng.randint(0, 2**64)),
                rng.randint(0, 10**9) / 10 ** rng.randint(0, 12), float(rng.randint(1, 9) * 10 ** rng.randint(0, 25)),
                struct_double(rng.getrandbits(64))]))
        cpp = tool("metrics", "values", stdin="\n".join(v.hex() if math.isfinite(v) else repr(v) for v in values))
        mismatches = [(v, want, metrics.format_value(v)) for v, want in zip(values, cpp.splitlines())
                      if metrics.format_value(v) != want]
        self.assertEqual(len(cpp.splitlines()), len(values))
        self.assertEqual(mismatches[:10], [])

    def test_the_same_text_for_the_same_calls(self):
        odd = 'odd "reason" \\ with\nnewline, prix €'
        w = _BothWriters([("program", "strategy"), ("process", "g-0"), ("group", odd)])
        w.counter("tp_strategy_ticks_received_total", "Ticks accepted.", 123456789)
        w.counter("process_cpu_seconds_total", "CPU seconds.", 0.39)
        w.gauge("tp_strategy_feed_alive", "1 while alive.", True)
        w.gauge("tp_strategy_feed_dead", "0 while alive.", False)
        w.gauge("tp_delta", "Signed.", -3)
        w.gauge("tp_big", "Unsigned max.", 2**64 - 1)
        w.gauge("tp_strategy_ticks_per_second", "Per second.", 1000.0 / 3)
        w.gauge("tp_strategy_position", "Net, by instrument.", -1500.0, [("instrument", "EURUSD")])
        w.gauge("tp_strategy_position", "Net, by instrument.", 2e-7, [("instrument", "USDJPY")])
        w.gauge("tp_stamp_seconds", "Help with a \\ backslash\nand a newline.", 1_764_000_000_250_000_000 / 1e9)
        w.counters("tp_strategy_dead_letters_total", "By reason.",
                   {"stale": 5, "duplicate_seq": 2, odd: 1, "Zulu": 3, "été": 4}, "reason")
        h = metrics.Histogram(metrics.LATENCY_BOUNDS_SECONDS)
        for v in (30e-6, 50e-6, 120e-6, 0.0031, 0.5, 1.0, 20.0):
            h.observe(v)
        w.histogram("tp_strategy_tick_latency_seconds", "Gateway to here.", h, [("instrument", "EURUSD")])
        cpp = tool("metrics", "text", stdin="\n".join(w.lines) + "\n")
        self.assertEqual(w.py.text(), cpp)
        self.assertIn('le="5e-05"', cpp)  # the bounds in to_chars' notation, which repr would write otherwise


def struct_double(bits):
    """The double of 64 random bits (NaN and infinities included)."""
    import struct
    return struct.unpack("<d", bits.to_bytes(8, "little"))[0]


if __name__ == "__main__":
    unittest.main()
