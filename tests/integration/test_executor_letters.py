"""The executor's dead letters about outcomes survive its kill -9 (README,
"Dead letters under a flood or a stalled sink"). Real programs (dead_letter,
dll_gateway, executor) on ipc:// endpoints; the test plays one strategy
instance whose signals are all refused risk_rejected (risk.max_order_quantity
below their quantity), so that every signal's outcome is a dead letter.

1. With the sink up, 20 refusals: their 20 lines are written.
2. The sink stopped (SIGTERM), 30 more refusals: their letters can only wait
   in the executor's queue, and a kill -9 of the executor takes them with it.
3. The sink and the executor started again: the executor sends its stored
   letters again (all 50), and the sink, which rebuilt its memory of keys
   from its file, writes the 30 it never had and drops the 20 it had.
Every refused signal then has exactly one line, keyed by its signal id.

A kill -9 of the sink (the second test), three times: refusals made while
it is stopped (SIGSTOP), their letters sent but never read, and refusals
made as it dies, a millisecond apart. What ZeroMQ handed to the sink is gone
with it, though the executor sent it (in libzmq 4.3.4 so is the first letter
sent as it dies); the executor sends its stored letters again when its
connection to the sink is made again, and every refusal has exactly one
line."""

import collections
import os
import signal
import time
import unittest

import zmq

import pipeline as pl
from test_executor_limits import Strategy

SKIP = pl.missing_binaries()
BEFORE, DURING = 20, 30
SINK_KILLS, STOPPED, AS_IT_DIES = 3, 10, 10


@unittest.skipIf(SKIP, f"binaries missing: {SKIP}")
class ExecutorLetters(unittest.TestCase):
    def setUp(self):
        self.dep = pl.Deployment(extra_toml='[risk]\nmax_order_quantity = 10\n\n[dll_gateway.settings]\n'
                                            'journal_path = "${run.dir}/sim_broker.journal"\n')
        self.addCleanup(self.dep.close)
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, 0)

    def refused(self):
        return (self.dep.stats("executor") or {}).get("rejected", {}).get("risk_rejected", 0)

    def letters_made(self):
        """Letters the executor made (sent or dropped), those sent again aside."""
        s = self.dep.stats("executor") or {}
        return s.get("dead_letters", 0) - s.get("dead_letters_replayed", 0)

    def executor_stats_from_now(self, what):
        """The executor's stats from a file written after this call: it is
        rewritten every 200 ms, so a file read at once may predate what the
        test has just seen happen elsewhere (and the executor counted)."""
        seen_ns = time.time_ns()
        return pl.wait_for(lambda: self.dep.stats("executor", after_ns=seen_ns), what=what)

    def lines_by_key(self):
        return collections.Counter(line.get("key") for line in self.dep.dead_letters()
                                   if line.get("source") == "executor")

    def test_a_kill_9_loses_no_outcome_letter_and_the_replay_doubles_none(self):
        self.dep.start("dead_letter")
        self.dep.start("dll_gateway")
        executor = self.dep.start("executor")
        pl.wait_for(lambda: self.dep.stat("executor", "position_check", "pending") != "pending",
                    what="the executor's start-up position check")
        strategy = Strategy(self.ctx, self.dep)
        self.addCleanup(strategy.close)

        before = [strategy.emit() for _ in range(BEFORE)]
        strategy.until_all_acked()
        # Each refused (the executor's count): an ack published before the SUB
        # had joined comes again as DUPLICATE, for the resend.
        self.assertLessEqual(set(strategy.acks.values()), {"REJECTED", "DUPLICATE"}, strategy.acks)
        pl.wait_for(lambda: self.refused() == BEFORE, what="the first refusals in the executor's stats")
        pl.wait_for(lambda: all(self.lines_by_key()[sid] == 1 for sid in before),
                    what="the first refusals' lines in the sink's file")

        self.assertEqual(self.dep.stop("dead_letter"), 0)
        during = [strategy.emit() for _ in range(DURING)]
        strategy.until_all_acked()
        pl.wait_for(lambda: self.refused() == BEFORE + DURING, what="every refusal in the executor's stats")
        executor.send_signal(signal.SIGKILL)
        executor.wait(timeout=10)
        self.assertEqual({sid: n for sid, n in self.lines_by_key().items() if sid in during}, {},
                         "a letter of the refusals made with the sink away was written before the restart")

        self.dep.start("dead_letter")
        self.dep.start("executor")
        pl.wait_for(lambda: self.dep.stat("dead_letter", "duplicates_dropped") == BEFORE
                    and all(self.lines_by_key()[sid] == 1 for sid in during),
                    what="the stored letters sent again: the lost ones written, the others dropped")
        # The restarted executor counts its replay as it sends it, but writes
        # the count only after its start-up reconcile: the sink's stats can
        # show the drops first, and the file read at once may still be the
        # killed executor's.
        stats = self.executor_stats_from_now("the executor's stats written after the replay was seen")
        self.assertEqual(stats.get("dead_letters_replayed", 0), BEFORE + DURING)
        lines = self.lines_by_key()
        self.assertEqual({sid: lines[sid] for sid in before + during}, {sid: 1 for sid in before + during})
        for line in self.dep.dead_letters():
            if line.get("key") in during:
                self.assertEqual(line["reason"], "risk_rejected")
                self.assertIn(f"signal {line['key']}: ", line["detail"])

    def test_a_kill_9_of_the_sink_loses_no_outcome_letter(self):
        sink = self.dep.start("dead_letter")
        self.dep.start("dll_gateway")
        self.dep.start("executor")
        pl.wait_for(lambda: self.dep.stat("executor", "position_check", "pending") != "pending",
                    what="the executor's start-up position check")
        strategy = Strategy(self.ctx, self.dep)
        self.addCleanup(strategy.close)

        refused = []
        for _ in range(SINK_KILLS):
            # Refusals the stopped sink cannot read: the executor has sent
            # their letters (ZeroMQ took them) when the sink is killed.
            sink.send_signal(signal.SIGSTOP)
            refused += [strategy.emit() for _ in range(STOPPED)]
            strategy.until_all_acked()
            pl.wait_for(lambda: self.letters_made() == len(refused),
                        what="the executor's letters of the refusals sent")
            sink.send_signal(signal.SIGKILL)
            # And refusals as it dies, a millisecond apart.
            for _ in range(AS_IT_DIES):
                refused.append(strategy.emit())
                time.sleep(0.001)
            sink.wait(timeout=10)
            strategy.until_all_acked()
            sink = self.dep.start("dead_letter")
            pl.wait_for(lambda: self.dep.stat("dead_letter", "pid") == sink.pid, what="the sink started again")
        pl.wait_for(lambda: self.refused() == len(refused), what="every refusal in the executor's stats")

        def missing():
            lines = self.lines_by_key()
            return [sid for sid in refused if lines[sid] == 0]
        pl.wait_for(lambda: not missing(), timeout=10, what="a line for every refusal (the letters lost with "
                    "the sink sent again)", detail=lambda: f"no line: {missing()}")
        lines = self.lines_by_key()
        self.assertEqual({sid: lines[sid] for sid in refused}, {sid: 1 for sid in refused})
        # The stats file is rewritten every 200 ms: the counters are read from
        # one written after the last line was seen, which counts the replay
        # that brought it.
        stats = self.executor_stats_from_now("the executor's stats written after the last line")
        self.assertEqual(stats.get("dead_letters_dropped"), 0)
        self.assertGreater(stats["dead_letters_replayed"], 0)


if __name__ == "__main__":
    unittest.main()
