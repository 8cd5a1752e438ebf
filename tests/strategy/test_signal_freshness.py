"""The real gateway and strategy programs on ipc:// endpoints, the test
playing the executor (it binds the signals PULL and reads every signal):

- a strategy instance paused (SIGSTOP) for 3 s while ticks flow, then let go
  (SIGCONT), drains the backlog that queued meanwhile: its indicators move
  on, but no signal comes from a tick older than
  strategy.max_signal_tick_age_ms when emitted, and its stats count the
  stale emits (signals_stale);
- a gateway whose clock is 6 s behind (gateway --test-clock-offset-ms, as
  faketime is not installed everywhere): every tick is refused as stale, its
  heartbeats no longer keep the feed alive, feed_alive goes false and no
  signal is emitted."""

import os
import signal
import sys
import time
import unittest

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import pipeline  # noqa: E402
import tp_proto  # noqa: E402  (pipeline put scripts/ on the path)

BOUND_MS = 250  # strategy.max_signal_tick_age_ms, the default
MS = 1_000_000

EXTRA = """
[gateway]
rate = 1000
heartbeat_ms = 200

[strategy]
name = "every_nth"
instances = 1
feed_timeout_ms = 1000
resend_ms = 60000

[strategy.every_nth]
n = 20
"""


class SignalFreshness(unittest.TestCase):
    def setUp(self):
        for program in ("gateway", "strategy"):
            self.assertTrue(os.access(os.path.join(pipeline.BIN_DIR, program), os.X_OK),
                            f"{program} not built in TP_BIN_DIR={pipeline.BIN_DIR!r}")
        self.d = pipeline.Deployment(EXTRA)
        self.ctx = zmq.Context()
        self.addCleanup(self.cleanup)
        self.signals_pull = self.ctx.socket(zmq.PULL)
        self.signals_pull.bind(self.d.endpoints["signals"])
        self.signals = {}  # signal id -> its TradingSignal, as emitted (resends carry the same bytes)

    def cleanup(self):
        # A stopped process would not die of SIGTERM; Deployment.close kills.
        for proc in self.d.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
        self.ctx.destroy(linger=0)
        self.d.close()

    def read_signals(self, seconds=0.05):
        """Signals arriving within `seconds`; returns how many new ones."""
        new = 0
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.signals_pull.poll(int(left * 1000) + 1):
                continue
            name, m = tp_proto.decode(self.signals_pull.recv())
            self.assertEqual(name, "signal")
            if m["signal_id"] not in self.signals:
                self.signals[m["signal_id"]] = m
                new += 1
        return new

    def stat(self, key):
        return self.d.stat("strategy-0", key)

    def assert_every_signal_fresh(self):
        for sid, m in self.signals.items():
            age = m["created_ts_ns"] - m["causation_ts_ns"]
            self.assertLessEqual(age, BOUND_MS * MS, f"{sid}: made from a tick {age / MS:.0f} ms old")

    def test_a_paused_instance_does_not_trade_the_backlog(self):
        d = self.d
        strategy = d.start("strategy-0", "--shard", "0", "--shards", "1", program="strategy")
        d.start("gateway")
        pipeline.wait_for(lambda: self.read_signals() and len(self.signals) >= 10, timeout=20,
                          what="signals before the pause")
        stale_before = self.stat("signals_stale")

        os.kill(strategy.pid, signal.SIGSTOP)
        paused_ns = time.time_ns()
        published = d.stat("gateway", "ticks_published")
        # 3 s of ticks queue for the paused instance (the gateway's stats say
        # how many it sent meanwhile).
        pipeline.wait_for(lambda: time.time_ns() - paused_ns >= 3000 * MS and
                          d.stat("gateway", "ticks_published") >= published + 2000, timeout=20,
                          what="3 s of ticks published during the pause")
        self.read_signals(0.2)
        before = set(self.signals)
        os.kill(strategy.pid, signal.SIGCONT)

        # The backlog is drained (its emits refused as stale), then signals
        # come from fresh ticks again.
        pipeline.wait_for(lambda: self.read_signals() >= 0 and len(self.signals) > len(before) + 5 and
                          self.stat("signals_stale") > stale_before, timeout=20,
                          what="fresh signals after the backlog, and the stale emits counted")
        self.read_signals(0.5)
        self.assert_every_signal_fresh()
        after = [m for sid, m in self.signals.items() if sid not in before]
        self.assertTrue(after)
        # Every emit from the backlog (~2,800 ticks, every 20th an emit) was refused.
        stale = self.stat("signals_stale") - stale_before
        self.assertGreaterEqual(stale, 50, d.stats("strategy-0"))
        stats = d.stats("strategy-0")
        self.assertTrue(stats["feed_alive"])
        self.assertEqual(stats["heartbeats_refused"], 0)
        self.assertGreater(stats["ticks_received"], 2000)  # the backlog moved the indicators

    def test_a_gateway_clock_6_s_behind_is_a_dead_feed(self):
        d = self.d
        d.start("strategy-0", "--shard", "0", "--shards", "1", program="strategy")
        d.start("gateway")
        pipeline.wait_for(lambda: self.read_signals() and len(self.signals) >= 5 and self.stat("feed_alive"),
                          timeout=20, what="signals from the right clock")
        self.assertEqual(d.stop("gateway"), 0)
        d.start("gateway", "--test-clock-offset-ms", "-6000")
        # Heartbeats and ticks arrive again, all stamped 6 s ago: from one
        # stats file on (the old gateway's last heartbeats counted in it),
        # every heartbeat is refused.
        base = pipeline.wait_for(lambda: (s := d.stats("strategy-0")) and s["heartbeats_refused"] >= 2 and s,
                                 timeout=20, what="the 6 s behind gateway's heartbeats")
        heartbeats, refused = base["heartbeats"], base["heartbeats_refused"]
        pipeline.wait_for(lambda: d.stat("gateway", "ticks_published") >= 2000, timeout=20,
                          what="the 6 s behind gateway's ticks")
        self.read_signals(0.2)
        emitted = self.stat("signals_emitted")
        count = len(self.signals)
        # Dead within feed_timeout_ms of its last believed message, and dead
        # for as long as the clock is wrong.
        pipeline.wait_for(lambda: self.stat("feed_alive") is False and self.stat("heartbeats") >= heartbeats + 10,
                          timeout=20, what="feed_alive false while heartbeats arrive")
        published = d.stat("gateway", "ticks_published")
        pipeline.wait_for(lambda: d.stat("gateway", "ticks_published") >= published + 1000, timeout=20,
                          what="another second of ticks")
        self.read_signals(0.5)
        stats = d.stats("strategy-0")
        self.assertFalse(stats["feed_alive"], stats)
        self.assertEqual(stats["signals_emitted"], emitted, stats)
        self.assertEqual(len(self.signals), count)
        self.assertEqual(stats["heartbeats_refused"] - refused, stats["heartbeats"] - heartbeats, stats)
        self.assertGreaterEqual(stats["dead_letters_by_reason"].get("stale", 0), 2000, stats)
        self.assert_every_signal_fresh()
        # Put right, the feed is alive again and trades.
        self.assertEqual(d.stop("gateway"), 0)
        d.start("gateway")
        pipeline.wait_for(lambda: self.read_signals() >= 0 and len(self.signals) > count and
                          self.stat("feed_alive"), timeout=20, what="signals once the clock is right")
        self.assert_every_signal_fresh()


if __name__ == "__main__":
    unittest.main()
