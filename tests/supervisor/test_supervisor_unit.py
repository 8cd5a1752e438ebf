"""Pure-logic tests of scripts/supervisor.py: no processes are started."""

import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import unittest

from svtest import REPO, supervisor as sv


class BackoffTest(unittest.TestCase):
    def policy(self, **kw):
        args = dict(backoff_min_ms=250, backoff_max_ms=8000, healthy_after_ms=5000,
                    flap_window_s=30, flap_max_restarts=5)
        args.update(kw)
        return sv.RestartPolicy(**args)

    def test_delay_starts_at_min_doubles_and_caps(self):
        p = self.policy()
        self.assertEqual([p.delay(n) for n in range(1, 9)],
                         [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0])

    def test_consecutive_crashes_double_the_delay(self):
        p = self.policy(flap_max_restarts=100)
        delays = [p.on_crash(now=t * 20.0, uptime=0.1) for t in range(7)]
        self.assertEqual(delays, [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0])

    def test_healthy_run_resets_the_backoff(self):
        p = self.policy(flap_max_restarts=100)
        for t in range(4):
            p.on_crash(now=t * 20.0, uptime=1.0)
        self.assertEqual(p.on_crash(now=100.0, uptime=4.9), 4.0)   # 5th: 4 s, not healthy yet
        self.assertEqual(p.on_crash(now=200.0, uptime=5.0), 0.25)      # ran 5 s: back to min
        self.assertEqual(p.on_crash(now=201.0, uptime=0.1), 0.5)

    def test_more_than_max_restarts_in_window_is_fatal(self):
        p = self.policy(flap_max_restarts=5, flap_window_s=30)
        for t in range(5):
            self.assertIsNotNone(p.on_crash(now=float(t), uptime=0.1), f"restart {t + 1}")
        self.assertIsNone(p.on_crash(now=5.0, uptime=0.1))  # a 6th restart within 30 s

    def test_restarts_spread_beyond_the_window_are_not_flapping(self):
        p = self.policy(flap_max_restarts=3, flap_window_s=10)
        for t in range(20):  # one crash every 4 s: at most 3 in any 10 s window
            self.assertIsNotNone(p.on_crash(now=t * 4.0, uptime=0.1), f"crash at {t * 4} s")

    def test_window_forgets_old_restarts(self):
        p = self.policy(flap_max_restarts=2, flap_window_s=10)
        p.on_crash(now=0.0, uptime=0.1)
        p.on_crash(now=1.0, uptime=0.1)
        self.assertIsNone(p.on_crash(now=2.0, uptime=0.1))
        q = self.policy(flap_max_restarts=2, flap_window_s=10)
        q.on_crash(now=0.0, uptime=0.1)
        q.on_crash(now=1.0, uptime=0.1)
        self.assertIsNotNone(q.on_crash(now=10.5, uptime=0.1))  # the crash at 0 s has aged out

    def test_reset_forgets_history(self):
        p = self.policy(flap_max_restarts=1)
        p.on_crash(now=0.0, uptime=0.1)
        p.reset()
        self.assertEqual(p.on_crash(now=0.5, uptime=0.1), 0.25)

    def test_exit_reason(self):
        self.assertEqual(sv.exit_reason(3), "exit code 3")
        self.assertEqual(sv.exit_reason(0), "exit code 0")
        self.assertEqual(sv.exit_reason(-9), "killed by SIGKILL")
        self.assertEqual(sv.exit_reason(-15), "killed by SIGTERM")


class ConfigTest(unittest.TestCase):
    def test_defaults(self):
        s = sv.parse_settings("")
        self.assertEqual((s.run_dir, s.instances, s.bin_dir, s.control), ("run", 2, "", ""))
        self.assertEqual((s.backoff_min_ms, s.backoff_max_ms, s.flap_window_s, s.flap_max_restarts,
                          s.stop_grace_ms, s.healthy_after_ms), (250, 8000, 30, 5, 3000, 5000))
        self.assertEqual(s.instruments, ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"])
        self.assertEqual(sv.control_path(s, "/r"), "/r/supervisor.sock")
        self.assertEqual((s.hang_timeout_ms, s.restart_hung, s.stats_interval_ms), (5000, False, 1000))

    def test_repo_default_toml_equals_the_defaults(self):
        with open(os.path.join(REPO, "config", "default.toml")) as f:
            self.assertEqual(sv.parse_settings(f.read()), sv.Settings())

    def test_file_values_then_overrides(self):
        text = ('[run]\ndir = "/tmp/x"\n[strategy]\ninstances = 3\n'
                '[supervisor]\nbackoff_min_ms = 100\ncontrol = "/tmp/x.sock"\n'
                '[[instruments]]\nsymbol = "AAA"\n[[instruments]]\nsymbol = "BBB"\n')
        s = sv.parse_settings(text, ["supervisor.backoff_min_ms=50", "strategy.instances=4",
                                     "supervisor.bin_dir=/opt/bin"])
        self.assertEqual((s.run_dir, s.instances, s.backoff_min_ms, s.control, s.bin_dir),
                         ("/tmp/x", 4, 50, "/tmp/x.sock", "/opt/bin"))
        self.assertEqual(s.instruments, ["AAA", "BBB"])
        self.assertEqual(sv.control_path(s, "/elsewhere"), "/tmp/x.sock")

    def test_override_values_are_toml_or_bare_strings(self):
        root = {}
        sv.apply_override(root, "a.b.c=12")
        sv.apply_override(root, 'a.s="quoted"')
        sv.apply_override(root, "a.bare=ipc:///tmp/x")
        self.assertEqual(root, {"a": {"b": {"c": 12}, "s": "quoted", "bare": "ipc:///tmp/x"}})

    def test_errors_name_the_key(self):
        cases = [
            ("[supervisor]\nbackoff_min_ms = 0\n", [], "supervisor.backoff_min_ms"),
            ("[supervisor]\nbackoff_min_ms = 'x'\n", [], "supervisor.backoff_min_ms"),
            ("", ["supervisor.backoff_max_ms=100"], "backoff_max_ms"),
            ("[supervisor]\nbackof_min_ms = 1\n", [], "supervisor.backof_min_ms"),
            ("", ["strategy.instances=0"], "strategy.instances"),
            ("", ["strategy.instances=true"], "strategy.instances"),
            ("", ["novalue"], "novalue"),
            ("[run\n", [], "<string>"),
            ("", ["supervisor.restart_hung=1"], "supervisor.restart_hung"),
            ("", ["supervisor.restart_hung=yes"], "supervisor.restart_hung"),
            ("", ["supervisor.hang_timeout_ms=-1"], "supervisor.hang_timeout_ms"),
            ("", ["supervisor.hang_timeout_ms=true"], "supervisor.hang_timeout_ms"),
            ("", ["supervisor.hang_timeout_ms=1999"], "supervisor.hang_timeout_ms"),
            ("[run]\nstats_interval_ms = 3000\n", [], "supervisor.hang_timeout_ms"),
            ("[run]\nstats_interval_ms = 0\n", [], "run.stats_interval_ms"),
        ]
        for text, overrides, key in cases:
            with self.subTest(text=text, overrides=overrides):
                with self.assertRaises(sv.ConfigError) as cm:
                    sv.parse_settings(text, overrides)
                self.assertIn(key, str(cm.exception))

    def test_hang_settings(self):
        s = sv.parse_settings("[run]\nstats_interval_ms = 100\n",
                              ["supervisor.hang_timeout_ms=200", "supervisor.restart_hung=true"])
        self.assertEqual((s.stats_interval_ms, s.hang_timeout_ms, s.restart_hung), (100, 200, True))
        # 0 turns the watch off, whatever the heartbeat period.
        s = sv.parse_settings("[run]\nstats_interval_ms = 60000\n[supervisor]\nhang_timeout_ms = 0\n")
        self.assertEqual(s.hang_timeout_ms, 0)

    def test_load_settings_missing_file(self):
        with self.assertRaises(sv.ConfigError) as cm:
            sv.load_settings("/nonexistent/x.toml")
        self.assertIn("/nonexistent/x.toml", str(cm.exception))


class GroupsConfigTest(unittest.TestCase):
    """The strategy groups as tests/common/test_common.cpp's ConfigGroups
    expects the C++ to read them (the same configs, the same values);
    test_config_agreement.py compares the two readings directly."""

    def test_default_deployment_runs_two_strategies(self):
        g = sv.parse_settings("").groups
        self.assertEqual([(x.name, x.kind, x.instances) for x in g],
                         [("trend", "sma_crossover", 2), ("revert", "rsi_reversion", 1)])
        self.assertEqual(g[0].params, {"fast": "10", "slow": "30"})
        self.assertEqual(g[1].params, {"period": "14", "oversold": "30", "overbought": "70"})
        self.assertEqual(g[1].instruments, sv.DEFAULT_INSTRUMENTS)
        # trend trades market orders; revert's rest (the demo shows them
        # resting, filled later and cancelled), whatever [strategy] says.
        terms = ("order_type", "time_in_force", "limit_offset_bps", "good_till_ms", "cancel_after_ms")
        self.assertEqual([getattr(g[0], k) for k in terms], ["market", "ioc", 0.0, 0, 0])
        self.assertEqual([getattr(g[1], k) for k in terms], ["limit", "gtc", 1.0, 0, 1000])
        g = sv.parse_settings('[strategy]\norder_type = "limit"\ntime_in_force = "gtc"\ncancel_after_ms = 5\n').groups
        self.assertEqual((g[0].cancel_after_ms, g[1].cancel_after_ms), (5, 1000))

    def test_name_or_instances_is_the_one_group_shorthand(self):
        g = sv.parse_settings('[strategy]\nname = "every_nth"\n', ["strategy.every_nth.n=7"]).groups
        self.assertEqual([(x.name, x.kind, x.instances, x.params) for x in g],
                         [("strategy", "every_nth", 2, {"n": "7"})])
        g = sv.parse_settings("", ["strategy.instances=3"]).groups
        self.assertEqual([(x.name, x.kind, x.instances) for x in g], [("strategy", "sma_crossover", 3)])

    def test_groups_read_with_their_own_params_and_instruments(self):
        s = sv.parse_settings('''
            [strategy]
            quantity = 500
            instances = 4   # the shorthand gives way to explicit groups
            [[strategy.groups]]
            name = "mine"
            kind = "plugin"
            plugin = "/opt/x/libmine.so"
            instruments = ["USDJPY", "EURUSD"]
            max_position = 3000
            [strategy.groups.params]
            lookback = 20
            threshold = 0.5
            [[strategy.groups]]
            name = "py"
            kind = "python"
            entry = "my_module:MyStrat"
            python_path = "strategies"
            instances = 3
            quantity = 10
        ''')
        self.assertEqual([g.name for g in s.groups], ["mine", "py"])
        mine, py = s.find_group("mine"), s.find_group("py")
        self.assertEqual((mine.plugin, mine.instruments, mine.quantity, mine.max_position, mine.params),
                         ("/opt/x/libmine.so", ["USDJPY", "EURUSD"], 500, 3000,
                          {"lookback": "20", "threshold": "0.5"}))
        self.assertEqual((py.entry, py.python_path, py.instances, py.quantity, len(py.instruments)),
                         ("my_module:MyStrat", "strategies", 3, 10, 4))
        self.assertIsNone(s.find_group("nope"))

    def test_bad_groups_are_refused_naming_the_key(self):
        def error(text):
            with self.assertRaises(sv.ConfigError) as cm:
                sv.parse_settings(text)
            return str(cm.exception)
        group = "[[strategy.groups]]\n"
        for body, key in [('name = "Bad-Name"\nkind = "every_nth"\n', "strategy.groups[0].name"),
                          ('name = "executor"\nkind = "every_nth"\n', "strategy.groups[0].name"),
                          ('name = "a"\nkind = "magic"\n', "strategy.groups[0].kind"),
                          ('name = "a"\nkind = "plugin"\n', "strategy.groups[0].plugin"),
                          ('name = "a"\nkind = "python"\nentry = "nocolon"\n', "strategy.groups[0].entry"),
                          ('name = "a"\nkind = "every_nth"\ninstruments = ["XAUUSD"]\n', "XAUUSD"),
                          ('name = "a"\nkind = "every_nth"\ninstances = 0\n', "strategy.groups[0].instances"),
                          ('name = "a"\nkind = "every_nth"\ntypo = 1\n', "strategy.groups[0].typo"),
                          ('name = "a"\nkind = "every_nth"\n' + group + 'name = "a"\nkind = "breakout"\n',
                           "strategy.groups[1].name")]:
            with self.subTest(body=body):
                self.assertIn(key, error(group + body))


class ShardingTest(unittest.TestCase):
    # FNV-1a 64: offset basis 14695981039346656037, prime 1099511628211.
    # "" is the basis itself; "a" = (basis ^ 0x61) * prime mod 2^64 = 0xaf63dc4c8601ec8c
    # (the published FNV test vector); the EURUSD.. values were printed by a
    # program built against common/include/common/sharding.hpp.
    VECTORS = {
        "": 14695981039346656037,
        "a": 0xAF63DC4C8601EC8C,
        "EURUSD": 15795081777224482817,
        "GBPUSD": 12254845443808898668,
        "USDJPY": 9455113175274748660,
        "AUDUSD": 11843887684666269055,
    }

    def test_fnv1a64_vectors(self):
        for text, h in self.VECTORS.items():
            self.assertEqual(sv.fnv1a64(text), h, text)

    def test_shard_of_matches_cpp(self):
        # tp::shard_of(sym, 2), (sym, 3), (sym, 4) from the same C++ program.
        expected = {"EURUSD": (1, 2, 1), "GBPUSD": (0, 1, 0), "USDJPY": (0, 1, 0), "AUDUSD": (1, 1, 3)}
        for sym, shards in expected.items():
            self.assertEqual(tuple(sv.shard_of(sym, n) for n in (2, 3, 4)), shards, sym)
        self.assertEqual(sv.shard_of("EURUSD", 0), 0)

    def test_every_instrument_is_traded_by_exactly_one_instance(self):
        syms = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "XAUUSD", "US500", "BTCUSD"]
        for n in range(1, 9):
            shards = [sv.instruments_for_shard(syms, k, n) for k in range(n)]
            self.assertEqual(sorted(s for part in shards for s in part), sorted(syms), n)
        self.assertEqual(sv.instruments_for_shard(sv.DEFAULT_INSTRUMENTS, 0, 2), ["GBPUSD", "USDJPY"])
        self.assertEqual(sv.instruments_for_shard(sv.DEFAULT_INSTRUMENTS, 1, 2), ["EURUSD", "AUDUSD"])


class SupervisorLogicTest(unittest.TestCase):
    def make(self, run_dir, **kw):
        s = sv.Settings(**kw)
        return sv.Supervisor(s, run_dir, "/bin-dir", "/cfg.toml", ["gateway.rate=5"],
                             out=io.StringIO(), err=io.StringIO())

    def shorthand(self, run_dir, n=2, **kw):
        """A supervisor of the one-group shorthand (strategy.instances = n)."""
        return self.make(run_dir, groups=sv.parse_settings("", [f"strategy.instances={n}"]).groups, **kw)

    def test_start_order_and_commands(self):
        sup = self.shorthand("/r", 3)
        self.assertEqual([p.name for p in sup.procs],
                         ["dead_letter", "dll_gateway", "executor",
                          "strategy-0", "strategy-1", "strategy-2", "gateway"])
        self.assertEqual(sup.command(sup.procs[4]),
                         ["/bin-dir/strategy", "--config", "/cfg.toml", "--set", "gateway.rate=5",
                          "--run-dir", "/r", "--group", "strategy", "--shard", "1", "--shards", "3"])
        self.assertEqual(sup.command(sup.procs[0]),
                         ["/bin-dir/dead_letter", "--config", "/cfg.toml", "--set", "gateway.rate=5",
                          "--run-dir", "/r"])
        self.assertIsNone(sup.environment(sup.procs[4]))

    def test_resolve(self):
        sup = self.shorthand("/r")
        self.assertEqual([p.name for p in sup.resolve("strategy")], ["strategy-0", "strategy-1"])
        self.assertEqual([p.name for p in sup.resolve("strategy:1")], ["strategy-1"])
        self.assertEqual([p.name for p in sup.resolve("strategy-1")], ["strategy-1"])
        self.assertEqual([p.name for p in sup.resolve("executor")], ["executor"])
        self.assertIn("unknown program 'foo'", sup.resolve("foo"))
        self.assertIn("no instance strategy:2", sup.resolve("strategy:2"))
        self.assertIsInstance(sup.resolve(None), str)

    def test_reports_survive_missing_stats(self):
        with tempfile.TemporaryDirectory() as d:
            sup = self.make(d)
            line = sup.status_line(3.0)
            self.assertIn("ticks n/a", line)
            self.assertIn("fills n/a", line)
            summary = sup.summary()
            self.assertIn("ticks published:  n/a", summary)
            self.assertIn("p50 n/a us", summary)

    def test_reports_read_the_stats_files(self):
        with tempfile.TemporaryDirectory() as d:
            def put(name, data):
                with open(os.path.join(d, name + ".stats.json"), "w") as f:
                    json.dump(data, f)
            put("gateway", {"ticks_published": 1234, "ticks_per_s": 999.6})
            put("trend-0", {"signals_emitted": 7})
            put("trend-1", {"signals_emitted": 5})
            put("executor", {"orders_sent": 11, "fills": 10, "partial_fills": 1, "broker_rejects": 0,
                             "positions": {"EURUSD": {"position": 2000, "avg_price": 1.08512,
                                                      "realized_pnl": -1.5, "last_price": 1.0851},
                                           "GBPUSD": {"position": 0, "avg_price": 0,
                                                      "realized_pnl": 3.25, "last_price": 1.26}},
                             "latency_tick_to_fill_us": {"p50": 120, "p99": 450, "p999": 900, "count": 10}})
            put("dead_letter", {"dead_letters": 2, "by_reason": {"malformed": 1, "expired": 1}})
            with open(os.path.join(d, "broken.stats.json"), "w") as f:
                f.write("{not json")
            sup = self.make(d)
            line = sup.status_line(1.0)
            for part in ("ticks/s 1000", "ticks 1234", "signals 12", "orders 11", "fills 10",
                         "open positions 1", "dead letters 2"):
                self.assertIn(part, line)
            summary = sup.summary()
            for part in ("ticks published:  1234", "signals emitted:  12", "orders sent:      11",
                         "fills:            10", "EURUSD", "-1.50", "3.25",
                         "expired 1, malformed 1", "p50 120 us, p99 450 us"):
                self.assertIn(part, summary)
            self.assertIsNone(sv.read_stats(d, "broken"))



class GroupsSupervisorTest(unittest.TestCase):
    """Several strategy groups in one supervisor (no process started)."""

    CONFIG = '''
        [[strategy.groups]]
        name = "trend"
        kind = "sma_crossover"
        instances = 2
        instruments = ["EURUSD", "GBPUSD", "USDJPY"]
        [[strategy.groups]]
        name = "py"
        kind = "python"
        entry = "mine:Strat"
        python_path = "/opt/strategies"
        [[strategy.groups]]
        name = "ext"
        kind = "plugin"
        plugin = "/opt/libext.so"
        instances = 3
    '''

    def make(self, run_dir="/r", text=CONFIG):
        return sv.Supervisor(sv.parse_settings(text), run_dir, "/bin-dir", "/cfg.toml", [],
                             out=io.StringIO(), err=io.StringIO(), python_dir="/repo/strategy/python")

    def test_each_group_runs_its_instances_in_config_order(self):
        sup = self.make()
        self.assertEqual([p.name for p in sup.procs],
                         ["dead_letter", "dll_gateway", "executor", "trend-0", "trend-1", "py-0",
                          "ext-0", "ext-1", "ext-2", "gateway"])
        self.assertEqual([p.file_name for p in sup.instances("ext")], ["ext-0", "ext-1", "ext-2"])
        st = {p["name"]: p for p in sup.status()["processes"]}
        # A shard of its own group's instruments.
        self.assertEqual(st["trend-1"]["instruments"], sv.instruments_for_shard(["EURUSD", "GBPUSD", "USDJPY"], 1, 2))
        self.assertEqual((st["py-0"]["group"], st["py-0"]["kind"], st["py-0"]["instruments"]),
                         ("py", "python", sv.DEFAULT_INSTRUMENTS))

    def test_the_default_deployment_is_trend_and_revert(self):
        sup = self.make(text="")
        self.assertEqual([p.name for p in sup.instances()], ["trend-0", "trend-1", "revert-0"])

    def test_commands_per_kind(self):
        sup = self.make()
        trend1, py0, ext2 = (sup.resolve(n)[0] for n in ("trend-1", "py-0", "ext-2"))
        common = ["--config", "/cfg.toml", "--run-dir", "/r"]
        self.assertEqual(sup.command(trend1),
                         ["/bin-dir/strategy", *common, "--group", "trend", "--shard", "1", "--shards", "2"])
        self.assertEqual(sup.command(ext2),
                         ["/bin-dir/strategy", *common, "--group", "ext", "--shard", "2", "--shards", "3"])
        self.assertEqual(sup.command(py0),
                         [sys.executable, "-m", "tp_strategy", *common, "--group", "py", "--shard", "0",
                          "--shards", "1"])
        env = sup.environment(py0)
        self.assertEqual(env["PYTHONPATH"].split(os.pathsep)[:2], ["/opt/strategies", "/repo/strategy/python"])
        self.assertIsNone(sup.environment(trend1))

    def test_resolve_groups_and_instances(self):
        sup = self.make()
        names = lambda x: [p.name for p in x] if isinstance(x, list) else x  # noqa: E731
        self.assertEqual(names(sup.resolve("trend")), ["trend-0", "trend-1"])
        self.assertEqual(names(sup.resolve("ext:2")), ["ext-2"])
        self.assertEqual(names(sup.resolve("ext-2")), ["ext-2"])
        self.assertEqual(names(sup.resolve("strategy")), ["trend-0", "trend-1", "py-0", "ext-0", "ext-1", "ext-2"])
        self.assertIn("no instance trend:2 (trend runs 2 instances: trend-0..trend-1)", sup.resolve("trend:2"))
        self.assertIn("no instance py-1", sup.resolve("py-1"))
        err = sup.resolve("strategy:0")
        self.assertIn("unknown program 'strategy:0'", err)
        self.assertIn("trend, py, ext", err)

    def test_scale_names_a_group_unless_there_is_only_one(self):
        sup = self.make()
        self.assertEqual(sup.controller.scale_group("py"), "py")
        self.assertIn("3 strategy groups (trend, py, ext): name one", sup.controller.scale_group(None))
        self.assertIn("3 strategy groups", sup.controller.scale_group("strategy"))
        self.assertIn("unknown group 'nope'", sup.controller.scale_group("nope"))
        self.assertIn("must be a string", sup.controller.scale_group(["trend"]))  # JSON of any shape
        one = self.make(text="[[strategy.groups]]\nname = \"solo\"\nkind = \"breakout\"\n")
        self.assertEqual(one.controller.scale_group(None), "solo")
        self.assertEqual(one.controller.scale_group("strategy"), "solo")  # `scale strategy N` as before groups

    def test_scaling_one_group_leaves_the_others_alone(self):
        sup = self.make()
        others = [p for p in sup.procs if p.group != "trend"]
        op = sup.op_scale("trend", 3)
        with self.assertRaises(StopIteration) as done:   # nothing runs: nothing to wait for
            next(op)
        self.assertEqual(done.exception.value["message"], "trend scaled 2 -> 3")
        self.assertEqual([p.name for p in sup.procs],
                         ["dead_letter", "dll_gateway", "executor", "trend-0", "trend-1", "trend-2", "py-0",
                          "ext-0", "ext-1", "ext-2", "gateway"])
        self.assertEqual([p.shards for p in sup.instances("trend")], [3, 3, 3])
        self.assertEqual([p.shards for p in sup.instances("ext")], [3, 3, 3])
        self.assertTrue(all(p in sup.procs for p in others))
        self.assertEqual(sup.groups["trend"].instances, 3)

    def executor_stats(self, d):
        with open(os.path.join(d, "executor.stats.json"), "w") as f:
            json.dump({"fills": 5, "positions": {"EURUSD": {"position": 1000, "realized_pnl": 2.0}},
                       "groups": {"trend": {"positions": {"EURUSD": 2000, "GBPUSD": -1000},
                                            "realized_pnl": {"EURUSD": 1.25, "GBPUSD": -0.5},
                                            "signals": 7, "rejected": 2, "fills": 4},
                                  "old": {"positions": {"USDJPY": 0}, "realized_pnl": {"USDJPY": 3.0},
                                          "signals": 1, "fills": 1}}}, f)
        for name, data in (("trend-0", {"signals_emitted": 4, "signals_acked": 4}),
                           ("trend-1", {"signals_emitted": 3, "signals_acked": 2}),
                           ("trend-5", {"signals_emitted": 1, "signals_acked": 1}),   # departed
                           ("py-0", {"signals_emitted": 2, "signals_acked": 2})):
            with open(os.path.join(d, name + ".stats.json"), "w") as f:
                json.dump(data, f)

    def test_status_and_tpctl_show_each_group_with_the_executors_figures(self):
        with tempfile.TemporaryDirectory() as d:
            self.executor_stats(d)
            sup = self.make(d)
            reply = sup.status()
            groups = {g["name"]: g for g in reply["groups"]}
            self.assertEqual(list(groups), ["trend", "py", "ext", "old"])
            self.assertEqual(groups["trend"]["executor"]["positions"], {"EURUSD": 2000, "GBPUSD": -1000})
            self.assertNotIn("executor", groups["py"])
            self.assertEqual((groups["old"]["kind"], groups["old"]["instances"]), (None, 0))
            text = sv_ctl_format(reply)
            lines = text.splitlines()
            self.assertIn("strategy groups: trend x2, py x1, ext x3", lines[0])
            head = lines.index(next(l for l in lines if l.startswith("group trend")))
            self.assertEqual(lines[head], "group trend (sma_crossover, 2 instances): signals 7, rejected 2, fills 4")
            self.assertEqual(lines[head + 1],
                             "  positions: EURUSD 2000 (PnL 1.25), GBPUSD -1000 (PnL -0.50)")
            self.assertRegex(lines[head + 2], r"^trend-0\s+STOPPED")
            self.assertRegex(lines[head + 3], r"^trend-1\s+STOPPED")
            self.assertIn("group py (python, 1 instance)", text)
            self.assertIn("group old (not in this deployment, 0 instances): signals 1, fills 1", text)
            # The programs come first, under the header.
            self.assertEqual([l.split()[0] for l in lines[2:6]], ["dead_letter", "dll_gateway", "executor", "gateway"])

    def test_a_python_only_deployment_needs_no_strategy_binary(self):
        with tempfile.TemporaryDirectory() as d:
            for program in ("dead_letter", "dll_gateway", "executor", "gateway"):
                path = os.path.join(d, program)
                with open(path, "w") as f:
                    f.write("#!/bin/sh\n")
                os.chmod(path, 0o755)
            py_only = ("[[strategy.groups]]\nname = \"py\"\nkind = \"python\"\nentry = \"m:C\"\n")
            sup = sv.Supervisor(sv.parse_settings(py_only), "/r", d, out=io.StringIO(), err=io.StringIO())
            self.assertEqual(sup.missing_programs(), [])
            sup = sv.Supervisor(sv.parse_settings(self.CONFIG), "/r", d, out=io.StringIO(), err=io.StringIO())
            self.assertEqual(sup.missing_programs(), ["strategy"])

    def test_the_status_line_counts_signals_per_group(self):
        with tempfile.TemporaryDirectory() as d:
            self.executor_stats(d)
            self.assertIn("signals 10 (trend 8 py 2 ext n/a)", self.make(d).status_line(1.0))

    def test_counts_add_up_over_the_lives_of_a_restarted_instance(self):
        with tempfile.TemporaryDirectory() as d:
            def beat(name, pid, emitted, acked):
                with open(os.path.join(d, name + ".stats.json"), "w") as f:
                    json.dump({"pid": pid, "signals_emitted": emitted, "signals_acked": acked}, f)
            sup = self.make(d)
            p = sup.resolve("trend-0")[0]
            p.popen, p.pid, p.started_at, p.state = FakePopen(11), 11, 0.0, sv.RUNNING
            beat("trend-0", 11, 5, 5)
            p.popen.rc = -signal.SIGKILL
            sup.reap(1.0)                      # its last stats file is kept...
            beat("trend-0", 12, 3, 2)          # ...and the next life starts from 0
            text = sup.summary()
            self.assertIn("signals emitted:  8 (trend-0 8)", text)
            self.assertIn("    signals emitted 8, acked 7; executor: no per-group figures", text)
            self.assertIn("signals 8 (trend 8 py n/a ext n/a)", sup.status_line(1.0))
            beat("trend-0", 12, 4, 4)          # the same life, later: replaces, never adds
            self.assertIn("signals emitted:  9 (trend-0 9)", sup.summary())

    def test_summary_per_group(self):
        with tempfile.TemporaryDirectory() as d:
            self.executor_stats(d)
            text = self.make(d).summary()
            self.assertIn("strategy groups:", text)
            self.assertIn("  trend (sma_crossover): 2 processes (trend-0 STOPPED, trend-1 STOPPED)", text)
            self.assertIn("    signals emitted 8, acked 7; executor: signals 7, rejected 2, fills 4", text)
            self.assertRegex(text, r"    GBPUSD\s+position\s+-1000\s+realised PnL\s+-0\.50")
            self.assertIn("  py (python): 1 process (py-0 STOPPED)", text)
            self.assertIn("    signals emitted 2, acked 2; executor: no per-group figures", text)
            self.assertIn("signals emitted:  10 (py-0 2, trend-0 4, trend-1 3, trend-5 1)", text)

    def test_summary_tells_what_became_of_the_orders(self):
        with tempfile.TemporaryDirectory() as d:
            self.executor_stats(d)
            with open(os.path.join(d, "executor.stats.json")) as f:
                ex = json.load(f)
            ex.update({"orders_working": 2, "canceled": 3, "cancel_requests": 2, "cancels_sent": 2,
                       "cancels_refused": {"order_final": 1}, "expired_at_broker": 1,
                       "report_next_seq": 41, "reports_applied": 12, "reports_known": 28,
                       "reports_unknown_order": 0, "report_gaps": 1, "reports_fetched": 4,
                       "reports_duplicate": 0, "invalid_transitions": 0})
            with open(os.path.join(d, "executor.stats.json"), "w") as f:
                json.dump(ex, f)
            with open(os.path.join(d, "dll_gateway.stats.json"), "w") as f:
                json.dump({"report_seq": 40, "broker_reports": 13}, f)
            # executor.db as the executor leaves it (the columns read).
            con = sqlite3.connect(os.path.join(d, "executor.db"))
            con.execute("CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, strategy TEXT, "
                        "status TEXT, cancel_state TEXT)")
            con.execute("CREATE TABLE reports (report_id TEXT PRIMARY KEY, client_order_id TEXT, "
                        "applied INTEGER, last_quantity REAL)")
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [
                ("t1", "trend", "FILLED", ""), ("t2", "trend", "CANCELED", ""),  # an IOC remainder
                ("t3", "trend", "REJECTED", ""),
                ("r1", "revert", "FILLED", ""), ("r2", "revert", "FILLED", ""),
                ("r3", "revert", "ACCEPTED", ""), ("r4", "revert", "PARTIALLY_FILLED", "REQUESTED"),
                ("r5", "revert", "CANCELED", "DONE"), ("r6", "revert", "EXPIRED", "")])
            con.executemany("INSERT INTO reports VALUES (?, ?, ?, ?)", [
                ("s:1", "t1", 0, 5), ("s:2", "r1", 0, 5),                  # the answer had the fill
                ("s:3", "r2", 1, 2), ("s:4", "r2", 1, 3), ("s:5", "r4", 1, 1),  # fills reported later
                ("s:6", "r5", 1, 0)])                                      # a cancel: no fill
            con.commit()
            con.close()
            sup = self.make(d, self.CONFIG.replace('python_path = "/opt/strategies"',
                                                   'python_path = "/opt/strategies"\n'
                                                   'order_type = "limit"\ntime_in_force = "gtd"\n'
                                                   'good_till_ms = 3000\nlimit_offset_bps = 2.5\n'
                                                   'cancel_after_ms = 1000').replace('"py"', '"revert"'))
            text = sup.summary()
            self.assertIn("order life:       working 2, canceled 3 (cancel requests 2, sent to the broker 2, "
                          "refused 1), expired 1", text)
            self.assertIn("reports:          dll_gateway stored 40 (broker reports 13), executor through seq 40: "
                          "applied 12, known 28, unknown order 0; gaps 1, fetched 4, duplicates 0, "
                          "invalid transitions 0", text)
            self.assertIn("    orders 3 (market IOC): filled 1 (0 later, by report), resting now 0, "
                          "canceled 1 (0 on request), expired 0, rejected 1", text)
            self.assertIn("    orders 6 (limit GTD 3000 ms 2.5 bps, cancel after 1000 ms): filled 2 (2 later, "
                          "by report), resting now 2, canceled 1 (1 on request), expired 1, rejected 0", text)
            # Without the database (the executor still holds it, or another
            # db_path): no order line, the rest as before.
            os.remove(os.path.join(d, "executor.db"))
            text = sup.summary()
            self.assertNotIn("    orders ", text)
            self.assertIn("order life:       working 2", text)


def sv_ctl_format(reply):
    from tp_supervisor.ctl import format_status
    return format_status(reply)


class HeartbeatTest(unittest.TestCase):
    """The pure hang watch of one process (times in seconds, passed in)."""

    def test_judged_only_from_the_second_heartbeat_of_its_pid(self):
        hb = sv.Heartbeat(5.0)
        hb.reset(100)
        self.assertFalse(hb.expired(1000.0))            # a long start-up is not a hang
        self.assertIsNone(hb.age(1000.0))
        self.assertFalse(hb.saw(1000.0, 99, 1))          # the previous pid's last stats file
        self.assertFalse(hb.expired(2000.0))
        # The first write may come before a long start-up step (the executor's
        # start-up reconciliation): still not judged.
        self.assertTrue(hb.saw(2000.0, 100, 1))
        self.assertFalse(hb.armed)
        self.assertFalse(hb.expired(3000.0))
        self.assertIsNone(hb.age(3000.0))
        self.assertTrue(hb.saw(3000.0, 100, 2))          # the periodic loop runs
        self.assertTrue(hb.armed)
        self.assertFalse(hb.expired(3004.9))
        self.assertTrue(hb.expired(3005.0))

    def test_only_a_new_stamp_of_the_same_pid_is_a_heartbeat(self):
        hb = sv.Heartbeat(5.0)
        hb.reset(7)
        self.assertTrue(hb.saw(-1.0, 7, 9))
        self.assertTrue(hb.saw(0.0, 7, 10))
        self.assertFalse(hb.saw(3.0, 7, 10))              # the same write read again
        self.assertFalse(hb.saw(3.0, 8, 11))              # somebody else's
        self.assertFalse(hb.saw(3.0, None, 12))
        self.assertFalse(hb.saw(3.0, 7, None))
        self.assertAlmostEqual(hb.age(4.0), 4.0)
        self.assertTrue(hb.expired(5.0))
        self.assertTrue(hb.saw(6.0, 7, 11))
        self.assertFalse(hb.expired(10.9))
        self.assertTrue(hb.expired(11.0))

    def test_reset_disarms_and_zero_timeout_never_expires(self):
        hb = sv.Heartbeat(5.0)
        hb.reset(1)
        hb.saw(0.0, 1, 1)
        hb.saw(0.5, 1, 2)
        self.assertTrue(hb.armed)
        hb.reset(2)
        self.assertFalse(hb.armed)
        self.assertFalse(hb.expired(100.0))
        self.assertFalse(hb.saw(100.0, 1, 3))
        off = sv.Heartbeat(0.0)
        off.reset(3)
        off.saw(0.0, 3, 1)
        off.saw(0.0, 3, 2)
        self.assertFalse(off.expired(1e9))
        self.assertEqual(off.age(10.0), 10.0)


class FakePopen:
    def __init__(self, pid):
        self.pid = pid
        self.rc = None

    def poll(self):
        return self.rc


class HangWatchTest(unittest.TestCase):
    """Supervisor.timers/reap on a process that does not exist: the clock is
    passed in, the stats file is written by the test, signals are recorded."""

    PID = 4242

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="svhang")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.stamp = 0

    def make(self, **kw):
        args = dict(hang_timeout_ms=5000, backoff_min_ms=100, backoff_max_ms=100, healthy_after_ms=3000)
        args.update(kw)
        self.err = io.StringIO()
        sup = sv.Supervisor(sv.Settings(**args), self.dir, "/bin-dir", out=io.StringIO(), err=self.err)
        self.sent = []
        sup._signal = lambda p, sig: self.sent.append((p.name, sig))
        p = [q for q in sup.procs if q.name == "executor"][0]
        self.spawned(p, self.PID, 0.0)
        for q in sup.procs:          # only the executor is "running"
            if q is not p:
                q.state = sv.STOPPED
        return sup, p

    def spawned(self, p, pid, now):
        """What spawn() does, without a process."""
        p.popen = FakePopen(pid)
        p.pid, p.started_at, p.state = pid, now, sv.STARTING
        p.restarts += 1 if p.spawns else 0
        p.spawns += 1
        p.hb.reset(pid)

    def beat(self, pid=PID, **extra):
        """The program rewrites its stats file (atomically, as the real ones do)."""
        self.stamp += 1
        path = os.path.join(self.dir, "executor.stats.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"program": "executor", "pid": pid, "ts_ns": self.stamp, **extra}, f)
        os.replace(path + ".tmp", path)

    def up(self, sup, t0=0.0, pid=PID):
        """Two heartbeats, at t0 and t0 + 0.1: RUNNING and watched."""
        self.beat(pid)
        sup.timers(t0)
        self.beat(pid)
        sup.timers(t0 + 0.1)

    def lines(self):
        return [l for l in self.err.getvalue().splitlines() if "executor" in l]

    def test_running_hung_running_with_one_line_each_way(self):
        sup, p = self.make()
        self.up(sup)
        self.assertEqual(p.state, sv.RUNNING)
        sup.timers(5.0)
        self.assertEqual(p.state, sv.RUNNING)            # 4.9 s: not yet
        sup.timers(5.1)
        self.assertEqual(p.state, sv.HUNG)
        self.assertEqual(p.to_json(6.1, [])["state"], "HUNG")
        self.assertEqual(p.to_json(6.1, [])["heartbeat_age_s"], 6.0)
        for t in (5.5, 6.0, 7.0):
            sup.timers(t)
        self.assertEqual(p.state, sv.HUNG)
        self.assertEqual(len(self.lines()), 1, self.lines())
        self.assertIn("HUNG", self.lines()[0])
        self.assertIn("left alone", self.lines()[0])
        self.beat()
        sup.timers(8.0)
        self.assertEqual((p.state, p.pid, p.restarts), (sv.RUNNING, self.PID, 0))
        self.assertEqual(len(self.lines()), 2, self.lines())
        self.assertIn("heartbeat again after 7.9 s", self.lines()[1])
        self.assertEqual(self.sent, [])                  # restart_hung is off: never signalled
        sup.timers(12.9)
        self.assertEqual(p.state, sv.RUNNING)
        sup.timers(13.0)
        self.assertEqual(p.state, sv.HUNG)               # and it is watched again

    def test_regular_heartbeats_stay_running(self):
        sup, p = self.make()
        for i in range(100):
            self.beat()
            sup.timers(i * 1.0)
            self.assertEqual(p.state, sv.RUNNING, i)
        self.assertEqual(self.lines(), [])

    def test_long_start_up_is_never_hung(self):
        sup, p = self.make()
        self.beat(pid=self.PID - 1)                      # the previous process's final stats
        for t in (0.5, 1.0, 10.0, 100.0):
            sup.timers(t)
        self.assertEqual(p.state, sv.RUNNING)            # alive 1 s counts as RUNNING
        self.assertIsNone(p.to_json(100.0, [])["heartbeat_age_s"])
        self.beat()                                      # an early "I am up" write at 100 s...
        sup.timers(100.0)
        sup.timers(150.0)                                # ...then a long start-up step
        self.assertEqual(p.state, sv.RUNNING)
        self.beat()                                      # the periodic loop runs: watched
        sup.timers(150.5)
        sup.timers(155.4)
        self.assertEqual(p.state, sv.RUNNING)
        sup.timers(155.6)
        self.assertEqual(p.state, sv.HUNG)
        self.assertEqual(len(self.lines()), 1, self.lines())

    def test_restart_hung_kills_and_counts_as_a_crash(self):
        sup, p = self.make(restart_hung=True, flap_window_s=60, flap_max_restarts=1)
        self.up(sup, 0.0)
        self.beat()
        sup.timers(1.0)                                  # last heartbeat at 1 s
        sup.timers(6.0)
        self.assertEqual(p.state, sv.HUNG)
        self.assertEqual(self.sent, [("executor", signal.SIGKILL)])
        self.assertIn("SIGKILL and restart", self.lines()[-1])
        sup.timers(6.5)
        self.assertEqual(len(self.sent), 1)              # killed once
        p.popen.rc = -signal.SIGKILL
        sup.reap(6.6)
        self.assertEqual(p.state, sv.BACKOFF)
        self.assertEqual(p.last_exit, "killed by SIGKILL (hung)")
        self.assertAlmostEqual(p.next_start, 6.7)
        self.assertEqual(len(p.policy.recent), 1)        # the flapping guard counted it
        # The healthy part was 1 s (< healthy_after 3 s) although it lived 6.6 s.
        self.assertEqual(p.policy.consecutive, 1)
        # Respawned and hung again at once: a restart, and over the flap limit.
        self.spawned(p, self.PID + 1, 7.0)
        self.assertEqual(p.restarts, 1)
        self.up(sup, 7.1, pid=p.pid)
        sup.timers(12.3)
        self.assertEqual(p.state, sv.HUNG)
        p.popen.rc = -signal.SIGKILL
        sup.reap(12.4)
        self.assertEqual(p.state, sv.FATAL)

    def test_no_heartbeat_watch_when_the_timeout_is_zero(self):
        sup, p = self.make(hang_timeout_ms=0, restart_hung=True)
        self.up(sup)
        sup.timers(1e6)
        self.assertEqual((p.state, self.sent), (sv.RUNNING, []))

    def test_stop_sends_sigterm_then_sigcont_then_sigkill_after_the_grace(self):
        sup, p = self.make(stop_grace_ms=2000)
        self.up(sup)
        sup.timers(10.0)
        self.assertEqual(p.state, sv.HUNG)
        sup.request_stop(p, 10.0)
        self.assertEqual(p.state, sv.STOPPING)
        self.assertEqual(self.sent, [("executor", signal.SIGTERM), ("executor", signal.SIGCONT)])
        sup.timers(11.9)
        self.assertEqual(len(self.sent), 2)
        sup.timers(12.0)
        self.assertEqual(self.sent[-1], ("executor", signal.SIGKILL))
        p.popen.rc = -signal.SIGKILL
        sup.reap(12.1)
        self.assertEqual((p.state, p.last_exit), (sv.STOPPED, "killed by SIGKILL"))

    def test_tpctl_shows_hung_and_the_heartbeat_age(self):
        loader = importlib.machinery.SourceFileLoader("tpctl", os.path.join(REPO, "scripts", "tpctl"))
        spec = importlib.util.spec_from_loader("tpctl", loader)
        tpctl = importlib.util.module_from_spec(spec)
        loader.exec_module(tpctl)
        sup, p = self.make()
        self.up(sup, 0.0)
        sup.timers(6.0)
        reply = {"ok": True, "pid": 1, "run_dir": self.dir, "instances": 2,
                 "processes": [p.to_json(6.35, [])]}
        text = tpctl.format_status(reply)
        self.assertRegex(text, r"executor\s+HUNG \(no heartbeat 6\.2s\)\s+4242")


    def test_an_alert_in_the_stats_file_shows_in_status_until_it_is_gone(self):
        loader = importlib.machinery.SourceFileLoader("tpctl", os.path.join(REPO, "scripts", "tpctl"))
        spec = importlib.util.spec_from_loader("tpctl", loader)
        tpctl = importlib.util.module_from_spec(spec)
        loader.exec_module(tpctl)
        sup, p = self.make()
        self.up(sup)
        self.beat(alert="new signals refused: 1 position(s) differ from the broker's")
        sup.timers(1.0)
        reply = {"ok": True, "pid": 1, "run_dir": self.dir, "instances": 2, "processes": [p.to_json(1.0, [])]}
        self.assertRegex(tpctl.format_status(reply), r"executor\s+RUNNING.*ALERT: new signals refused")
        self.beat()
        sup.timers(2.0)
        self.assertNotIn("alert", p.to_json(2.0, []))
        # Another pid's file (a previous process) never raises one.
        self.beat(pid=self.PID + 1, alert="stale")
        sup.timers(3.0)
        self.assertNotIn("alert", p.to_json(3.0, []))


if __name__ == "__main__":
    unittest.main()
