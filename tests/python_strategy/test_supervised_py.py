"""A Python strategy group under the real supervisor: `py` runs as py-0 and
py-1 (python3 -m tp_strategy, started by the supervisor with the group's
python_path), the executor is stopped so that both hold unacked signals,
`tpctl scale py 1` retires py-1 with its signals pending, py-0 adopts
py-1.journal and, once the executor is back, delivers them with their
original ids; `tpctl restart py:0` restarts it. Then the books are
reconciled from the files (chaoslib): 0 lost, 0 doubled, py-1's signals
settled through py-0."""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "chaos"))

import chaoslib as cl  # noqa: E402

MISSING = [p for p in ("gateway", "executor", "dll_gateway", "dead_letter")
           if not os.access(os.path.join(cl.BIN_DIR, p), os.X_OK)]
GROUPS = f"""
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "{HERE}"
instances = 2
[strategy.groups.params]
n = 20
"""
WAIT_S = 30


@unittest.skipIf(MISSING, f"SKIPPED: real binaries missing in TP_BIN_DIR={cl.BIN_DIR!r}: {MISSING}")
class SupervisedPythonGroup(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="tpsvpy", dir="/tmp")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.tmp, ignore_errors=True))
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir)
        self.config = os.path.join(self.tmp, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(cl.config_text(self.tmp, self.run_dir, rate=1000, every_nth=20, instances=2,
                                   signal_ttl_ms=20000, extra=GROUPS))
        self.follower = cl.JournalFollower(self.run_dir)
        self.sv = cl.SupervisorRun(self.tmp, cl.BIN_DIR, ["--config", self.config], run_dir=self.run_dir)
        self.addCleanup(self.sv.close)

    def stats(self, name, pid=None, after_ns=None):
        # Every look at the stats also reads the journals as they grow: an
        # adopted journal is compacted to its boot record once settled.
        self.follower.poll()
        return cl.stats(self.run_dir, name, pid, after_ns=after_ns) or {}

    def detail(self):
        logs = []
        for name in ("py-0", "py-1", "executor"):
            try:
                with open(os.path.join(self.run_dir, "logs", name + ".log"), errors="replace") as f:
                    logs.append(f"-- {name}.log:\n" + "".join(f.readlines()[-8:]))
            except OSError:
                pass
        return "\n".join(logs) + "\n" + self.sv.status_text()

    def test_scale_down_adoption_and_restart(self):
        st = self.sv.wait_all_running(timeout=WAIT_S, count=6)
        self.assertEqual(sorted(n for n in st if n.startswith("py-")), ["py-0", "py-1"])
        cl.wait_for(lambda: self.stats("executor").get("fills", 0) > 0, WAIT_S, what="the first fills",
                    detail=self.detail)

        # Without an executor, both instances keep unacked signals.
        cl.tpctl(self.run_dir, "stop", "executor")
        since = cl.now_ns()

        def both_pending():
            s = [self.stats(f"py-{k}", after_ns=since) for k in (0, 1)]
            return all(x.get("signals_pending", 0) >= 2 for x in s)
        cl.wait_for(both_pending, WAIT_S, what="signals pending in py-0 and py-1", detail=self.detail)

        cl.tpctl(self.run_dir, "scale", "py", "1", timeout=WAIT_S)
        left = self.stats("py-1").get("signals_pending", 0)
        self.assertGreater(left, 0, "py-1 retired with nothing pending")
        pid0 = self.sv.status()["py-0"]["pid"]

        def adopted():
            s = self.stats("py-0", pid0)
            return s.get("adopted_shards") == "1" and s.get("adopted_pending", 0) > 0 and s
        cl.wait_for(adopted, WAIT_S, what="py-0 to adopt py-1.journal", detail=self.detail)

        cl.tpctl(self.run_dir, "start", "executor")

        def delivered():
            s = self.stats("py-0", pid0)
            return s.get("adopted_pending", 1) == 0 and s.get("signals_pending", 1) == 0
        cl.wait_for(delivered, WAIT_S, what="py-1's signals delivered by py-0", detail=self.detail)

        cl.tpctl(self.run_dir, "restart", "py:0", timeout=WAIT_S)
        new0 = cl.wait_for(lambda: (self.sv.try_status() or {}).get("py-0", {}).get("pid") not in (None, 0, pid0)
                           and self.sv.status()["py-0"]["pid"], WAIT_S, what="py-0 restarted")
        cl.wait_for(lambda: self.stats("py-0", new0).get("signals_acked", 0) > 0, WAIT_S,
                    what="the restarted py-0 trading", detail=self.detail)

        cl.tpctl(self.run_dir, "stop", "gateway")
        stopped = cl.now_ns()
        st = self.sv.status()
        cl.wait_for(lambda: cl.settled(self.run_dir, {"py-0": st["py-0"]["pid"]}, st["executor"]["pid"], stopped),
                    WAIT_S * 2, what="the system to settle", detail=self.detail)
        cl.tpctl(self.run_dir, "shutdown")
        self.assertEqual(self.sv.wait_exit(timeout=WAIT_S), 0)

        self.follower.poll()
        books = cl.reconcile(self.run_dir, self.follower.book)
        print("\n" + cl.figures_table("python group: scale 2 -> 1 with signals pending, restart py:0", books),
              file=sys.stderr)
        cl.assert_books_balance(self, books, "python group books")
        self.assertEqual(set(books["journals"]), {"py-0.journal", "py-1.journal"})
        from_py1 = {sid for sid in self.follower.book.signals if sid.startswith("py.1.")}
        self.assertTrue(from_py1)
        # py-1's journal, adopted and settled, is compacted to its boot record.
        with open(os.path.join(self.run_dir, "py-1.journal")) as f:
            self.assertRegex(f.read(), r"^B \d+\n$")


if __name__ == "__main__":
    unittest.main()
