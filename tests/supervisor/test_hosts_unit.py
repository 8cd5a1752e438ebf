"""Hosts in the deployment file, without a socket: what each host runs
(processes_on_host), where a group's shards go, the command line every
process is started with (command_line), and the Python strategy runtime
reading a file with [[hosts]]. The C++ reading of the same keys is held equal
to settings.py's by test_config_agreement.py."""

import json
import os
import stat
import sys
import tempfile
import unittest

from svtest import REPO
from svtest import THREE_HOSTS
from svtest import supervisor as sv  # noqa: F401  (puts scripts/ on sys.path)

from tp_supervisor import hostctl, remote, spread
from tp_supervisor import settings as st

sys.path.insert(0, os.path.join(REPO, "strategy", "python"))
from tp_strategy import config as runtime_config  # noqa: E402



GROUPS = """
[[strategy.groups]]
name = "spread"
kind = "every_nth"
instances = 5
hosts = ["strat", "md"]

[[strategy.groups]]
name = "py"
kind = "python"
entry = "m:C"
instances = 2
"""


def names(placements):
    return [p.process for p in placements]


class ProcessesOnHostTest(unittest.TestCase):
    def setUp(self):
        self.s = st.parse_settings(THREE_HOSTS + GROUPS)

    def test_each_host_runs_its_share_in_start_order(self):
        self.assertEqual(names(st.processes_on_host(self.s, "exec")), ["dead_letter", "dll_gateway", "executor"])
        # Instance k of "spread" on hosts[k % 2]: 0, 2, 4 on strat, 1, 3 on md;
        # "py" leaves hosts out: the strategy host (the one running no program).
        self.assertEqual(names(st.processes_on_host(self.s, "strat")),
                         ["spread-0", "spread-2", "spread-4", "py-0", "py-1"])
        self.assertEqual(names(st.processes_on_host(self.s, "md")), ["spread-1", "spread-3", "gateway"])

    def test_every_process_runs_on_exactly_one_host(self):
        everything = names(st.processes_on_host(self.s, None))
        shares = [n for h in self.s.hosts for n in names(st.processes_on_host(self.s, h.name))]
        self.assertEqual(sorted(shares), sorted(everything))
        self.assertEqual(len(everything), 4 + 5 + 2)

    def test_a_shard_knows_its_group_index_and_count(self):
        p = st.processes_on_host(self.s, "md")[1]
        self.assertEqual((p.program, p.process, p.group, p.k, p.n, p.kind),
                         ("strategy", "spread-3", "spread", 3, 5, "every_nth"))
        self.assertEqual(st.processes_on_host(self.s, "strat")[3].kind, "python")

    def test_an_unknown_host_runs_nothing(self):
        self.assertEqual(st.processes_on_host(self.s, "nowhere"), [])

    def test_without_hosts_none_is_the_whole_deployment(self):
        s = st.parse_settings("")
        self.assertEqual(s.hosts, [])
        self.assertEqual([g.hosts for g in s.groups], [[], []])
        self.assertEqual(names(st.processes_on_host(s, None)),
                         ["dead_letter", "dll_gateway", "executor", "trend-0", "trend-1", "revert-0", "gateway"])

    def test_groups_without_hosts_go_to_the_hosts_running_no_program(self):
        s = st.parse_settings(THREE_HOSTS)
        self.assertEqual([g.hosts for g in s.groups], [["strat"], ["strat"]])
        self.assertEqual(st.strategy_hosts(s.hosts), ["strat"])

    def test_when_every_host_runs_a_program_groups_go_everywhere(self):
        hosts = [st.Host("a", "10.0.0.1", ["gateway", "executor"]), st.Host("b", "10.0.0.2", ["dll_gateway"])]
        self.assertEqual(st.strategy_hosts(hosts), ["a", "b"])
        self.assertEqual(st.strategy_hosts([]), [])

    def test_shard_host_wraps_round_the_group_hosts(self):
        g = self.s.find_group("spread")
        self.assertEqual([st.shard_host(g, k) for k in range(5)], ["strat", "md", "strat", "md", "strat"])
        self.assertIsNone(st.shard_host(st.StrategyGroup(name="x", kind="breakout"), 0))

    def test_host_of(self):
        self.assertEqual(st.host_of(self.s.hosts, "executor").name, "exec")
        self.assertIsNone(st.host_of([], "executor"))


class CommandLineTest(unittest.TestCase):
    def test_a_program(self):
        p = st.Placement("executor", "executor")
        self.assertEqual(st.command_line(p, "/opt/tp/bin", "/var/lib/tp", "/etc/tp/deploy.toml",
                                         ["risk.max_position=5", "run.log_level=debug"]),
                         ["/opt/tp/bin/executor", "--config", "/etc/tp/deploy.toml", "--set", "risk.max_position=5",
                          "--set", "run.log_level=debug", "--run-dir", "/var/lib/tp"])

    def test_a_shard_without_a_file(self):
        p = st.Placement("strategy", "trend-1", "trend", 1, 3, "sma_crossover")
        self.assertEqual(st.command_line(p, "/b", "/r"),
                         ["/b/strategy", "--run-dir", "/r", "--group", "trend", "--shard", "1", "--shards", "3"])

    def test_a_python_shard_runs_the_module(self):
        p = st.Placement("strategy", "py-0", "py", 0, 2, "python")
        self.assertEqual(st.command_line(p, "/b", "/r", "/c.toml", python="/usr/bin/python3"),
                         ["/usr/bin/python3", "-m", "tp_strategy", "--config", "/c.toml", "--run-dir", "/r",
                          "--group", "py", "--shard", "0", "--shards", "2"])

    def test_the_supervisor_starts_processes_with_it(self):
        s = st.parse_settings(THREE_HOSTS + GROUPS)
        arb = sv.Arbiter(s, "/r", "/b", "/c.toml", ["x.y=1"])
        for proc in arb.procs:
            placement = next(p for p in st.processes_on_host(s, None) if p.process == proc.name)
            self.assertEqual(arb.command(proc)[:len(st.command_line(placement, "/b", "/r", "/c.toml", ["x.y=1"]))],
                             st.command_line(placement, "/b", "/r", "/c.toml", ["x.y=1"]))


class ChooseHostTest(unittest.TestCase):
    def setUp(self):
        self.s = st.parse_settings(THREE_HOSTS)

    def test_a_host_of_the_file(self):
        self.assertEqual(st.choose_host(self.s, "exec"), "exec")
        self.assertIsNone(st.choose_host(self.s, None, all_hosts=True))

    def test_refusals(self):
        for host, everything, text in (
                (None, False, "places its programs on hosts md, strat, exec: run each host's share there "
                              "with --host NAME, or every process on this machine with --all-hosts"),
                ("mars", False, "--host mars: no such host in the deployment file (hosts: md, strat, exec)"),
                ("md", True, "--host and --all-hosts exclude each other")):
            with self.assertRaises(st.ConfigError) as e:
                st.choose_host(self.s, host, everything)
            self.assertIn(text, str(e.exception))
        with self.assertRaises(st.ConfigError) as e:
            st.choose_host(st.parse_settings(""), "md")
        self.assertIn("--host md: the deployment file has no [[hosts]]", str(e.exception))
        self.assertIsNone(st.choose_host(st.parse_settings(""), None))

    def test_tcp_control_on_the_host_address(self):
        s = st.parse_settings(THREE_HOSTS, ["supervisor.control_port=7300", "supervisor.control_secret=x"])
        self.assertEqual(st.tcp_control(s, "exec"), ("10.77.0.3", 7300))
        self.assertEqual(st.tcp_control(s, None), ("127.0.0.1", 7300))
        self.assertIsNone(st.tcp_control(self.s, "exec"))


class RemoteTest(unittest.TestCase):
    """The sealed request and reply of remote.py, without a socket."""

    SECRET = b"0123456789abcdef-shared"

    def seal_request(self, secret, challenge, req):
        text = json.dumps(req)
        return json.dumps({"request": text,
                                         "mac": remote.mac(secret, "request", challenge, text)}).encode()

    def test_a_request_sealed_with_the_secret_opens(self):
        c = remote.new_challenge()
        self.assertEqual(len(c), 64)
        line = self.seal_request(self.SECRET, c, {"cmd": "status"})
        self.assertEqual(remote.open_request(self.SECRET, c, line), b'{"cmd": "status"}')

    def test_another_secret_another_challenge_or_an_altered_request_is_refused(self):
        c = remote.new_challenge()
        for line in (self.seal_request(b"another secret of some length", c, {"cmd": "status"}),
                     self.seal_request(self.SECRET, remote.new_challenge(), {"cmd": "status"}),
                     self.seal_request(self.SECRET, c, {"cmd": "status"}).replace(b"status", b"shutdown"),
                     b'{"cmd": "status"}', b"not json"):
            with self.assertRaises(remote.AuthFailed):
                remote.open_request(self.SECRET, c, line)

    def test_a_reply_mac_is_not_a_request_mac(self):
        c = remote.new_challenge()
        sealed = json.loads(remote.seal_reply(self.SECRET, c, {"ok": True}))
        self.assertNotEqual(sealed["mac"], remote.mac(self.SECRET, "request", c, sealed["reply"]))
        self.assertEqual(sealed["mac"], remote.mac(self.SECRET, "reply", c, sealed["reply"]))

    def test_the_secret_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "secret")
            with open(path, "w") as f:
                f.write("  " + "s" * 20 + "\n")
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            self.assertEqual(remote.read_secret(path), b"s" * 20)
            os.chmod(path, 0o640)
            with self.assertRaisesRegex(st.ConfigError, "readable by group or others"):
                remote.read_secret(path)
            os.chmod(path, 0o600)
            with open(path, "w") as f:
                f.write("short\n")
            with self.assertRaisesRegex(st.ConfigError, "fewer than 16 characters"):
                remote.read_secret(path)
            with self.assertRaisesRegex(st.ConfigError, "cannot read"):
                remote.read_secret(os.path.join(d, "none"))


class JournalPlanTest(unittest.TestCase):
    """spread.plan: which local journals move, and where, before a host
    starts its share of a scaled group."""

    def test_journals_whose_reader_is_here_stay(self):
        # n = 4 over two hosts: this host runs 0 and 2; journals 0, 2 (own)
        # and 4, 6 (adopted by 0 and 2) are all read here.
        self.assertEqual(spread.plan([0, 2, 4, 6], 4, [0, 2]), ([], []))

    def test_a_journal_whose_adopter_went_elsewhere_is_renamed_for_a_local_one(self):
        # 3 % 3 = 0 runs elsewhere; the local instance 1 adopts 1 + 3 = 4.
        self.assertEqual(spread.plan([1, 3], 3, [1]), ([(3, 4)], []))
        # 4 is taken: the next name that 1 adopts, 7.
        self.assertEqual(spread.plan([1, 3, 4], 3, [1]), ([(3, 7)], []))
        # Several go round the local instances in turn.
        self.assertEqual(spread.plan([5, 7, 9], 4, [0, 2]), ([(5, 4), (7, 6), (9, 8)], []))

    def test_every_renamed_journal_is_adopted_here(self):
        for present, n, local in (([1, 3, 5, 7, 9, 11], 4, [1]), ([0, 2, 4, 6, 8], 5, [1, 3]),
                                  ([3, 6, 9], 2, [1])):
            renames, left = spread.plan(present, n, local)
            self.assertEqual(left, [])
            targets = [t for _, t in renames]
            self.assertEqual(len(set(targets)), len(targets))
            self.assertFalse(set(targets) & set(present))
            for t in targets:
                self.assertGreaterEqual(t, n)
                self.assertIn(t % n, local)

    def test_with_no_local_instance_journals_are_left(self):
        self.assertEqual(spread.plan([1, 3], 2, []), ([], [1, 3]))

    def test_rehome_renames_the_files(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ("g-1.journal", "g-3.journal", "g-3.journal.torn", "gg-3.journal", "g-1.stats.json"):
                with open(os.path.join(d, name), "w") as f:
                    f.write(name)
            self.assertEqual(spread.rehome(d, "g", 3, [1]), ([("g-3.journal", "g-4.journal")], []))
            with open(os.path.join(d, "g-4.journal")) as f:
                self.assertEqual(f.read(), "g-3.journal")
            self.assertEqual(sorted(os.listdir(d)), ["g-1.journal", "g-1.stats.json", "g-3.journal.torn",
                                                     "g-4.journal", "gg-3.journal"])


class HostctlTest(unittest.TestCase):
    def setUp(self):
        self.s = st.parse_settings(THREE_HOSTS + GROUPS, ["supervisor.control_port=7300",
                                                          "supervisor.control_secret=x"])

    def test_commands_go_to_the_hosts_that_run_their_process(self):
        self.assertEqual(hostctl.hosts_for(self.s, "executor"), ["exec"])
        self.assertEqual(hostctl.hosts_for(self.s, "gateway"), ["md"])
        self.assertEqual(hostctl.hosts_for(self.s, "spread"), ["md", "strat"])   # [[hosts]] order
        self.assertEqual(hostctl.hosts_for(self.s, "spread-3"), ["md"])
        self.assertEqual(hostctl.hosts_for(self.s, "spread:4"), ["strat"])
        self.assertEqual(hostctl.hosts_for(self.s, "strategy"), ["md", "strat"])
        self.assertIn("unknown program 'feeder'", hostctl.hosts_for(self.s, "feeder"))

    def test_targets(self):
        self.assertEqual([(t.name, t.address, t.port) for t in hostctl.targets(self.s)],
                         [("md", "10.77.0.1", 7300), ("strat", "10.77.0.2", 7300), ("exec", "10.77.0.3", 7300)])
        self.assertEqual([t.name for t in hostctl.targets(self.s, "exec")], ["exec"])
        with self.assertRaisesRegex(st.ConfigError, "set \\[supervisor\\] control_port"):
            hostctl.targets(st.parse_settings(THREE_HOSTS))

    def test_scale_plan(self):
        self.assertEqual(hostctl.scale_plan(self.s, "spread", 2)[1], ["strat", "md"])
        self.assertIn("N >= 2", hostctl.scale_plan(self.s, "spread", 1))
        self.assertIn("unknown group 'nope'", hostctl.scale_plan(self.s, "nope", 3))
        self.assertIn("name one", hostctl.scale_plan(self.s, None, 3))
        self.assertIn("1..256", hostctl.scale_plan(self.s, "py", 257))

    def test_merged_status_tags_hosts_and_shows_the_silent_one(self):
        answers = {
            "md": {"ok": True, "pid": 1, "run_dir": "/r", "groups": [{"name": "spread", "instances": 2}],
                   "processes": [{"name": "gateway", "state": "RUNNING", "pid": 10, "restarts": 0}]},
            "strat": remote.Unreachable("10.77.0.2:7300: no answer within 3 s"),
            "exec": {"ok": True, "pid": 3, "run_dir": "/r", "trading": {"state": "ACTIVE"},
                     "groups": [{"name": "spread", "instances": 0, "executor": {"fills": 5}}],
                     "processes": [{"name": "executor", "state": "RUNNING", "pid": 30, "restarts": 0}]}}
        m = hostctl.merged_status(self.s, answers)
        self.assertEqual([(p["host"], p["name"], p["state"]) for p in m["processes"]],
                         [("md", "gateway", "RUNNING"), ("strat", "supervisor", "UNREACHABLE"),
                          ("exec", "executor", "RUNNING")])
        self.assertEqual(m["groups"], [{"name": "spread", "instances": 2, "executor": {"fills": 5}}])
        self.assertEqual(m["trading"], {"state": "ACTIVE"})
        self.assertTrue(m["headline"].startswith("hosts: md (supervisor pid 1, run dir /r); strat UNREACHABLE"))
        self.assertEqual(m["stats"], {}, "nobody asked for stats")

    def test_merged_status_carries_every_hosts_stats_by_name(self):
        answers = {
            "md": {"ok": True, "processes": [{"name": "gateway", "state": "RUNNING", "pid": 10}],
                   "stats": {"gateway": {"pid": 10, "ts_ns": 5, "ticks_published": 40}}},
            "strat": remote.Unreachable("10.77.0.2:7300: no answer within 3 s"),
            "exec": {"ok": True, "processes": [{"name": "executor", "state": "RUNNING", "pid": 30}],
                     "stats": {"executor": {"pid": 30, "ts_ns": 6, "fills": 2}}}}
        self.assertEqual(hostctl.merged_status(self.s, answers)["stats"],
                         {"gateway": {"pid": 10, "ts_ns": 5, "ticks_published": 40},
                          "executor": {"pid": 30, "ts_ns": 6, "fills": 2}})


class RuntimeReadsHostsTest(unittest.TestCase):
    """A strategy instance is started with the same file: its reading of
    [[hosts]] and a group's hosts must not refuse it."""

    def test_the_runtime_accepts_group_hosts(self):
        c = runtime_config.parse_config(THREE_HOSTS + GROUPS)
        self.assertEqual([g.hosts for g in c.groups], [["strat", "md"], ["strat"]])

    def test_the_runtime_refuses_an_unknown_host_as_the_supervisor_does(self):
        bad = THREE_HOSTS + GROUPS.replace('["strat", "md"]', '["strat", "mars"]')
        with self.assertRaises(runtime_config.ConfigError) as runtime:
            runtime_config.parse_config(bad)
        with self.assertRaises(st.ConfigError) as supervisor:
            st.parse_settings(bad)
        self.assertEqual(str(runtime.exception), str(supervisor.exception))
        self.assertIn("strategy.groups[0].hosts: mars is not in [[hosts]]", str(supervisor.exception))


if __name__ == "__main__":
    unittest.main()
