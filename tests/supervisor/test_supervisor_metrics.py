"""The supervisor with metrics.port = P against fake programs
(fake_program.py, which write their arguments into their stats files): it
serves its own metrics on P (promtool-clean, the states it shows in `tpctl
status`), hands each process its port by the documented offsets, writes the
file_sd targets file and rewrites it on scale (a kept process keeps its
port), counts restarts and exit codes, shows FATAL, and says where the
metrics are in status and `tpctl status`; a port clash or a base too high is
a start-up error before any process starts."""

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import unittest

from svtest import REPO, SupervisorRun, make_fake_bin_dir, pid_alive, wait_for

sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from ports import free_port_base  # noqa: E402
from prom import PROMTOOL, http_get, promtool_check_metrics, samples  # noqa: E402

FAST = ["--set", "supervisor.backoff_min_ms=50", "--set", "supervisor.backoff_max_ms=200",
        "--set", "supervisor.stop_grace_ms=2000"]
SHORTHAND = ["--set", "strategy.instances=2"]   # processes strategy-0 and strategy-1
OFFSETS = {"supervisor": 0, "gateway": 1, "executor": 2, "dll_gateway": 3, "dead_letter": 4}


class SupervisorMetricsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="svm")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.bin = make_fake_bin_dir(os.path.join(self.tmp, "bin"))
        self.base = free_port_base(16)

    def start(self, *args, env=None):
        run = SupervisorRun(self.tmp, self.bin, [*FAST, *SHORTHAND, "--set", f"metrics.port={self.base}", *args],
                            env=env)
        self.addCleanup(run.close)
        return run

    def scrape(self):
        status, body = http_get(f"http://127.0.0.1:{self.base}/metrics")
        return body if status == 200 else ""

    def current_states(self):
        """process -> the state whose sample is 1, from a scrape."""
        return {dict(k)["process"]: dict(k)["state"]
                for k, v in samples(self.scrape(), "tp_supervisor_process_state").items() if v == 1}

    def targets(self, run):
        with open(os.path.join(run.run_dir, "prometheus_targets.json")) as f:
            return {g["labels"]["tp_process"]: g["targets"] for g in json.load(f)}

    def port_given(self, run, name):
        """The metrics.port the process was started with: the last --set of it."""
        with open(os.path.join(run.run_dir, name + ".stats.json")) as f:
            args = json.load(f)["args"]
        ports = [a.split("=", 1)[1] for a in args if a.startswith("metrics.port=")]
        return int(ports[-1])

    def test_ports_targets_states_and_scale(self):
        run = self.start()
        st = run.wait_all_running(count=6)
        want = {name: self.base + off for name, off in OFFSETS.items()}
        want.update({"strategy-0": self.base + 10, "strategy-1": self.base + 11})
        self.assertEqual(self.targets(run), {n: [f"127.0.0.1:{p}"] for n, p in want.items()})
        for name in st:
            self.assertEqual(self.port_given(run, name), want[name], name)
        # status (and tpctl status) say where the metrics are.
        where = run.ctl({"cmd": "status"})["metrics"]
        targets_file = os.path.join(run.run_dir, "prometheus_targets.json")
        self.assertEqual(where, {"url": f"http://127.0.0.1:{self.base}/metrics", "targets_file": targets_file,
                                 "processes": {n: f"127.0.0.1:{p}" for n, p in want.items() if n != "supervisor"}})
        self.assertIn(f"metrics: http://127.0.0.1:{self.base}/metrics, every process's in {targets_file}",
                      run.tpctl("status").stdout)

        wait_for(lambda: self.current_states() == {n: "RUNNING" for n in st}, 5,
                 what="every process RUNNING in the supervisor's metrics", detail=self.scrape)
        text = self.scrape()
        if PROMTOOL:
            ok, out = promtool_check_metrics(text)
            self.assertTrue(ok, out + text)
        self.assertEqual(len(samples(text, "tp_supervisor_process_state")), 6 * 7)
        self.assertEqual(set(dict(k)["process"] for k in samples(text, "process_resident_memory_bytes")),
                         {"supervisor"})

        # Scale 2 -> 3 -> 1 -> 2: the kept instance keeps its port, a new one
        # takes the lowest free slot, the file follows each time.
        self.assertTrue(run.ctl({"cmd": "scale", "name": "strategy", "n": 3})["ok"])
        run.wait_all_running(count=7)
        self.assertEqual(self.targets(run)["strategy-2"], [f"127.0.0.1:{self.base + 12}"])
        self.assertEqual(self.port_given(run, "strategy-2"), self.base + 12)
        self.assertTrue(run.ctl({"cmd": "scale", "name": "strategy", "n": 1})["ok"])
        run.wait_all_running(count=5)
        self.assertNotIn("strategy-1", self.targets(run))
        self.assertEqual(self.targets(run)["strategy-0"], [f"127.0.0.1:{self.base + 10}"])
        wait_for(lambda: samples(self.scrape(), "tp_supervisor_group_instances")
                 == {frozenset({("group", "strategy")}): 1.0}, 5, what="1 instance in the metrics")
        self.assertEqual(set(self.current_states()), {"strategy-0", *OFFSETS} - {"supervisor"})

    def test_a_scale_needing_a_taken_port_is_refused_and_changes_nothing(self):
        run = self.start()
        before = {n: p["pid"] for n, p in run.wait_all_running(count=6).items()}
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.base + 12))   # strategy-2's
            taken.listen(1)
            reply = run.ctl({"cmd": "scale", "name": "strategy", "n": 3})
        self.assertFalse(reply["ok"])
        self.assertIn(f"cannot scale strategy to 3: metrics port: strategy-2: cannot listen on "
                      f"127.0.0.1:{self.base + 12}", reply["error"])
        self.assertEqual({n: p["pid"] for n, p in run.status().items()}, before, "no process touched")
        self.assertNotIn("strategy-2", self.targets(run))
        self.assertTrue(run.ctl({"cmd": "scale", "name": "strategy", "n": 3})["ok"], "free again: it scales")
        run.wait_all_running(count=7)

    def test_restarts_exit_codes_and_fatal(self):
        run = self.start("--set", "supervisor.flap_max_restarts=3", env={"FAKE_CRASH": "dll_gateway"})
        run.wait_state("dll_gateway", "FATAL")
        wait_for(lambda: self.current_states().get("dll_gateway") == "FATAL", 5, what="FATAL in the metrics",
                 detail=self.scrape)
        text = self.scrape()
        label = frozenset({("program", "dll_gateway"), ("process", "dll_gateway")})
        self.assertEqual(samples(text, "tp_supervisor_process_last_exit_code")[label], 3.0)
        self.assertEqual(samples(text, "tp_supervisor_process_restarts_total")[label], 3.0)
        self.assertEqual(samples(text, "tp_supervisor_process_up")[label], 0.0)

        pid = run.status()["executor"]["pid"]
        os.kill(pid, signal.SIGKILL)
        run.wait_state("executor", "RUNNING", pred=lambda p: p["pid"] != pid)
        label = frozenset({("program", "executor"), ("process", "executor")})
        wait_for(lambda: samples(self.scrape(), "tp_supervisor_process_last_exit_code").get(label) == 137, 5,
                 what="executor's last exit 137 (SIGKILL)", detail=self.scrape)
        text = self.scrape()
        self.assertEqual(samples(text, "tp_supervisor_process_restarts_total")[label], 1.0)
        self.assertEqual(samples(text, "tp_supervisor_process_up")[label], 1.0)

    def test_a_taken_port_stops_the_start_naming_the_process(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.base + 2))
            taken.listen(1)
            run = self.start()
            self.assertEqual(run.wait_exit(20), 1)
        with open(run.log_path) as f:
            out = f.read()
        self.assertIn(f"metrics.port {self.base}: executor: cannot listen on 127.0.0.1:{self.base + 2}", out)
        self.assertFalse(os.path.exists(os.path.join(run.run_dir, "dead_letter.stats.json")),
                         "no process was started")

    def test_its_own_port_taken_and_no_room_above(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.base))
            taken.listen(1)
            run = self.start()
            self.assertEqual(run.wait_exit(20), 1)
        with open(run.log_path) as f:
            self.assertIn(f"metrics: cannot listen on 127.0.0.1:{self.base}", f.read())

        run = SupervisorRun(self.tmp, self.bin, [*FAST, *SHORTHAND, "--set", "metrics.port=65525"],
                            run_dir=os.path.join(self.tmp, "run2"))
        self.addCleanup(run.close)
        self.assertEqual(run.wait_exit(20), 1)
        with open(run.log_path) as f:
            self.assertIn("strategy-1: port 65536 is beyond 65535", f.read())

    def test_off_by_default(self):
        run = SupervisorRun(self.tmp, self.bin, [*FAST, *SHORTHAND])
        self.addCleanup(run.close)
        run.wait_all_running(count=6)
        self.assertFalse(os.path.exists(os.path.join(run.run_dir, "prometheus_targets.json")))
        with open(os.path.join(run.run_dir, "gateway.stats.json")) as f:
            self.assertFalse([a for a in json.load(f)["args"] if a.startswith("metrics.port")])
        self.assertNotIn("metrics", run.ctl({"cmd": "status"}))
        self.assertNotIn("metrics:", run.tpctl("status").stdout)
        self.assertTrue(pid_alive(run.proc.pid))


if __name__ == "__main__":
    unittest.main()
