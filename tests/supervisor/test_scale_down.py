"""Scaling the strategy tier down strands no signal (integration, real binaries
from $TP_BIN_DIR under the real supervisor).

Three strategy instances trade while the executor is stopped, so their
signals pile up unacked in strategy-<k>.journal; then the tier is scaled to
one instance. Instance 0 adopts the journals of the departed shards 1 and 2
and resends their signals (acks come back on ACK.<strategy>.1 and .2), or
gives up on them like on its own. At the end every signal id journaled by any
of the three instances is accounted for exactly once: decided by the
executor (a row in executor.db) or given up by a strategy (one dead letter
`unacked`). Short TTLs and give-up delays keep each case within ~20 s; every
wait polls a file, a stats counter or the supervisor's status, bounded.

With two strategy groups, scaling one down is the same conversation within
that group: alpha-0 adopts alpha-1 and alpha-2's journals, while group beta
keeps its processes and its journals (tested too)."""

import base64
import glob
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest

from svtest import PROGRAMS, SupervisorRun, supervisor as sv, wait_for
import tp_proto  # scripts/, put on sys.path by svtest

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 30.0
# One instrument per shard of 3 (FNV-1a: CADJPY -> 0, GBPUSD -> 1, EURUSD -> 2),
# so that every instance journals signals.
INSTRUMENTS = [("CADJPY", 110.0, 0.01, 0.005), ("GBPUSD", 1.265, 0.0002, 0.00006),
               ("EURUSD", 1.085, 0.0001, 0.00005)]


# Two groups over the same instruments: alpha (3 instances, scaled down) and
# beta (2, left alone).
TWO_GROUPS = ["[[strategy.groups]]", 'name = "alpha"', 'kind = "every_nth"', "instances = 3",
              "[[strategy.groups]]", 'name = "beta"', 'kind = "every_nth"', "instances = 2"]


def config_text(d, ttl_ms, give_up_ms, groups=()):
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    lines = ["[run]", "stats_interval_ms = 100",
             "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items())]
    for sym, price, spread, vol in INSTRUMENTS:
        lines += ["[[instruments]]", f'symbol = "{sym}"', f"price = {price}", f"spread = {spread}",
                  f"volatility = {vol}"]
    lines += ["[gateway]", "rate = 600",
              "[strategy]", *([] if groups else ['name = "every_nth"', "instances = 3"]), "resend_ms = 200",
              f"signal_ttl_ms = {ttl_ms}", f"give_up_after_ms = {give_up_ms}",
              *groups,
              "[strategy.every_nth]", "n = 20",
              "[executor]", "order_timeout_ms = 300",
              "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 1000", "stop_grace_ms = 5000", ""]
    return "\n".join(lines)


def signal_id_of(payload):
    try:
        name, fields = tp_proto.decode(payload)
    except (tp_proto.ProtocolError, ValueError):
        return None
    return fields["signal_id"] if name == "signal" else None


def journal_ids(path):
    """(every signal id with an S record, ids with an A or X record) of one journal."""
    journaled, closed = set(), set()
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return journaled, closed
    with f:
        for raw in f:
            if not raw.endswith(b"\n") or len(raw) < 3:
                continue
            kind, arg = raw[:1], raw[2:-1].decode(errors="replace")
            if kind == b"S":
                sid = signal_id_of(bytes.fromhex(arg))
                if sid:
                    journaled.add(sid)
            elif kind in (b"A", b"X"):
                closed.add(arg)
    return journaled, closed


@unittest.skipIf(MISSING, SKIP_WHY)
class ScaleDownTest(unittest.TestCase):
    group = "strategy"   # the group scaled down (the one-group shorthand's)

    def start(self, ttl_ms, give_up_ms, groups=(), count=7):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="svd", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        config = os.path.join(self.tmp, "pipeline.toml")
        with open(config, "w") as f:
            f.write(config_text(self.tmp, ttl_ms, give_up_ms, groups))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", config])
        self.addCleanup(self.run_.close)
        self.run_dir = self.run_.run_dir
        self.run_.wait_all_running(timeout=WAIT_S, count=count)

    # -- helpers --------------------------------------------------------------

    def ctl(self, cmd, name, **kw):
        reply = self.run_.ctl({"cmd": cmd, "name": name, **kw})
        self.assertTrue(reply["ok"], reply)

    def stats(self, name, pid=None):
        data = sv.read_stats(self.run_dir, name)
        if data is None or (pid is not None and data.get("pid") != pid):
            return None
        return data

    def journal(self, k, group=None):
        return os.path.join(self.run_dir, f"{group or self.group}-{k}.journal")

    def executor_decisions(self):
        """signal id -> status of every signal the executor decided (executor.db;
        the executor holds it exclusively, so this reads it while it is stopped)."""
        path = os.path.join(self.run_dir, "executor.db")
        if not os.path.exists(path):
            return {}
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(con.execute("SELECT signal_id, status FROM signals"))
        except sqlite3.Error:
            return {}
        finally:
            con.close()

    def orders_per_signal(self):
        con = sqlite3.connect(f"file:{os.path.join(self.run_dir, 'executor.db')}?mode=ro", uri=True, timeout=5)
        try:
            return dict(con.execute("SELECT signal_id, COUNT(*) FROM orders GROUP BY signal_id"))
        finally:
            con.close()

    def dead_letters(self, reason):
        """signal id -> [source, ...] of the dead letters with `reason`."""
        out = {}
        for path in sorted(glob.glob(os.path.join(self.run_dir, "dead_letters.jsonl*"))):
            with open(path, errors="replace") as f:
                for line in f:
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if d.get("reason") != reason:
                        continue
                    sid = signal_id_of(base64.b64decode(d.get("original_b64", "")))
                    out.setdefault(sid, []).append(d.get("source"))
        return out

    def detail(self):
        parts = []
        for name in (*(f"{self.group}-{k}" for k in range(3)), "executor"):
            parts.append(f"{name} stats: {sv.read_stats(self.run_dir, name)}")
            try:
                with open(os.path.join(self.run_dir, "logs", name + ".log"), errors="replace") as f:
                    parts.append(f"-- {name}.log:\n" + "".join(f.readlines()[-10:]))
            except OSError:
                pass
        return "\n".join(parts) + "\n" + self.run_.status_text()

    def pile_up_then_scale_to_one(self, others=()):
        """Executor stopped, signals pending in all three journals of the
        group (and in those of the processes `others`), gateway stopped (no
        new signals), then `scale <group> 1`. Returns the signal ids
        journaled by each instance of the group (S records), read after the scale."""
        g = self.group
        self.ctl("stop", "executor")
        self.run_.wait_state("executor", "STOPPED", timeout=WAIT_S)

        def piled_up():
            for name in (*(f"{g}-{k}" for k in range(3)), *others):
                st = self.stats(name)
                if not st or st.get("signals_pending", 0) < 5:
                    return False
            return True
        wait_for(piled_up, WAIT_S, what="signals pending in every instance", detail=self.detail)
        self.ctl("stop", "gateway")
        self.run_.wait_state("gateway", "STOPPED", timeout=WAIT_S)

        self.ctl("scale", g, n=1)
        st = self.run_.wait_state(f"{g}-0", "RUNNING", timeout=WAIT_S)
        self.assertEqual(sorted(n for n in st if n.startswith(f"{g}-")), [f"{g}-0"])
        pid = st[f"{g}-0"]["pid"]
        # Instance 0 of 1 holds the two departed journals.
        adopted = wait_for(lambda: (lambda s: s if s and s.get("journals_adopted") == 2 else None)(
                               self.stats(f"{g}-0", pid)),
                           WAIT_S, what=f"{g}-0 adopting journals 1 and 2", detail=self.detail)
        self.assertEqual((adopted["shard"], adopted["shards"], adopted["adopted_shards"]), (0, 1, "1,2"))

        journaled = {k: journal_ids(self.journal(k)) for k in range(3)}
        for k in (1, 2):
            ids, closed = journaled[k]
            # The fault this guards against: the departed shards left pending signals.
            self.assertTrue(ids - closed, f"{g}-{k}.journal has no pending signal\n{self.detail()}")
        return pid, {k: ids for k, (ids, _) in journaled.items()}

    def accounted(self, ids):
        """ids not yet decided by the executor nor given up by a strategy."""
        decided = self.executor_decisions()
        unacked = self.dead_letters("unacked")
        return {i for i in ids if i not in decided and i not in unacked}

    def assert_exactly_once(self, ids):
        decided = self.executor_decisions()
        unacked = self.dead_letters("unacked")
        for sid in sorted(ids):
            outcomes = (1 if sid in decided else 0) + len(unacked.get(sid, []))
            self.assertEqual(outcomes, 1, f"{sid}: executor {decided.get(sid)}, unacked by {unacked.get(sid)}")
        if decided:
            self.assertLessEqual(max(self.orders_per_signal().values(), default=0), 1)
        self.assertEqual(self.dead_letters("journal_corrupt"), {})

    # -- tests ----------------------------------------------------------------

    def test_departed_shards_signals_are_resent_by_the_successor(self):
        # Long give-up delay: every signal must reach the executor (expired
        # ones are decided too: refused, with a row and an ack).
        self.start(ttl_ms=2000, give_up_ms=60000)
        pid, journaled = self.pile_up_then_scale_to_one()
        all_ids = set().union(*journaled.values())

        self.ctl("start", "executor")
        self.run_.wait_state("executor", "RUNNING", timeout=WAIT_S)
        # Every ack reached the adopter (own and adopted signals alike).
        wait_for(lambda: (lambda s: s and s["signals_pending"] == 0 and s["adopted_pending"] == 0)(
                     self.stats("strategy-0", pid)),
                 WAIT_S, what="strategy-0 with nothing pending", detail=self.detail)
        self.ctl("stop", "executor")  # lets go of executor.db
        self.run_.wait_state("executor", "STOPPED", timeout=WAIT_S)
        self.assertEqual(self.accounted(all_ids), set(), self.detail())
        self.assert_exactly_once(all_ids)
        self.assertEqual(self.dead_letters("unacked"), {})
        # Settled adopted journals shrink to their boot record.
        for k in (1, 2):
            with open(self.journal(k)) as f:
                self.assertRegex(f.read(), r"^B \d+\n$", f"strategy-{k}.journal")

        # Scale up again: shards 1 and 2 own their journals again (the
        # adopter let go of the locks when it stopped).
        self.ctl("scale", "strategy", n=3)
        st = self.run_.wait_state("strategy-2", "RUNNING", timeout=WAIT_S)
        for k in range(3):
            self.run_.wait_state(f"strategy-{k}", "RUNNING", timeout=WAIT_S)
            kpid = self.run_.status()[f"strategy-{k}"]["pid"]
            data = wait_for(lambda: self.stats(f"strategy-{k}", kpid), WAIT_S, what=f"strategy-{k} stats",
                            detail=self.detail)
            self.assertEqual((data["shard"], data["shards"], data["journals_adopted"]), (k, 3, 0))
        self.assertIn("strategy-2", st)

    def test_departed_shards_signals_are_given_up_by_the_successor(self):
        # The executor never comes back: instance 0 gives up on the adopted
        # signals after the same delay as on its own, dead-lettering them.
        # The TTL leaves the departed instances' last signals pending (not
        # yet given up by themselves) for 4 s after the gateway stops, which
        # the scale-down takes well within.
        self.start(ttl_ms=3000, give_up_ms=1000)
        pid, journaled = self.pile_up_then_scale_to_one()
        all_ids = set().union(*journaled.values())
        wait_for(lambda: not self.accounted(all_ids), WAIT_S,
                 what="every journaled signal decided or given up",
                 detail=lambda: f"missing {sorted(self.accounted(all_ids))[:5]}...\n{self.detail()}")
        self.assert_exactly_once(all_ids)
        unacked = self.dead_letters("unacked")
        decided = self.executor_decisions()
        # What was still pending in the departed journals when the scale-down
        # happened was given up by the successor, as strategy:0.
        by_successor = [sid for k in (1, 2) for sid in journaled[k]
                        if sid not in decided and unacked.get(sid) == ["strategy:0"]]
        self.assertTrue(by_successor, self.detail())
        # Its count of signals given up is the number of "unacked" dead
        # letters it sent (its own and the adopted ones).
        def given_up_and_counted():
            s = self.stats("strategy-0", pid)
            sent = sum(1 for sources in self.dead_letters("unacked").values() if "strategy:0" in sources)
            return s and s["adopted_pending"] == 0 and s["signals_given_up"] == sent >= len(by_successor)
        wait_for(given_up_and_counted, WAIT_S, what="strategy-0's signals_given_up to match its dead letters",
                 detail=self.detail)


    def test_scaling_one_group_down_adopts_within_that_group(self):
        # alpha is scaled 3 -> 1 while beta (2 instances, the same
        # instruments) runs on: alpha-0 adopts alpha-1 and alpha-2, beta's
        # processes and journals are left alone, and every signal of both
        # groups reaches the executor exactly once.
        self.group = "alpha"
        self.start(ttl_ms=2000, give_up_ms=60000, groups=TWO_GROUPS, count=9)
        beta = {n: p["pid"] for n, p in self.run_.status().items() if n.startswith("beta-")}
        self.assertEqual(sorted(beta), ["beta-0", "beta-1"])
        pid, journaled = self.pile_up_then_scale_to_one(others=sorted(beta))
        st = self.run_.status()
        self.assertEqual({n: st[n]["pid"] for n in beta}, beta)
        for name, bpid in beta.items():
            s = wait_for(lambda: self.stats(name, bpid), WAIT_S, what=f"{name} stats", detail=self.detail)
            self.assertEqual((s["journals_adopted"], s["shards"]), (0, 2), name)
        beta_ids = set().union(*(journal_ids(self.journal(k, "beta"))[0] for k in range(2)))
        all_ids = set().union(*journaled.values())
        self.assertTrue(beta_ids)
        self.assertFalse(beta_ids & all_ids)

        self.ctl("start", "executor")
        self.run_.wait_state("executor", "RUNNING", timeout=WAIT_S)

        def settled():
            names = [("alpha-0", pid), *beta.items()]
            return all((lambda s: s and s["signals_pending"] == 0 and s.get("adopted_pending", 0) == 0)(
                           self.stats(n, p)) for n, p in names)
        wait_for(settled, WAIT_S, what="alpha-0, beta-0 and beta-1 with nothing pending", detail=self.detail)
        self.ctl("stop", "executor")  # lets go of executor.db
        self.run_.wait_state("executor", "STOPPED", timeout=WAIT_S)
        self.assertEqual(self.accounted(all_ids | beta_ids), set(), self.detail())
        self.assert_exactly_once(all_ids | beta_ids)
        for k in (1, 2):
            with open(self.journal(k)) as f:
                self.assertRegex(f.read(), r"^B \d+\n$", f"alpha-{k}.journal")


if __name__ == "__main__":
    unittest.main()
