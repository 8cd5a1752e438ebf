"""The supervisor against fake programs (tests/supervisor/fake_program.py):
restarts, targeted restarts, scaling, flapping, stopping, a SIGSTOPped (hung)
program, and that no process outlives the supervisor however it ends."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from svtest import (HERE, REPO, TPCTL, SupervisorRun, make_fake_bin_dir, pid_alive, request, wait_for)

FAST = ["--set", "supervisor.backoff_min_ms=50", "--set", "supervisor.backoff_max_ms=200",
        "--set", "supervisor.stop_grace_ms=2000"]
# The one-group shorthand: processes strategy-0 and strategy-1.
SHORTHAND = ["--set", "strategy.instances=2"]
OTHERS = ["dead_letter", "dll_gateway", "executor", "gateway"]
# Hang watch: the fakes write their stats file every 0.2 s whatever the config says.
HANG = ["--set", "run.stats_interval_ms=200", "--set", "supervisor.hang_timeout_ms=1500"]


class FakeProgramsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="svp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.bin = make_fake_bin_dir(os.path.join(self.tmp, "bin"))

    def start(self, *args, env=None):
        run = SupervisorRun(self.tmp, self.bin, [*FAST, *SHORTHAND, *args], env=env)
        self.addCleanup(run.close)
        return run

    def pids(self, st):
        return {n: p["pid"] for n, p in st.items()}

    def fake_stats(self, run, name):
        with open(os.path.join(run.run_dir, name + ".stats.json")) as f:
            return json.load(f)

    def test_kill9_instance_is_restarted_others_untouched(self):
        run = self.start()
        before = self.pids(run.wait_all_running(count=6))
        os.kill(before["strategy-1"], signal.SIGKILL)
        st = run.wait_state("strategy-1", "RUNNING", pred=lambda p: p["pid"] != before["strategy-1"])
        self.assertEqual(st["strategy-1"]["restarts"], 1)
        self.assertEqual(st["strategy-1"]["last_exit"], "killed by SIGKILL")
        self.assertFalse(pid_alive(before["strategy-1"]))
        after = self.pids(st)
        for name in ["strategy-0", *OTHERS]:
            self.assertEqual(after[name], before[name], name)

    def test_restart_changes_only_the_named_process(self):
        run = self.start()
        before = self.pids(run.wait_all_running(count=6))
        reply = run.ctl({"cmd": "restart", "name": "executor"})
        self.assertTrue(reply["ok"], reply)
        after = self.pids(run.wait_all_running())
        self.assertNotEqual(after["executor"], before["executor"])
        self.assertFalse(pid_alive(before["executor"]))
        for name in ["dead_letter", "dll_gateway", "strategy-0", "strategy-1", "gateway"]:
            self.assertEqual(after[name], before[name], name)
        reply = run.ctl({"cmd": "restart", "name": "strategy:0"})   # GROUP:K names GROUP-K
        self.assertTrue(reply["ok"], reply)
        again = self.pids(run.wait_all_running())
        self.assertNotEqual(again["strategy-0"], after["strategy-0"])
        for name in ["strategy-1", *OTHERS]:
            self.assertEqual(again[name], after[name], name)

    def test_stop_and_start_one_program(self):
        run = self.start()
        before = self.pids(run.wait_all_running(count=6))
        self.assertTrue(run.ctl({"cmd": "stop", "name": "gateway"})["ok"])
        st = run.status()
        self.assertEqual(st["gateway"]["state"], "STOPPED")
        self.assertEqual(st["gateway"]["last_exit"], "exit code 0")
        self.assertFalse(pid_alive(before["gateway"]))
        self.assertTrue(all(st[n]["state"] == "RUNNING" for n in st if n != "gateway"))
        self.assertTrue(run.ctl({"cmd": "start", "name": "gateway"})["ok"])
        after = self.pids(run.wait_all_running())
        self.assertNotEqual(after["gateway"], before["gateway"])
        self.assertEqual(after["executor"], before["executor"])

    def test_scale_1_3_2(self):
        run = self.start()
        before = self.pids(run.wait_all_running(count=6))
        for n in (1, 3, 2):
            with self.subTest(n=n):
                reply = run.ctl({"cmd": "scale", "name": "strategy", "n": n})
                self.assertTrue(reply["ok"], reply)
                st = run.wait_all_running(count=4 + n)
                instances = sorted(k for k in st if k.startswith("strategy-"))
                self.assertEqual(instances, [f"strategy-{k}" for k in range(n)])
                for k in range(n):
                    p = st[f"strategy-{k}"]
                    self.assertEqual((p["shard"], p["shards"]), (k, n))
                    # What the process itself was started with (its stats file).
                    data = wait_for(lambda: self._stats_of(run, f"strategy-{k}", p["pid"]),
                                    what=f"strategy-{k} stats")
                    self.assertEqual((data["shard"], data["shards"]), (k, n))
                for name in OTHERS:
                    self.assertEqual(st[name]["pid"], before[name], name)
        self.assertFalse(any(pid_alive(pid) for pid in run.seen - set(self.pids(run.status()).values())))
        bad = run.ctl({"cmd": "scale", "name": "strategy", "n": 0})
        self.assertFalse(bad["ok"])
        bad = run.ctl({"cmd": "scale", "name": "executor", "n": 2})
        self.assertFalse(bad["ok"])

    def _stats_of(self, run, name, pid):
        try:
            data = self.fake_stats(run, name)
        except (OSError, ValueError):
            return None
        return data if data.get("pid") == pid else None

    def test_flapping_program_goes_fatal_while_others_run(self):
        run = self.start("--set", "supervisor.flap_max_restarts=3", env={"FAKE_CRASH": "dll_gateway"})
        st = run.wait_state("dll_gateway", "FATAL")
        self.assertEqual(st["dll_gateway"]["restarts"], 3)
        self.assertEqual(st["dll_gateway"]["last_exit"], "exit code 3")
        self.assertIsNone(st["dll_gateway"]["pid"])
        def others_running():
            s = run.try_status()
            return s if s and all(s[n]["state"] == "RUNNING" for n in s if n != "dll_gateway") else None
        pids = self.pids(wait_for(others_running, what="the others RUNNING", detail=run.status_text))
        self.assertIn("FATAL", run.log())
        # The others keep running (their pids do not change).
        self.assertEqual(self.pids(run.status())["executor"], pids["executor"])

    def test_stop_escalates_to_sigkill_after_the_grace(self):
        run = self.start("--set", "supervisor.stop_grace_ms=300", env={"FAKE_IGNORE_TERM": "executor"})
        before = self.pids(run.wait_all_running(count=6))
        self.assertTrue(run.ctl({"cmd": "stop", "name": "executor"})["ok"])
        st = run.status()
        self.assertEqual(st["executor"]["state"], "STOPPED")
        self.assertEqual(st["executor"]["last_exit"], "killed by SIGKILL")
        self.assertFalse(pid_alive(before["executor"]))

    def stop_cont(self, pid):
        """SIGSTOPs `pid`; the clean-up SIGCONTs it (harmless if it is gone)."""
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(lambda: pid_alive(pid) and os.kill(pid, signal.SIGCONT))

    def test_sigstopped_program_is_hung_then_running_again_with_the_same_pid(self):
        run = self.start(*HANG)
        before = self.pids(run.wait_all_running(count=6))
        # Judged only once its pid has been seen beating.
        run.wait_state("executor", "RUNNING", pred=lambda p: p["heartbeat_age_s"] is not None)
        self.stop_cont(before["executor"])
        st = run.wait_state("executor", "HUNG", timeout=10)
        self.assertEqual(st["executor"]["pid"], before["executor"])
        self.assertGreaterEqual(st["executor"]["heartbeat_age_s"], 1.5)
        for name in ["strategy-0", "strategy-1", "dead_letter", "dll_gateway", "gateway"]:
            self.assertEqual(st[name]["state"], "RUNNING", name)
        r = subprocess.run([sys.executable, TPCTL, "--run-dir", run.run_dir, "status"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"executor\s+HUNG \(no heartbeat \d+\.\ds\)\s+%d" % before["executor"])
        os.kill(before["executor"], signal.SIGCONT)
        st = run.wait_state("executor", "RUNNING", timeout=10)
        self.assertEqual(self.pids(st), before)
        self.assertEqual((st["executor"]["restarts"], st["executor"]["last_exit"]), (0, None))
        log = run.log()
        self.assertEqual(log.count("executor: HUNG"), 1, log)
        self.assertIn("left alone (supervisor.restart_hung = false)", log)
        self.assertEqual(log.count("executor: heartbeat again"), 1, log)

    def test_restart_hung_kills_and_restarts_a_sigstopped_program(self):
        run = self.start(*HANG, "--set", "supervisor.restart_hung=true")
        before = self.pids(run.wait_all_running(count=6))
        run.wait_state("executor", "RUNNING", pred=lambda p: p["heartbeat_age_s"] is not None)
        self.stop_cont(before["executor"])
        st = run.wait_state("executor", "RUNNING", timeout=15,
                            pred=lambda p: p["pid"] != before["executor"])
        self.assertEqual(st["executor"]["restarts"], 1)
        self.assertEqual(st["executor"]["last_exit"], "killed by SIGKILL (hung)")
        self.assertFalse(pid_alive(before["executor"]))
        after = self.pids(st)
        for name in ["strategy-0", "strategy-1", "dead_letter", "dll_gateway", "gateway"]:
            self.assertEqual(after[name], before[name], name)
        self.assertIn("SIGKILL and restart", run.log())

    def test_stop_of_a_sigstopped_program_lets_it_exit_cleanly(self):
        # SIGTERM alone would wait in a stopped process until the SIGKILL
        # after the grace (2 s here); SIGCONT after it lets it exit 0.
        run = self.start()
        before = self.pids(run.wait_all_running(count=6))
        self.stop_cont(before["executor"])
        self.assertTrue(run.ctl({"cmd": "stop", "name": "executor"})["ok"])
        st = run.status()
        self.assertEqual((st["executor"]["state"], st["executor"]["last_exit"]), ("STOPPED", "exit code 0"))
        self.assertFalse(pid_alive(before["executor"]))

    def test_shutdown_command_leaves_nothing(self):
        run = self.start()
        pids = self.pids(run.wait_all_running(count=6))
        self.assertTrue(run.ctl({"cmd": "shutdown"})["ok"])
        self.assertEqual(run.wait_exit(), 0)
        self.assertEqual([n for n, pid in pids.items() if pid_alive(pid)], [])
        self.assertFalse(os.path.exists(run.socket))

    def test_sigterm_to_supervisor_leaves_nothing(self):
        run = self.start()
        pids = self.pids(run.wait_all_running(count=6))
        run.proc.send_signal(signal.SIGTERM)
        self.assertEqual(run.wait_exit(), 0)
        self.assertEqual([n for n, pid in pids.items() if pid_alive(pid)], [])
        # Each program was asked to stop (exit 0), not killed.
        for name in ("gateway", "executor", "strategy-0"):
            self.assertTrue(os.path.exists(os.path.join(run.run_dir, name + ".stats.json")))

    def test_sigkill_to_supervisor_kills_children(self):
        run = self.start()
        pids = self.pids(run.wait_all_running(count=6))
        run.proc.send_signal(signal.SIGKILL)
        run.wait_exit()
        wait_for(lambda: not any(pid_alive(p) for p in pids.values()), timeout=10,
                 what="children to die with the supervisor")

    def test_tpctl_exit_codes_and_status_table(self):
        def tpctl(*args):
            return subprocess.run([sys.executable, TPCTL, *args], capture_output=True, text=True, timeout=60)

        empty = os.path.join(self.tmp, "nobody")
        os.makedirs(empty)
        r = tpctl("--run-dir", empty, "status")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("no supervisor running at", r.stderr)

        run = self.start()
        run.wait_all_running(count=6)
        r = tpctl("--run-dir", run.run_dir, "status")
        self.assertEqual(r.returncode, 0, r)
        header = r.stdout.splitlines()[1].split()
        self.assertEqual(header[:4], ["NAME", "STATE", "PID", "UPTIME"])
        self.assertIn("strategy-1", r.stdout)
        r = tpctl("--socket", run.socket, "restart", "nosuch")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("unknown program 'nosuch'", r.stderr)
        r = tpctl("--run-dir", run.run_dir, "scale", "strategy", "x")
        self.assertEqual(r.returncode, 1, r)
        r = tpctl("--run-dir", run.run_dir, "shutdown")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(run.wait_exit(), 0)

    def test_missing_binaries_is_a_clear_error(self):
        empty = os.path.join(self.tmp, "emptybin")
        os.makedirs(empty)
        run = SupervisorRun(self.tmp, empty)
        self.addCleanup(run.close)
        self.assertEqual(run.wait_exit(), 1)
        self.assertIn("no executable", run.log())

    def test_second_supervisor_on_the_same_socket_is_refused(self):
        run = self.start()
        run.wait_all_running(count=6)
        second = os.path.join(self.tmp, "second")
        os.makedirs(second)
        other = SupervisorRun(second, self.bin, run_dir=run.run_dir)
        self.addCleanup(other.close)
        self.assertEqual(other.wait_exit(), 1)
        self.assertIn("another supervisor is running", other.log())
        self.assertTrue(request(run.socket, {"cmd": "status"})["ok"])


class TwoGroupsTest(unittest.TestCase):
    """Two strategy groups under one supervisor (fake programs): a built-in
    group "trend" (the strategy binary, 2 instances) and a python group
    "pyrev" (python3 -m tp_strategy; here a stand-in tp_strategy module on the
    group's python_path). One group is scaled and one of its processes
    restarted by GROUP:K while the other group keeps running."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="svg")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.bin = make_fake_bin_dir(os.path.join(self.tmp, "bin"))
        self.pylib = os.path.join(self.tmp, "pylib")
        os.makedirs(self.pylib)
        # `python3 -m tp_strategy` finds this first (python_path leads
        # PYTHONPATH); it runs as program "tp_strategy.py" (its argv[0]).
        os.symlink(os.path.join(HERE, "fake_program.py"), os.path.join(self.pylib, "tp_strategy.py"))
        self.config = os.path.join(self.tmp, "deploy.toml")
        with open(self.config, "w") as f:
            f.write("[[strategy.groups]]\nname = \"trend\"\nkind = \"sma_crossover\"\ninstances = 2\n"
                    "[[strategy.groups]]\nname = \"pyrev\"\nkind = \"python\"\nentry = \"mine:Revert\"\n"
                    f"python_path = {self.pylib!r}\ninstruments = [\"EURUSD\", \"USDJPY\"]\n")

    def start(self, *args, env=None):
        self.run_ = SupervisorRun(self.tmp, self.bin, [*FAST, "--config", self.config, *args], env=env)
        self.addCleanup(self.run_.close)
        return self.run_

    def tpctl(self, *args):
        return subprocess.run([sys.executable, TPCTL, "--run-dir", self.run_.run_dir, *args],
                              capture_output=True, text=True, timeout=120)

    def started_with(self, name, pid):
        """The stats file `name`'s process `pid` wrote (its arguments, PYTHONPATH)."""
        def read():
            try:
                with open(os.path.join(self.run_.run_dir, name + ".stats.json")) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                return None
            return data if data.get("pid") == pid else None
        return wait_for(read, what=f"{name}'s stats from pid {pid}")

    def test_scale_and_restart_one_group_while_the_other_runs(self):
        run = self.start()
        st = run.wait_all_running(count=7)
        self.assertEqual(sorted(n for n in st if st[n].get("group")), ["pyrev-0", "trend-0", "trend-1"])
        py = self.started_with("pyrev-0", st["pyrev-0"]["pid"])
        self.assertEqual(py["program"], "tp_strategy.py")
        self.assertEqual(py["args"][-6:], ["--group", "pyrev", "--shard", "0", "--shards", "1"])
        self.assertEqual(py["pythonpath"].split(os.pathsep)[:2],
                         [self.pylib, os.path.join(REPO, "strategy", "python")])
        trend = self.started_with("trend-1", st["trend-1"]["pid"])
        self.assertEqual((trend["program"], trend["args"][-6:]),
                         ("strategy", ["--group", "trend", "--shard", "1", "--shards", "2"]))
        self.assertEqual(st["pyrev-0"]["instruments"], ["EURUSD", "USDJPY"])

        # `scale N` is for one-group deployments only.
        r = self.tpctl("scale", "3")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("2 strategy groups (trend, pyrev): name one", r.stderr)

        r = self.tpctl("scale", "trend", "3")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("trend scaled 2 -> 3", r.stdout)
        scaled = run.wait_all_running(count=8)
        for k in range(3):
            self.assertEqual((scaled[f"trend-{k}"]["shard"], scaled[f"trend-{k}"]["shards"]), (k, 3))
            data = self.started_with(f"trend-{k}", scaled[f"trend-{k}"]["pid"])
            self.assertEqual(data["args"][-4:], ["--shard", str(k), "--shards", "3"])
        for name in ("pyrev-0", *OTHERS):
            self.assertEqual(scaled[name]["pid"], st[name]["pid"], name)

        r = self.tpctl("restart", "trend:1")
        self.assertEqual(r.returncode, 0, r)
        again = run.wait_all_running(count=8)
        self.assertNotEqual(again["trend-1"]["pid"], scaled["trend-1"]["pid"])
        self.assertFalse(pid_alive(scaled["trend-1"]["pid"]))
        for name in ("trend-0", "trend-2", "pyrev-0", *OTHERS):
            self.assertEqual(again[name]["pid"], scaled[name]["pid"], name)

        # The python group: restarted by its process name, and after a kill -9.
        r = self.tpctl("restart", "pyrev-0")
        self.assertEqual(r.returncode, 0, r)
        st = run.wait_state("pyrev-0", "RUNNING", pred=lambda p: p["pid"] != again["pyrev-0"]["pid"])
        victim = st["pyrev-0"]["pid"]
        os.kill(victim, signal.SIGKILL)
        st = run.wait_state("pyrev-0", "RUNNING", pred=lambda p: p["pid"] != victim)
        self.assertEqual((st["pyrev-0"]["restarts"], st["pyrev-0"]["last_exit"]), (2, "killed by SIGKILL"))
        for name in ("trend-0", "trend-1", "trend-2", *OTHERS):
            self.assertEqual(st[name]["pid"], again[name]["pid"], name)

        r = self.tpctl("status")
        self.assertEqual(r.returncode, 0, r)
        lines = r.stdout.splitlines()
        self.assertIn("strategy groups: trend x3, pyrev x1", lines[0])
        head = lines.index("group trend (sma_crossover, 3 instances)")
        self.assertEqual([l.split()[0] for l in lines[head + 1:head + 4]], ["trend-0", "trend-1", "trend-2"])
        head = lines.index("group pyrev (python, 1 instance)")
        self.assertRegex(lines[head + 1], r"^pyrev-0\s+RUNNING\s+%d\s" % st["pyrev-0"]["pid"])
        r = self.tpctl("restart", "pyrev:1")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("no instance pyrev:1 (pyrev runs 1 instances: pyrev-0..pyrev-0)", r.stderr)

    def test_hang_watch_and_flapping_per_group_instance(self):
        # trend-1 crashes at once, every time: FATAL on its own. pyrev-0 is
        # SIGSTOPped: HUNG from its own heartbeat (pyrev-0.stats.json), then
        # RUNNING again on SIGCONT. Nothing else is touched.
        run = self.start(*HANG, "--set", "supervisor.flap_max_restarts=2", env={"FAKE_CRASH": "trend-1"})
        st = run.wait_state("trend-1", "FATAL")
        self.assertEqual((st["trend-1"]["restarts"], st["trend-1"]["last_exit"]), (2, "exit code 3"))
        st = run.wait_state("pyrev-0", "RUNNING", pred=lambda p: p["heartbeat_age_s"] is not None)
        victim = st["pyrev-0"]["pid"]
        others = {n: p["pid"] for n, p in st.items() if n not in ("pyrev-0", "trend-1")}
        os.kill(victim, signal.SIGSTOP)
        self.addCleanup(lambda: pid_alive(victim) and os.kill(victim, signal.SIGCONT))
        st = run.wait_state("pyrev-0", "HUNG", timeout=10)
        self.assertEqual(st["pyrev-0"]["pid"], victim)
        os.kill(victim, signal.SIGCONT)
        st = run.wait_state("pyrev-0", "RUNNING", timeout=10)
        self.assertEqual((st["pyrev-0"]["pid"], st["pyrev-0"]["restarts"]), (victim, 0))
        self.assertEqual({n: st[n]["pid"] for n in others}, others)
        self.assertTrue(all(st[n]["state"] == "RUNNING" for n in others))
        log = run.log()
        self.assertEqual(log.count("pyrev-0: HUNG"), 1, log)
        self.assertEqual(log.count("trend-1: FATAL"), 1, log)


if __name__ == "__main__":
    unittest.main()
