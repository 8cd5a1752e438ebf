"""The supervisor against the REAL programs from $TP_BIN_DIR (integration).

Each test boots the whole pipeline on ipc:// endpoints in a temp dir, does one
thing to it (kill -9 a strategy, restart the executor or dll_gateway, rescale,
shut down) and checks that only the named process changed and that fills
resume (executor.stats.json `fills` grows after the event). Skips when the
binaries are not built."""

import os
import shutil
import signal
import sys
import tempfile
import unittest

from svtest import PROGRAMS, SupervisorRun, pid_alive, supervisor as sv, wait_for

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 30.0  # bounded waits; the machine is small and shared


def config_text(d):
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    return "\n".join([
        "[run]", "stats_interval_ms = 200",
        "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
        "[gateway]", "rate = 2000",
        "[strategy]", "instances = 2", "resend_ms = 300",
        "[strategy.sma_crossover]", "fast = 2", "slow = 5",
        "[executor]", "order_timeout_ms = 300",
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 1000", "stop_grace_ms = 5000",
        "",
    ])


@unittest.skipIf(MISSING, SKIP_WHY)
class RealPipelineTest(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="svi", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.config = os.path.join(self.tmp, "pipeline.toml")
        with open(self.config, "w") as f:
            f.write(config_text(self.tmp))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", self.config, "--summary"])
        self.addCleanup(self.run_.close)
        self.before = self.pids(self.run_.wait_all_running(timeout=WAIT_S, count=6))
        self.wait_fills_grow("the first fills")

    # -- helpers --------------------------------------------------------------

    def pids(self, st):
        return {n: p["pid"] for n, p in st.items()}

    def stats(self, name, pid=None):
        data = sv.read_stats(self.run_.run_dir, name)
        if data is None or (pid is not None and data.get("pid") != pid):
            return None
        return data

    def fills(self):
        """(executor pid, fills) from the current executor's stats file, or None."""
        st = self.run_.try_status()
        if st and any(p["state"] == "FATAL" for p in st.values()):  # no point waiting on
            self.fail("a program is FATAL (keeps failing at start)\n" + self.detail())
        if not st or not st["executor"]["pid"]:
            return None
        data = self.stats("executor", st["executor"]["pid"])
        return (data["pid"], data.get("fills", 0)) if data else None

    def wait_fills_grow(self, what):
        """Waits until the current executor reports more fills than it does now."""
        start = wait_for(self.fills, WAIT_S, what="executor stats", detail=self.detail)

        def grew():
            now = self.fills()
            return now if now and (now[0] != start[0] or now[1] > start[1]) and now[1] > 0 else None
        got = wait_for(grew, WAIT_S, what=f"fills to grow ({what})", detail=self.detail)
        if got[0] == start[0]:
            self.assertGreater(got[1], start[1])
        return got

    def detail(self):
        ex = sv.read_stats(self.run_.run_dir, "executor")
        logs = []
        for name in ("executor", "dll_gateway", "strategy-0", "gateway"):
            try:
                with open(os.path.join(self.run_.run_dir, "logs", name + ".log"), errors="replace") as f:
                    logs.append(f"-- {name}.log:\n" + "".join(f.readlines()[-8:]))
            except OSError:
                pass
        return f"executor stats: {ex}\n" + "\n".join(logs) + "\n" + self.run_.status_text()

    def assert_unchanged(self, st, names):
        now = self.pids(st)
        for name in names:
            self.assertEqual(now[name], self.before[name], f"{name} pid changed")

    # -- tests ----------------------------------------------------------------

    def test_kill9_strategy_is_restarted_and_fills_resume(self):
        victim = self.before["strategy-0"]
        os.kill(victim, signal.SIGKILL)
        st = self.run_.wait_state("strategy-0", "RUNNING", timeout=WAIT_S, pred=lambda p: p["pid"] != victim)
        self.assertEqual(st["strategy-0"]["last_exit"], "killed by SIGKILL")
        self.assert_unchanged(st, ["strategy-1", "gateway", "executor", "dll_gateway", "dead_letter"])
        self.wait_fills_grow("after kill -9 strategy-0")

    def test_restart_executor_only_and_fills_resume(self):
        self.assertTrue(self.run_.ctl({"cmd": "restart", "name": "executor"})["ok"])
        st = self.run_.wait_all_running(timeout=WAIT_S)
        self.assertNotEqual(st["executor"]["pid"], self.before["executor"])
        self.assertEqual(st["executor"]["last_exit"], "exit code 0")  # a clean stop on SIGTERM
        self.assert_unchanged(st, ["strategy-0", "strategy-1", "gateway", "dll_gateway", "dead_letter"])
        self.wait_fills_grow("after restart executor")

    def test_restart_dll_gateway_only_and_fills_resume(self):
        self.assertTrue(self.run_.ctl({"cmd": "restart", "name": "dll_gateway"})["ok"])
        st = self.run_.wait_all_running(timeout=WAIT_S)
        self.assertNotEqual(st["dll_gateway"]["pid"], self.before["dll_gateway"])
        self.assertEqual(st["dll_gateway"]["last_exit"], "exit code 0")
        self.assert_unchanged(st, ["strategy-0", "strategy-1", "gateway", "executor", "dead_letter"])
        self.wait_fills_grow("after restart dll_gateway")

    def test_scale_1_3_2_shards_follow_and_fills_resume(self):
        instruments = sv.DEFAULT_INSTRUMENTS
        for n in (1, 3, 2):
            with self.subTest(n=n):
                reply = self.run_.ctl({"cmd": "scale", "name": "strategy", "n": n})
                self.assertTrue(reply["ok"], reply)
                st = self.run_.wait_all_running(timeout=WAIT_S, count=4 + n)
                self.assertEqual(sorted(k for k in st if k.startswith("strategy-")),
                                 [f"strategy-{k}" for k in range(n)])
                for k in range(n):
                    pid = st[f"strategy-{k}"]["pid"]
                    data = wait_for(lambda: self.stats(f"strategy-{k}", pid), WAIT_S,
                                    what=f"strategy-{k} stats", detail=self.detail)
                    self.assertEqual((data["shard"], data["shards"]), (k, n))
                    # The C++ sharding and the supervisor's agree.
                    got = [s for s in str(data.get("instruments", "")).split(",") if s]
                    self.assertEqual(got, sv.instruments_for_shard(instruments, k, n), f"strategy-{k} of {n}")
                self.assert_unchanged(st, ["gateway", "executor", "dll_gateway", "dead_letter"])
                self.wait_fills_grow(f"after scale to {n}")

    def test_shutdown_stops_everything_cleanly(self):
        self.assertTrue(self.run_.ctl({"cmd": "shutdown"})["ok"])
        self.assertEqual(self.run_.wait_exit(timeout=WAIT_S), 0)
        self.assertEqual([n for n, pid in self.before.items() if pid_alive(pid)], [])
        # Every program stopped cleanly on SIGTERM: the summary's table says
        # "<name> STOPPED <restarts> exit code 0" for each.
        with open(self.run_.log_path) as f:
            rows = {line.split()[0]: line.rstrip("\n").split(None, 3)[1:] for line in f
                    if line.split() and line.split()[0] in self.before}
        for name in self.before:
            self.assertEqual(rows.get(name), ["STOPPED", "0", "exit code 0"], f"{name}\n{self.run_.log()}")


if __name__ == "__main__":
    unittest.main()
