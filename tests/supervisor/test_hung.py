"""A hung program under the supervisor, with the REAL programs from $TP_BIN_DIR.

SIGSTOP is the hang: the process is alive (no exit, no SIGCHLD) but its loop
does not run, so its stats file (the heartbeat) stops changing.
  - restart_hung = false: the executor goes HUNG within hang_timeout_ms, the
    others are untouched; after SIGCONT it is RUNNING again with the same pid
    and no restart, and fills resume.
  - restart_hung = true: the executor is SIGKILLed and restarted: a new pid,
    one restart more, last exit "killed by SIGKILL (hung)", fills resume.
A short hang_timeout_ms (2 s, with stats every 100 ms) keeps each test to a
few seconds after the pipeline's start. Skips when the binaries are not built."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from svtest import PROGRAMS, TPCTL, SupervisorRun, pid_alive, supervisor as sv, wait_for

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 30.0    # bounded waits; the machine is small and shared
HANG_MS = 2000   # >= 2 x stats_interval_ms, and above the executor's longest
                 # legitimate block here: 3 x (1 + 1) x 300 ms = 1.8 s


def config_text(d, restart_hung):
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    return "\n".join([
        "[run]", "stats_interval_ms = 100",
        "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
        "[gateway]", "rate = 2000",
        "[strategy]", "instances = 2", "resend_ms = 300",
        "[strategy.sma_crossover]", "fast = 2", "slow = 5",
        "[executor]", "order_timeout_ms = 300", "order_retries = 1",
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 1000", "stop_grace_ms = 5000",
        f"hang_timeout_ms = {HANG_MS}", f"restart_hung = {'true' if restart_hung else 'false'}",
        "",
    ])


@unittest.skipIf(MISSING, SKIP_WHY)
class HungProgramTest(unittest.TestCase):
    def boot(self, restart_hung):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="svh", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        config = os.path.join(self.tmp, "hung.toml")
        with open(config, "w") as f:
            f.write(config_text(self.tmp, restart_hung))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", config])
        self.addCleanup(self.run_.close)
        st = self.run_.wait_all_running(timeout=WAIT_S, count=6)
        # Watched once its heartbeat has been seen (twice) for this pid.
        self.run_.wait_state("executor", "RUNNING", timeout=WAIT_S,
                             pred=lambda p: p["heartbeat_age_s"] is not None)
        self.wait_fills_grow("the first fills")
        return {n: p["pid"] for n, p in st.items()}

    def sigstop(self, pid):
        os.kill(pid, signal.SIGSTOP)
        # Whatever happens, do not leave a stopped process behind a failure.
        self.addCleanup(lambda: pid_alive(pid) and os.kill(pid, signal.SIGCONT))

    def fills(self):
        """(executor pid, fills) from the current executor's stats file, or None."""
        st = self.run_.try_status()
        if not st or not st["executor"]["pid"]:
            return None
        data = sv.read_stats(self.run_.run_dir, "executor")
        if not data or data.get("pid") != st["executor"]["pid"]:
            return None
        return data["pid"], data.get("fills", 0)

    def wait_fills_grow(self, what):
        start = wait_for(self.fills, WAIT_S, what="executor stats", detail=self.run_.status_text)

        def grew():
            now = self.fills()
            return now if now and (now[0] != start[0] or now[1] > start[1]) and now[1] > 0 else None
        return wait_for(grew, WAIT_S, what=f"fills to grow ({what})", detail=self.run_.status_text)

    def test_sigstopped_executor_is_hung_then_running_again_with_the_same_pid(self):
        before = self.boot(restart_hung=False)
        self.sigstop(before["executor"])
        st = self.run_.wait_state("executor", "HUNG", timeout=WAIT_S)
        self.assertEqual(st["executor"]["pid"], before["executor"])
        self.assertGreaterEqual(st["executor"]["heartbeat_age_s"], HANG_MS / 1000.0)
        for name in ("dead_letter", "dll_gateway", "gateway"):
            self.assertEqual(st[name]["state"], "RUNNING", name)
        r = subprocess.run([sys.executable, TPCTL, "--run-dir", self.run_.run_dir, "status"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"executor\s+HUNG \(no heartbeat \d+\.\ds\)")

        os.kill(before["executor"], signal.SIGCONT)
        st = self.run_.wait_state("executor", "RUNNING", timeout=WAIT_S)
        self.assertEqual({n: p["pid"] for n, p in st.items()}, before)
        self.assertEqual((st["executor"]["restarts"], st["executor"]["last_exit"]), (0, None))
        log = self.run_.log()
        self.assertEqual(log.count("executor: HUNG"), 1, log)
        self.assertEqual(log.count("executor: heartbeat again"), 1, log)
        pid, _ = self.wait_fills_grow("after SIGCONT")
        self.assertEqual(pid, before["executor"])

    def test_restart_hung_kills_and_restarts_a_sigstopped_executor(self):
        before = self.boot(restart_hung=True)
        restarts = self.run_.status()["executor"]["restarts"]
        self.sigstop(before["executor"])
        st = self.run_.wait_state("executor", "RUNNING", timeout=WAIT_S,
                                  pred=lambda p: p["pid"] != before["executor"])
        self.assertEqual(st["executor"]["restarts"], restarts + 1)
        self.assertEqual(st["executor"]["last_exit"], "killed by SIGKILL (hung)")
        self.assertFalse(pid_alive(before["executor"]))
        for name in ("dead_letter", "dll_gateway", "strategy-0", "strategy-1", "gateway"):
            self.assertEqual(st[name]["pid"], before[name], f"{name} pid changed")
        self.assertIn("SIGKILL and restart", self.run_.log())
        pid, _ = self.wait_fills_grow("after the restart")
        self.assertEqual(pid, st["executor"]["pid"])


if __name__ == "__main__":
    unittest.main()
