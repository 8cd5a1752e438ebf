"""The Python runtime against the C++ code itself (crosscheck.cpp, run as a
small tool): a journal written by the C++ SignalJournal is replayed by the
Python one, a journal written (and compacted, torn, garbled) by the Python
one is replayed by the C++ one with the same result, and the indicators give
the C++ values bit for bit on the same series."""

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

from tp_strategy import indicators, journal, wire  # noqa: E402

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


if __name__ == "__main__":
    unittest.main()
