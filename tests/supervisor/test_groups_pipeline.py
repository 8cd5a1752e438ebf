"""Two strategy groups under the supervisor with the REAL programs from
$TP_BIN_DIR and the real Python runtime (strategy/python/tp_strategy):
"nth" (the strategy binary, every_nth x2) and "py" (python3 -m tp_strategy,
tests/python_strategy/strategies.py, one instance over two instruments). Both
trade; tpctl status shows each group's figures from the executor; the python
instance is restarted by GROUP:K and trades again; the C++ group is scaled
while the python one runs on; the summary at the end has both groups with
their signals, acks and fills. Skips when the binaries are not built."""

import json
import os
import shutil
import sys
import tempfile
import unittest

from svtest import HERE, PROGRAMS, SupervisorRun, endpoints_toml, supervisor as sv, wait_for

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 30.0


def config_text(d):
    return "\n".join([
        "[run]", "stats_interval_ms = 200",
        *endpoints_toml(d),
        "[gateway]", "rate = 1000",
        "[strategy]", "resend_ms = 300",
        "[[strategy.groups]]", 'name = "nth"', 'kind = "every_nth"', "instances = 2",
        "[strategy.groups.params]", "n = 10",
        "[[strategy.groups]]", 'name = "py"', 'kind = "python"', 'entry = "strategies:EveryNth"',
        f'python_path = "{os.path.join(HERE, "..", "python_strategy")}"', 'instruments = ["EURUSD", "USDJPY"]',
        "[strategy.groups.params]", "n = 10",
        "[executor]", "order_timeout_ms = 300",
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 1000", "stop_grace_ms = 5000",
        "",
    ])


@unittest.skipIf(MISSING, SKIP_WHY)
class GroupsPipelineTest(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="svg", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        config = os.path.join(self.tmp, "groups.toml")
        with open(config, "w") as f:
            f.write(config_text(self.tmp))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", config, "--summary"])
        self.addCleanup(self.run_.close)

    def tpctl(self, *args):
        r = self.run_.tpctl(*args)
        self.assertEqual(r.returncode, 0, f"tpctl {' '.join(args)}: {r.stderr}\n{self.detail()}")
        return r.stdout

    def stats(self, name, pid=None):
        data = sv.read_stats(self.run_.run_dir, name)
        return data if data and (pid is None or data.get("pid") == pid) else None

    def group_fills(self, group):
        return ((self.stats("executor") or {}).get("groups") or {}).get(group, {}).get("fills", 0)

    def detail(self):
        parts = [f"executor groups: {json.dumps((self.stats('executor') or {}).get('groups'))}"]
        for name in ("py-0", "nth-0"):
            parts.append(f"{name} stats: {self.stats(name)}")
            try:
                with open(os.path.join(self.run_.run_dir, "logs", name + ".log"), errors="replace") as f:
                    parts.append(f"-- {name}.log:\n" + "".join(f.readlines()[-10:]))
            except OSError:
                pass
        return "\n".join(parts) + "\n" + self.run_.status_text()

    def trading_since(self, name, pid, emitted):
        """`name`'s stats file of pid `pid` once it has emitted more than `emitted`."""
        return wait_for(lambda: (lambda s: s if s and s.get("signals_emitted", 0) > emitted else None)(
                            self.stats(name, pid)),
                        WAIT_S, what=f"{name} (pid {pid}) emitting signals", detail=self.detail)

    def test_a_cpp_and_a_python_group_side_by_side(self):
        st = self.run_.wait_all_running(timeout=WAIT_S, count=7)
        py = self.trading_since("py-0", st["py-0"]["pid"], 0)
        self.assertEqual((py["shard"], py["shards"]), (0, 1))
        for k in range(2):
            self.trading_since(f"nth-{k}", st[f"nth-{k}"]["pid"], 0)
        wait_for(lambda: self.group_fills("nth") > 0 and self.group_fills("py") > 0, WAIT_S,
                 what="fills of both groups in the executor's stats", detail=self.detail)
        status = self.tpctl("status")
        self.assertRegex(status, r"group nth \(every_nth, 2 instances\): signals \d+, (rejected \d+, )?fills \d+")
        self.assertRegex(status, r"group py \(python, 1 instance\): signals \d+, (rejected \d+, )?fills \d+")
        self.assertIn("  positions: ", status)

        # The python instance, restarted by GROUP:K: a new pid that trades.
        self.assertIn("restarted py-0", self.tpctl("restart", "py:0"))
        st2 = self.run_.wait_state("py-0", "RUNNING", timeout=WAIT_S, pred=lambda p: p["pid"] != st["py-0"]["pid"])
        self.trading_since("py-0", st2["py-0"]["pid"], 0)
        for name in ("nth-0", "nth-1", "executor", "gateway"):
            self.assertEqual(st2[name]["pid"], st[name]["pid"], name)

        # The C++ group scaled while the python one runs on.
        self.assertIn("nth scaled 2 -> 1", self.tpctl("scale", "nth", "1"))
        st3 = self.run_.wait_all_running(timeout=WAIT_S, count=6)
        self.assertEqual(sorted(n for n in st3 if n.startswith("nth-")), ["nth-0"])
        self.assertEqual(st3["py-0"]["pid"], st2["py-0"]["pid"])
        nth = self.trading_since("nth-0", st3["nth-0"]["pid"], 0)
        self.assertEqual((nth["shard"], nth["shards"]), (0, 1))

        self.tpctl("shutdown")
        self.assertEqual(self.run_.wait_exit(timeout=WAIT_S), 0)
        with open(self.run_.log_path, errors="replace") as f:
            out = f.read()
        self.assertIn("  nth (every_nth): 1 process (nth-0 STOPPED)", out)
        self.assertIn("  py (python): 1 process (py-0 STOPPED)", out)
        groups = (self.stats("executor") or {}).get("groups") or {}
        for g in ("nth", "py"):
            fig = groups[g]
            self.assertIn(f"executor: signals {fig['signals']}, "
                          + (f"rejected {fig['rejected']}, " if "rejected" in fig else "")
                          + f"fills {fig['fills']}", out)


if __name__ == "__main__":
    unittest.main()
