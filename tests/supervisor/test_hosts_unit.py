"""Hosts in the deployment file, without a socket: what each host runs
(processes_on_host), where a group's shards go, the command line every
process is started with (command_line), and the Python strategy runtime
reading a file with [[hosts]]. The C++ reading of the same keys is held equal
to settings.py's by test_config_agreement.py."""

import os
import sys
import unittest

from svtest import REPO
from svtest import supervisor as sv  # noqa: F401  (puts scripts/ on sys.path)

from tp_supervisor import settings as st

sys.path.insert(0, os.path.join(REPO, "strategy", "python"))
from tp_strategy import config as runtime_config  # noqa: E402


THREE_HOSTS = """
[endpoints]
ticks = "tcp://10.77.0.1:7101"
signals = "tcp://10.77.0.3:7102"
order_events = "tcp://10.77.0.3:7103"
orders = "tcp://10.77.0.3:7104"
dead_letters = "tcp://10.77.0.3:7105"

[[hosts]]
name = "md"
address = "10.77.0.1"
programs = ["gateway"]

[[hosts]]
name = "strat"
address = "10.77.0.2"

[[hosts]]
name = "exec"
address = "10.77.0.3"
programs = ["executor", "dll_gateway", "dead_letter"]
"""

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
