"""The supervisor reads the strategy groups, hosts and [metrics] as the C++ programs do: for each
config below, scripts/tp_supervisor/settings.py and tp::load_config (printed
by config_groups_dump, built from tests/supervisor/config_groups_dump.cpp)
give the same groups, field by field, or the same error text.

TP_CONFIG_GROUPS_DUMP names the helper (ctest sets it); without it the test
is skipped."""

import json
import os
import subprocess
import tempfile
import unittest

from svtest import THREE_HOSTS
from svtest import supervisor as sv

DUMP = os.environ.get("TP_CONFIG_GROUPS_DUMP", "")

GROUPS = """
[strategy]
quantity = 500

[[strategy.groups]]
name = "fast_trend"
kind = "sma_crossover"
instances = 3
instruments = ["USDJPY", "EURUSD"]
max_position = 25000
max_orders_per_second = 2.5
[strategy.groups.params]
fast = 3
slow = 8

[[strategy.groups]]
name = "mine"
kind = "plugin"
plugin = "/opt/strategies/libmine.so"
quantity = 1500.5
[strategy.groups.params]
threshold = 0.1
tiny = 1e-7
big = 1234567.0
huge = 2.5e10
negzero = -0.0
flag = true
label = "x y"
count = -12

[[strategy.groups]]
name = "py2"
kind = "python"
entry = "my_module:MyStrat"
python_path = "examples/python"
instances = 2

[[strategy.groups]]
name = "revert"
kind = "rsi_reversion"

[[strategy.groups]]
name = "resting"
kind = "every_nth"
order_type = "limit"
time_in_force = "gtd"
limit_offset_bps = 2.5
good_till_ms = 30000
cancel_after_ms = 1500
"""

INSTRUMENTS = """
[[instruments]]
symbol = "AAA"
price = 10.0
[[instruments]]
symbol = "BBB"
price = 20.0
[[instruments]]
symbol = "CCC"
price = 30.0
"""


def group(body):
    return "[[strategy.groups]]\n" + body


# (name, config text, --set overrides)
CASES = [
    ("embedded defaults", "", []),
    ("shorthand by --set instances", "", ["strategy.instances=3"]),
    ("shorthand by name in the file", '[strategy]\nname = "every_nth"\n[strategy.every_nth]\nn = 7\n', []),
    ("shorthand by --set name", "", ["strategy.name=breakout", "strategy.breakout.window=20"]),
    ("defaults take the built-ins' tables", "", ["strategy.sma_crossover.fast=3",
                                                  "strategy.rsi_reversion.oversold=12.5",
                                                  "strategy.quantity=250"]),
    ("explicit groups", GROUPS, []),
    ("explicit groups win over the shorthand", GROUPS, ["strategy.instances=5", "strategy.name=every_nth"]),
    ("groups over other instruments", INSTRUMENTS + group('name = "a"\nkind = "breakout"\n'
                                                          'instruments = ["CCC"]\n'), []),
    ("defaults over other instruments", INSTRUMENTS, []),
    # Refusals: the same text, naming the key.
    ("bad name", group('name = "Bad-Name"\nkind = "every_nth"\n'), []),
    ("a program's name", group('name = "executor"\nkind = "every_nth"\n'), []),
    ("no name", group('kind = "every_nth"\n'), []),
    ("name not a string", group('name = 3\nkind = "every_nth"\n'), []),
    ("name too long", group(f'name = "{"a" * 33}"\nkind = "every_nth"\n'), []),
    ("duplicate names", group('name = "a"\nkind = "every_nth"\n') + group('name = "a"\nkind = "breakout"\n'), []),
    ("unknown kind", group('name = "a"\nkind = "magic"\n'), []),
    ("plugin without its .so", group('name = "a"\nkind = "plugin"\n'), []),
    ("a .so on a built-in", group('name = "a"\nkind = "breakout"\nplugin = "/x.so"\n'), []),
    ("python without entry", group('name = "a"\nkind = "python"\n'), []),
    ("entry without colon", group('name = "a"\nkind = "python"\nentry = "nocolon"\n'), []),
    ("entry without module", group('name = "a"\nkind = "python"\nentry = ":C"\n'), []),
    ("entry without class", group('name = "a"\nkind = "python"\nentry = "m:"\n'), []),
    ("python_path on a built-in", group('name = "a"\nkind = "breakout"\npython_path = "x"\n'), []),
    ("zero instances", group('name = "a"\nkind = "every_nth"\ninstances = 0\n'), []),
    ("257 instances", group('name = "a"\nkind = "every_nth"\ninstances = 257\n'), []),
    ("fractional instances", group('name = "a"\nkind = "every_nth"\ninstances = 2.5\n'), []),
    ("huge instances", group('name = "a"\nkind = "every_nth"\ninstances = 3000000000\n'), []),
    ("zero quantity", group('name = "a"\nkind = "every_nth"\nquantity = 0\n'), []),
    ("text quantity", group('name = "a"\nkind = "every_nth"\nquantity = "x"\n'), []),
    ("infinite quantity", group('name = "a"\nkind = "every_nth"\nquantity = inf\n'), []),
    ("unknown instrument", group('name = "a"\nkind = "every_nth"\ninstruments = ["XAUUSD"]\n'), []),
    ("no instruments", group('name = "a"\nkind = "every_nth"\ninstruments = []\n'), []),
    ("repeated instrument", group('name = "a"\nkind = "every_nth"\ninstruments = ["EURUSD", "EURUSD"]\n'), []),
    ("instruments not a list", group('name = "a"\nkind = "every_nth"\ninstruments = "EURUSD"\n'), []),
    ("negative max_position", group('name = "a"\nkind = "every_nth"\nmax_position = -1\n'), []),
    ("negative max_orders_per_second", group('name = "a"\nkind = "every_nth"\n'
                                             'max_orders_per_second = -0.5\n'), []),
    ("text max_orders_per_second", group('name = "a"\nkind = "every_nth"\n'
                                         'max_orders_per_second = "fast"\n'), []),
    ("infinite max_orders_per_second", group('name = "a"\nkind = "every_nth"\n'
                                             'max_orders_per_second = inf\n'), []),
    ("params not a table", group('name = "a"\nkind = "every_nth"\nparams = 3\n'), []),
    ("a param not a scalar", group('name = "a"\nkind = "every_nth"\n[strategy.groups.params]\nx = [1]\n'), []),
    ("unknown key", group('name = "a"\nkind = "every_nth"\ntypo = 1\n'), []),
    ("an empty array", "[strategy]\ngroups = []\n", []),
    ("not an array", '[strategy]\ngroups = "trend"\n', []),
    ("an item not a table", "[strategy]\ngroups = [1]\n", []),
    ("shorthand: unknown name", "", ["strategy.name=foo"]),
    ("shorthand: zero instances", "", ["strategy.instances=0"]),
    ("shorthand: instances not an integer", "", ["strategy.instances=true"]),
    ("slow not above fast", "", ["strategy.sma_crossover.slow=10"]),
    ("rsi levels", "", ["strategy.rsi_reversion.oversold=80"]),
    ("a typo in a built-in's table", "", ["strategy.breakout.windw=3"]),
    ("negative default quantity", "", ["strategy.quantity=-1"]),
    # Order terms: [strategy]'s are every group's default, a group's own win.
    ("order terms for every group", "", ["strategy.order_type=limit", "strategy.time_in_force=gtc",
                                         "strategy.limit_offset_bps=1", "strategy.cancel_after_ms=2000"]),
    ("order terms on the shorthand", "", ["strategy.name=every_nth", "strategy.order_type=limit",
                                          "strategy.good_till_ms=700"]),
    ("a group's order terms over [strategy]'s",
     '[strategy]\norder_type = "limit"\ntime_in_force = "gtd"\ngood_till_ms = 9000\n'
     + group('name = "a"\nkind = "every_nth"\ntime_in_force = "ioc"\n')
     + group('name = "b"\nkind = "breakout"\norder_type = "limit"\nlimit_offset_bps = 0.25\n'), []),
    ("unknown order_type", group('name = "a"\nkind = "every_nth"\norder_type = "foo"\n'), []),
    ("order_type not a string", group('name = "a"\nkind = "every_nth"\norder_type = 1\n'), []),
    ("unknown time_in_force", group('name = "a"\nkind = "every_nth"\norder_type = "limit"\n'
                                    'time_in_force = "day"\n'), []),
    ("a resting market order", group('name = "a"\nkind = "every_nth"\ntime_in_force = "gtc"\n'), []),
    ("a market group under resting defaults", '[strategy]\norder_type = "limit"\ntime_in_force = "gtd"\n'
     + group('name = "a"\nkind = "every_nth"\norder_type = "market"\n'), []),
    ("negative limit_offset_bps", group('name = "a"\nkind = "every_nth"\norder_type = "limit"\n'
                                        'limit_offset_bps = -1\n'), []),
    ("limit_offset_bps of 100%", "", ["strategy.order_type=limit", "strategy.limit_offset_bps=10000"]),
    ("text limit_offset_bps", "", ["strategy.limit_offset_bps=x"]),
    ("negative good_till_ms", group('name = "a"\nkind = "every_nth"\ngood_till_ms = -5\n'), []),
    ("fractional good_till_ms", "", ["strategy.good_till_ms=1.5"]),
    ("negative cancel_after_ms", "", ["strategy.order_type=limit", "strategy.time_in_force=gtc",
                                      "strategy.cancel_after_ms=-1"]),
    ("cancel_after_ms on IOC orders", group('name = "a"\nkind = "every_nth"\norder_type = "limit"\n'
                                            'cancel_after_ms = 100\n'), []),
    # [metrics]: the supervisor's port (the base of every process's) and host.
    ("metrics on", '[metrics]\nport = 9300\nhost = "127.0.0.2"\n', []),
    ("metrics port by --set", "", ["metrics.port=65535"]),
    ("metrics on a public host, allowed", "", ["metrics.host=0.0.0.0", "security.allow_public_bind=true"]),
    ("metrics on a public host", "", ["metrics.host=0.0.0.0"]),
    ("metrics on no host", "", ["metrics.host="]),
    ("metrics port beyond 65535", "", ["metrics.port=65536"]),
    ("negative metrics port", "", ["metrics.port=-1"]),
    ("metrics port as text", "", ['metrics.port="9300"']),
    ("a typo in [metrics]", "", ["metrics.prot=9300"]),
    ("allow_public_bind not a flag", "", ["security.allow_public_bind=1"]),
]

# [[hosts]]: three hosts as config/samples/three_hosts.toml places them, each
# endpoint on the address of the host whose program binds it.


def host(body):
    return "[[hosts]]\n" + body


ONE_HOST = ('[[hosts]]\nname = "solo"\naddress = "127.0.0.1"\n'
            'programs = ["gateway", "executor", "dll_gateway", "dead_letter"]\n')

CASES += [
    ("three hosts, the default groups on the strategy host", THREE_HOSTS, []),
    ("three hosts, the shorthand on the strategy host", THREE_HOSTS, ["strategy.instances=3"]),
    ("groups placed on hosts", THREE_HOSTS + group('name = "a"\nkind = "every_nth"\ninstances = 4\n'
                                                   'hosts = ["strat", "md"]\n')
     + group('name = "b"\nkind = "breakout"\n'), []),
    ("one host runs everything, groups too", ONE_HOST, []),
    ("an IPv6 host", '[endpoints]\nticks = "tcp://[fd00::1]:7101"\n'
     + host('name = "md"\naddress = "fd00::1"\nprograms = ["gateway"]\n')
     + host('name = "rest"\naddress = "127.0.0.1"\nprograms = ["executor", "dll_gateway", "dead_letter"]\n'), []),
    ("control set apart from orders", THREE_HOSTS, ["endpoints.control=tcp://10.77.0.3:7300"]),
    # Refusals.
    ("hosts not an array", 'hosts = "md"\n', []),
    ("hosts empty", "hosts = []\n", []),
    ("a host not a table", "hosts = [1]\n", []),
    ("a host without a name", host('address = "10.0.0.1"\n'), []),
    ("a host name with capitals", host('name = "MD"\naddress = "10.0.0.1"\n'), []),
    ("a host name too long", host(f'name = "{"h" * 33}"\naddress = "10.0.0.1"\n'), []),
    ("duplicate host names", THREE_HOSTS + host('name = "md"\naddress = "10.77.0.9"\n'), []),
    ("a host without an address", host('name = "md"\n'), []),
    ("a wildcard address", host('name = "md"\naddress = "0.0.0.0"\n'), []),
    ("an IPv6 wildcard", host('name = "md"\naddress = "::"\n'), []),
    ("an address with a slash", host('name = "md"\naddress = "10.0.0.1/24"\n'), []),
    ("an address not a string", host('name = "md"\naddress = 10\n'), []),
    ("duplicate addresses", THREE_HOSTS + host('name = "spare"\naddress = "10.77.0.2"\n'), []),
    ("programs not a list", host('name = "md"\naddress = "10.0.0.1"\nprograms = "gateway"\n'), []),
    ("an unknown program", host('name = "md"\naddress = "10.0.0.1"\nprograms = ["feeder"]\n'), []),
    ("strategy as a host's program", host('name = "md"\naddress = "10.0.0.1"\nprograms = ["strategy"]\n'), []),
    ("a program on two hosts", THREE_HOSTS + host('name = "spare"\naddress = "10.77.0.9"\n'
                                                 'programs = ["executor"]\n'), []),
    ("a program on no host", host('name = "md"\naddress = "10.0.0.1"\n'
                                  'programs = ["gateway", "executor", "dll_gateway"]\n'), []),
    ("a typo in a host", host('name = "md"\naddress = "10.0.0.1"\nprogram = ["gateway"]\n'), []),
    ("a group on an unknown host", THREE_HOSTS + group('name = "a"\nkind = "every_nth"\nhosts = ["nowhere"]\n'),
     []),
    ("a group's hosts repeated", THREE_HOSTS + group('name = "a"\nkind = "every_nth"\n'
                                                     'hosts = ["strat", "strat"]\n'), []),
    ("a group's hosts empty", THREE_HOSTS + group('name = "a"\nkind = "every_nth"\nhosts = []\n'), []),
    ("a group's hosts not a list", THREE_HOSTS + group('name = "a"\nkind = "every_nth"\nhosts = "strat"\n'), []),
    ("a group's hosts without [[hosts]]", group('name = "a"\nkind = "every_nth"\nhosts = ["strat"]\n'), []),
    ("the default endpoints on three hosts", THREE_HOSTS.split("[[hosts]]", 1)[0].replace("10.77", "127.0")
     + "[[hosts]]" + THREE_HOSTS.split("[[hosts]]", 1)[1], []),
    ("ticks on the wrong host", THREE_HOSTS, ["endpoints.ticks=tcp://10.77.0.3:7101"]),
    ("signals on loopback", THREE_HOSTS, ["endpoints.signals=tcp://127.0.0.1:7102"]),
    ("dead letters over ipc", THREE_HOSTS, ["endpoints.dead_letters=ipc:///tmp/dl"]),
    ("reports on another host", THREE_HOSTS, ["endpoints.reports=tcp://10.77.0.1:7106"]),
    # [supervisor]'s tcp control for tpctl on other hosts.
    ("tcp control", THREE_HOSTS, ["supervisor.control_port=7300", "supervisor.control_secret=/etc/tp/control.secret"]),
    ("tcp control without a secret", THREE_HOSTS, ["supervisor.control_port=7300"]),
    ("control_port beyond 65535", "", ["supervisor.control_port=65536", "supervisor.control_secret=s"]),
    ("negative control_port", "", ["supervisor.control_port=-1"]),
    ("control_port as text", "", ['supervisor.control_port="7300"']),
    ("control_secret not a string", "", ["supervisor.control_secret=3"]),
    # The executor moved to md, its endpoints with it; control, derived from
    # dll_gateway's orders endpoint, stays behind on exec.
    ("control derived onto the wrong host",
     THREE_HOSTS.replace('programs = ["executor", "dll_gateway", "dead_letter"]', 'programs = ["dll_gateway", "dead_letter"]')
     .replace('programs = ["gateway"]', 'programs = ["gateway", "executor"]'),
     ["endpoints.signals=tcp://10.77.0.1:7102", "endpoints.order_events=tcp://10.77.0.1:7103"]),
]


def python_reading(path, overrides):
    try:
        s = sv.load_settings(path, overrides)
    except sv.ConfigError as e:
        return {"error": str(e)}
    return {"groups": [{"name": g.name, "kind": g.kind, "plugin": g.plugin, "entry": g.entry,
                        "python_path": g.python_path, "instances": g.instances,
                        "quantity": float(g.quantity), "max_position": float(g.max_position),
                        "max_orders_per_second": float(g.max_orders_per_second),
                        "order_type": g.order_type, "time_in_force": g.time_in_force,
                        "limit_offset_bps": float(g.limit_offset_bps), "good_till_ms": g.good_till_ms,
                        "cancel_after_ms": g.cancel_after_ms,
                        "instruments": g.instruments, "hosts": g.hosts, "params": g.params}
                       for g in s.groups],
            "hosts": [{"name": h.name, "address": h.address, "programs": h.programs} for h in s.hosts],
            "metrics": {"host": s.metrics_host, "port": s.metrics_port}}


def cpp_reading(path, overrides):
    cmd = [DUMP, "--config", path]
    for o in overrides:
        cmd += ["--set", o]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{cmd}: rc {r.returncode}: {r.stderr}")
    out = json.loads(r.stdout)
    for g in out.get("groups", []):
        for key in ("quantity", "max_position", "max_orders_per_second", "limit_offset_bps"):
            g[key] = float(g[key])
    return out


@unittest.skipUnless(DUMP and os.access(DUMP, os.X_OK), "TP_CONFIG_GROUPS_DUMP not set (ctest sets it)")
class GroupsAgreeWithCppTest(unittest.TestCase):
    def test_each_config_reads_the_same(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "deploy.toml")
            refusals = 0
            for name, text, overrides in CASES:
                with self.subTest(name):
                    with open(path, "w") as f:
                        f.write(text)
                    cpp = cpp_reading(path, overrides)
                    self.assertEqual(python_reading(path, overrides), cpp)
                    refusals += "error" in cpp
            # The table holds both kinds of case, so neither side can pass by
            # refusing, or by accepting, everything.
            self.assertGreater(refusals, 30)
            self.assertLess(refusals, len(CASES) - 5)

    def test_the_repository_configs_read_the_same(self):
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        paths = [os.path.join(repo, "config", "default.toml")]
        samples = os.path.join(repo, "config", "samples")
        paths += sorted(os.path.join(samples, f) for f in os.listdir(samples) if f.endswith(".toml"))
        for path in paths:
            with self.subTest(path):
                cpp = cpp_reading(path, [])
                self.assertNotIn("error", cpp)
                self.assertEqual(python_reading(path, []), cpp)


if __name__ == "__main__":
    unittest.main()
