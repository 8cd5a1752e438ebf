"""A scale across two hosts strands no signal (real binaries from
$TP_BIN_DIR; two supervisors on one machine).

Host a (127.0.0.1) runs the programs and instances 0 and 2 of group g, host
b (127.0.0.2) instances 1 and 3, each supervisor with its own run dir (its
own disk), tcp on loopback. With the executor stopped, signals pile up
unacked in all four journals; then `tpctl --config FILE scale g 3`. The new
instance 0 (the adopter of journal 3 under 3 shards) runs on a, but journal
3 is on b's disk: b renames it g-4.journal, which b's instance 1 (4 % 3)
adopts. Once the executor is back every signal journaled by any of the four
instances is decided by it exactly once, and the adopted journal settles."""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from svtest import PROGRAMS, TPCTL, SupervisorRun, supervisor as sv, wait_for
from ports import free_port_base  # noqa: E402  (tests/support, on sys.path through svtest)
from test_scale_down import journal_ids

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 30.0
# One instrument per shard of 4 (FNV-1a: GBPUSD -> 0, EURUSD -> 1, USDCHF ->
# 2, AUDUSD -> 3), so that every instance journals signals.
INSTRUMENTS = [("GBPUSD", 1.265, 0.0002, 0.00006), ("EURUSD", 1.085, 0.0001, 0.00005),
               ("USDCHF", 0.88, 0.0001, 0.00005), ("AUDUSD", 0.655, 0.0001, 0.00004)]


def config_text(base: int, secret: str) -> str:
    # ticks, signals, order_events, orders (+2 reports, +3 control), dead letters; control_port.
    ep = {"ticks": base, "signals": base + 1, "order_events": base + 2, "orders": base + 3,
          "dead_letters": base + 7}
    lines = ["[run]", "stats_interval_ms = 100",
             "[endpoints]", *(f'{k} = "tcp://127.0.0.1:{port}"' for k, port in ep.items())]
    for sym, price, spread, vol in INSTRUMENTS:
        lines += ["[[instruments]]", f'symbol = "{sym}"', f"price = {price}", f"spread = {spread}",
                  f"volatility = {vol}"]
    lines += ["[gateway]", "rate = 800",
              "[strategy]", "resend_ms = 200", "signal_ttl_ms = 2000", "give_up_after_ms = 60000",
              "[[strategy.groups]]", 'name = "g"', 'kind = "every_nth"', "instances = 4", 'hosts = ["a", "b"]',
              "[strategy.every_nth]", "n = 20",
              "[executor]", "order_timeout_ms = 300",
              "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 1000", "stop_grace_ms = 5000",
              f"control_port = {base + 8}", f'control_secret = "{secret}"',
              "[[hosts]]", 'name = "a"', 'address = "127.0.0.1"',
              'programs = ["dead_letter", "dll_gateway", "executor", "gateway"]',
              "[[hosts]]", 'name = "b"', 'address = "127.0.0.2"', ""]
    return "\n".join(lines)


@unittest.skipIf(MISSING, SKIP_WHY)
class ScaleAcrossHostsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="svh", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        secret = os.path.join(self.tmp, "control.secret")
        with open(secret, "w") as f:
            f.write(os.urandom(24).hex())
        os.chmod(secret, 0o600)
        self.config = os.path.join(self.tmp, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(config_text(free_port_base(9, addresses=("127.0.0.1", "127.0.0.2")), secret))
        self.sups = {}
        for host in ("a", "b"):
            d = os.path.join(self.tmp, host)
            os.makedirs(d)
            self.sups[host] = SupervisorRun(d, BIN_DIR, ["--config", self.config, "--host", host])
            self.addCleanup(self.sups[host].close)
        self.sups["a"].wait_all_running(timeout=WAIT_S, count=6)
        self.sups["b"].wait_all_running(timeout=WAIT_S, count=2)
        self.where = {"g-0": "a", "g-1": "b", "g-2": "a", "g-3": "b"}

    def tpctl(self, *args):
        r = subprocess.run([sys.executable, TPCTL, "--config", self.config, *args], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.detail())
        return r.stdout

    def stats(self, name, pid=None, host=None):
        data = sv.read_stats(self.sups[host or self.where.get(name, "a")].run_dir, name)
        return data if data and (pid is None or data.get("pid") == pid) else None

    def journal(self, host, k):
        return os.path.join(self.sups[host].run_dir, f"g-{k}.journal")

    def detail(self):
        return "\n".join(f"[{h}] {s.status_text()}" for h, s in self.sups.items())

    def decisions(self):
        con = sqlite3.connect(f"file:{os.path.join(self.sups['a'].run_dir, 'executor.db')}?mode=ro", uri=True,
                              timeout=5)
        try:
            return (dict(con.execute("SELECT signal_id, status FROM signals")),
                    dict(con.execute("SELECT signal_id, COUNT(*) FROM orders GROUP BY signal_id")))
        finally:
            con.close()

    def test_a_journal_whose_adopter_moved_host_is_adopted_on_its_own_disk(self):
        self.tpctl("stop", "executor")
        self.sups["a"].wait_state("executor", "STOPPED", timeout=WAIT_S)
        wait_for(lambda: all((self.stats(n) or {}).get("signals_pending", 0) >= 5 for n in self.where), WAIT_S,
                 what="signals pending in every instance", detail=self.detail)
        self.tpctl("stop", "gateway")
        self.sups["a"].wait_state("gateway", "STOPPED", timeout=WAIT_S)

        out = self.tpctl("scale", "g", "3")
        self.assertIn("b: journal g-3.journal renamed g-4.journal (adopted on this host)", out)
        for name in ("g-0", "g-2"):
            a = self.sups["a"].wait_state(name, "RUNNING", timeout=WAIT_S, pred=lambda p: p["shards"] == 3)
        self.assertEqual(sorted(n for n in a if n.startswith("g-")), ["g-0", "g-2"])
        b = self.sups["b"].wait_all_running(timeout=WAIT_S, count=1)
        pid = b["g-1"]["pid"]
        adopter = wait_for(lambda: (lambda s: s if s and s.get("journals_adopted") == 1 else None)(
                               self.stats("g-1", pid, "b")), WAIT_S, what="g-1 adopting g-4.journal",
                           detail=self.detail)
        self.assertEqual((adopter["shard"], adopter["shards"], adopter["adopted_shards"]), (1, 3, "4"))
        journaled = {k: journal_ids(self.journal(self.where[f"g-{k}"], k if k < 3 else 4)) for k in range(4)}
        ids = set().union(*(signals for signals, _ in journaled.values()))
        stranded = journaled[3][0] - journaled[3][1]   # unacked in the journal that moved
        self.assertTrue(stranded, "the departed shard 3 left no pending signal")

        self.tpctl("start", "executor")
        self.sups["a"].wait_state("executor", "RUNNING", timeout=WAIT_S)
        now = {"g-0": "a", "g-1": "b", "g-2": "a"}

        def settled():
            for name, host in now.items():
                s = self.stats(name, host=host)
                if not s or s["signals_pending"] or s.get("adopted_pending", 0):
                    return False
            return True
        wait_for(settled, WAIT_S, what="every instance with nothing pending", detail=self.detail)
        self.tpctl("stop", "executor")   # lets go of executor.db
        self.sups["a"].wait_state("executor", "STOPPED", timeout=WAIT_S)
        decided, orders = self.decisions()
        self.assertEqual(sorted(ids - set(decided)), [], self.detail())
        self.assertLessEqual(stranded, set(decided))
        self.assertLessEqual(max(orders.values(), default=0), 1)
        with open(self.journal("b", 4)) as f:   # settled: compacted to its boot record
            self.assertRegex(f.read(), r"^B \d+\n$")


if __name__ == "__main__":
    unittest.main()
