"""The supervisor as a package (scripts/tp_supervisor/): the entry points
re-export it, and the pieces split out of the old single file that had no
test of their own: a process's spawn/reap bookkeeping (watcher.Proc), the
report's number formatting, tpctl's uptime column, settings.is_int."""

import importlib.machinery
import importlib.util
import os
import signal
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(REPO, "scripts"))
import supervisor as sv  # noqa: E402
from tp_supervisor import (arbiter, controller, ctl, policy, report, settings,  # noqa: E402
                           sharding, states, watcher)


class FakePopen:
    def __init__(self, pid):
        self.pid = pid
        self.rc = None

    def poll(self):
        return self.rc


class EntryPointsTest(unittest.TestCase):
    def test_supervisor_re_exports_the_package(self):
        self.assertIs(sv.Supervisor, arbiter.Arbiter)
        self.assertEqual(sv.main.__module__, "tp_supervisor.cli")
        for name, mod in [("Settings", settings), ("parse_settings", settings), ("ConfigError", settings),
                          ("fnv1a64", sharding), ("instruments_for_shard", sharding),
                          ("RestartPolicy", policy), ("Heartbeat", policy), ("Proc", watcher),
                          ("exit_reason", watcher), ("Client", controller), ("HUNG", states),
                          ("PROGRAMS", states)]:
            self.assertIs(getattr(sv, name), getattr(mod, name), name)

    def test_tpctl_re_exports_ctl(self):
        loader = importlib.machinery.SourceFileLoader("tpctl", os.path.join(REPO, "scripts", "tpctl"))
        spec = importlib.util.spec_from_loader("tpctl", loader)
        tpctl = importlib.util.module_from_spec(spec)
        loader.exec_module(tpctl)
        self.assertIs(tpctl.main, ctl.main)
        self.assertIs(tpctl.format_status, ctl.format_status)

    def test_one_copy_of_fnv(self):
        # The only Python FNV-1a is sharding.py's (the C++ one is checked
        # against it by test_sharding_cpp).
        hits = []
        for root, _, files in os.walk(os.path.join(REPO, "scripts")):
            for f in files:
                path = os.path.join(root, f)
                if f.endswith(".py") or f in ("tpctl",):
                    with open(path, errors="replace") as fh:
                        if "1099511628211" in fh.read():
                            hits.append(os.path.relpath(path, REPO))
        self.assertEqual(hits, [os.path.join("scripts", "tp_supervisor", "sharding.py")])


class ProcBookkeepingTest(unittest.TestCase):
    def proc(self):
        return watcher.Proc("executor", policy.RestartPolicy(100, 1000, 3000, 30, 5), hang_timeout_s=5.0)

    def test_started_counts_restarts_from_the_second_spawn(self):
        p = self.proc()
        self.assertEqual((p.state, p.alive, p.pid), (states.STOPPED, False, None))
        p.started(FakePopen(10), 1.0)
        self.assertEqual((p.state, p.pid, p.started_at, p.restarts, p.spawns), (states.STARTING, 10, 1.0, 0, 1))
        self.assertTrue(p.alive)
        self.assertEqual((p.hb.pid, p.hb.beats), (10, 0))
        p.popen.rc = 1
        self.assertEqual(p.poll(3.5), 2.5)
        p.started(FakePopen(11), 4.0)
        self.assertEqual((p.pid, p.restarts, p.spawns), (11, 1, 2))

    def test_poll_reaps_once_with_the_exit_reason(self):
        p = self.proc()
        self.assertIsNone(p.poll(0.0))            # nothing runs
        p.started(FakePopen(10), 0.0)
        self.assertIsNone(p.poll(1.0))            # still running
        p.popen.rc = -signal.SIGTERM
        self.assertEqual(p.poll(2.0), 2.0)
        self.assertEqual((p.alive, p.last_exit), (False, "killed by SIGTERM"))
        self.assertIsNone(p.poll(3.0))            # already reaped

    def test_a_hung_kill_counts_uptime_to_the_last_heartbeat(self):
        p = self.proc()
        p.started(FakePopen(10), 0.0)
        p.hb.saw(1.0, 10, 1)
        p.hb.saw(2.0, 10, 2)
        p.hung_killed = True
        p.popen.rc = -signal.SIGKILL
        self.assertEqual(p.poll(9.0), 2.0)
        self.assertEqual((p.last_exit, p.hung_killed), ("killed by SIGKILL (hung)", False))

    def test_to_json_of_an_instance(self):
        p = watcher.Proc("strategy", policy.RestartPolicy(100, 1000, 3000, 30, 5), index=1, shards=2)
        d = p.to_json(0.0, sv.DEFAULT_INSTRUMENTS)
        self.assertEqual((d["name"], d["group"], d["shard"], d["shards"], d["instruments"], d["pid"]),
                         ("strategy-1", "strategy", 1, 2, ["EURUSD", "AUDUSD"], None))
        self.assertEqual(p.file_name, "strategy-1")

    def test_to_json_of_a_group_instance_shards_its_group_instruments(self):
        p = watcher.Proc("strategy", policy.RestartPolicy(100, 1000, 3000, 30, 5), index=0, shards=2,
                         group="trend", kind="sma_crossover", instruments=["EURUSD", "GBPUSD", "AUDUSD"])
        d = p.to_json(0.0)
        self.assertEqual((d["name"], d["program"], d["group"], d["kind"], d["instruments"]),
                         ("trend-0", "strategy", "trend", "sma_crossover", ["GBPUSD"]))
        self.assertEqual(p.file_name, "trend-0")
        self.assertNotIn("group", watcher.Proc("executor", policy.RestartPolicy(1, 1, 1, 1, 1)).to_json(0.0))


class SmallPiecesTest(unittest.TestCase):
    def test_report_fmt(self):
        self.assertEqual(report._fmt(None), "n/a")
        self.assertEqual(report._fmt(True), "n/a")
        self.assertEqual(report._fmt("3"), "n/a")
        self.assertEqual(report._fmt(3), "3")
        self.assertEqual(report._fmt(3.0), "3")
        self.assertEqual(report._fmt(2.5), "2.5")
        self.assertEqual(report._fmt(2.5, 0), "2")
        self.assertEqual(report._fmt(1.23456, 2), "1.23")

    def test_tpctl_uptime(self):
        self.assertEqual(ctl._uptime(None), "-")
        self.assertEqual(ctl._uptime(5.25), "5.2s")
        self.assertEqual(ctl._uptime(125), "2m05s")
        self.assertEqual(ctl._uptime(3 * 3600 + 7 * 60 + 9), "3h07m")

    def test_is_int(self):
        self.assertTrue(settings.is_int(0))
        self.assertFalse(settings.is_int(True))
        self.assertFalse(settings.is_int(1.0))


if __name__ == "__main__":
    unittest.main()
