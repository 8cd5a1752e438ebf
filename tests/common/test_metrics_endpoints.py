"""The real programs' /metrics endpoints.

MetricsEndpoints (tier process): the real gateway and dead_letter with
metrics.port set pass `promtool check metrics` and say what their stats
files say. RealPrometheus (tier system): the whole pipeline under the
supervisor with metrics.port = P, and Debian's `prometheus` pointed at it by
the supervisor's file_sd targets file (as README "Metrics (Prometheus)" tells
an operator to) with the shipped alert rules: every target is scraped,
Prometheus' query API agrees with the programs' stats files and the
supervisor's status, and every query of the shipped Grafana dashboard
(config/grafana/trading-pipeline.json) evaluates and finds series.
GrafanaDashboard (tier unit): that dashboard's shape, its variables, and the
metric names and alerts it names against the programs' and alerts.yml.

Programs run in a temporary directory on ipc:// endpoints; the metrics and
Prometheus listen on free loopback ports; every wait polls a stats file or an
HTTP API with a deadline; children are always killed. Skipped, saying why,
when promtool or prometheus is not installed."""

import glob
import json
import os
import re
import subprocess
import sys
import time
import unittest

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "supervisor"))
from pipeline import BIN_DIR, Deployment, missing_binaries, wait_for  # noqa: E402
from ports import free_port, free_port_base  # noqa: E402
from prom import (PROMETHEUS, PROMTOOL, Prometheus, http_get,  # noqa: E402,F401
                  promtool_check_metrics, samples)
import grafana  # noqa: E402

# A reason with every character the exposition format escapes.
ODD_REASON = 'odd "reason" \\ with\nnewline'


def letter(reason, detail="from the metrics test"):
    # proto's DeadLetter: version, type, source, reason, detail, ts_ns, original.
    return msgpack.packb([9, 1, "executor", reason, detail, time.time_ns(), b"original"], use_bin_type=True)


def push_letters(endpoint, frames):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 5000)
    sock.connect(endpoint)
    for frame in frames:
        sock.send(frame)
    sock.close()
    ctx.term()


class MetricsDeployment(Deployment):
    """pipeline.Deployment whose programs serve metrics, each on a free port."""

    def __init__(self):
        super().__init__()
        self.ports = {}

    def start(self, name, *sets, port=None):
        self.ports[name] = port or free_port()
        args = ["--set", f"metrics.port={self.ports[name]}"]
        for s in sets:
            args += ["--set", s]
        return super().start(name, *args)

    def wait_up(self, name):
        wait_for(lambda: self.stats(name) and http_get(self.url(name))[0] == 200, 10,
                 what=f"{name}'s stats and /metrics", detail=lambda: self.log(name))

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}/metrics"

    def metrics(self, name):
        status, body = http_get(self.url(name))
        assert status == 200, (name, status, body)
        return body


@unittest.skipUnless(BIN_DIR, "TP_BIN_DIR is not set (ctest sets it)")
class MetricsEndpoints(unittest.TestCase):
    def setUp(self):
        self.d = MetricsDeployment()
        self.addCleanup(self.d.close)

    def test_both_endpoints_pass_promtool_and_agree_with_their_stats(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian: apt-get install prometheus)")
        d = self.d
        d.start("dead_letter")
        d.start("gateway", "gateway.rate=2000", "gateway.max_ticks=1500")
        d.wait_up("dead_letter")
        d.wait_up("gateway")
        push_letters(d.endpoints["dead_letters"], [letter("trading_halted")] * 3 + [letter(ODD_REASON)] * 2)
        wait_for(lambda: (d.stats("dead_letter") or {}).get("dead_letters") == 5, 10, what="5 letters stored")
        wait_for(lambda: (d.stats("gateway") or {}).get("ticks_published") == 1500, 10, what="1500 ticks")

        for name in ("gateway", "dead_letter"):
            # Published with the stats file, so after the figure reached its end
            # the next snapshot carries it.
            stats_key, metric = {"gateway": ("ticks_published", "tp_gateway_ticks_published_total"),
                                 "dead_letter": ("dead_letters", "tp_dead_letter_letters_total")}[name]
            want = d.stats(name)[stats_key]
            wait_for(lambda: sum(samples(d.metrics(name), metric).values()) == want, 5,
                     what=f"{metric} == {want}", detail=lambda: d.metrics(name))
            text = d.metrics(name)
            ok, out = promtool_check_metrics(text)
            self.assertTrue(ok, f"{name}:\n{out}\n{text}")
            for family in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                           "process_start_time_seconds", "tp_metrics_snapshot_timestamp_seconds"):
                self.assertIn(f"# TYPE {family} ", text, name)
            self.assertIn(f'{{program="{name}",process="{name}"}}', text)

        by_reason = samples(d.metrics("dead_letter"), "tp_dead_letter_letters_total")
        self.assertEqual({dict(k)["reason"]: v for k, v in by_reason.items()},
                         {"trading_halted": 3.0, ODD_REASON: 2.0})
        self.assertEqual(d.stats("dead_letter")["by_reason"], {"trading_halted": 3, ODD_REASON: 2})
        rss = samples(d.metrics("gateway"), "process_resident_memory_bytes")
        self.assertGreater(next(iter(rss.values())), 1 << 20)

        self.assertEqual(d.stop("gateway"), 0)
        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertEqual(http_get(d.url("gateway"), timeout=2)[0], 0, "the endpoint is gone with the program")

    def test_a_taken_port_is_a_clear_start_error(self):
        d = self.d
        d.start("dead_letter")
        d.wait_up("dead_letter")
        gw = d.start("gateway", port=d.ports["dead_letter"])
        self.assertEqual(gw.wait(10), 1)
        self.assertIn(f"cannot listen on 127.0.0.1:{d.ports['dead_letter']}", d.log("gateway"))
        self.assertEqual(http_get(d.url("dead_letter"))[0], 200, "the first program still serves")

    def test_off_by_default_and_a_public_host_refused(self):
        d = self.d
        p = subprocess.run([os.path.join(BIN_DIR, "gateway"), "--config", d.config, "--set",
                            "metrics.host=0.0.0.0", "--set", "metrics.port=1"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics.host must be a loopback address", p.stdout + p.stderr)


# The whole pipeline under the supervisor: a C++ group of two processes (a
# crossing every few ticks, so that orders and fills flow) and a Python one
# (the tp_strategy runtime), and a feed that stops at FEED_TICKS, after which
# every figure holds still and must match exactly.
FEED_TICKS = 5000
PIPELINE_TOML = """
[gateway]
rate = 1000
max_ticks = %d
[[strategy.groups]]
name = "trend"
kind = "sma_crossover"
instances = 2
[strategy.groups.params]
fast = 2
slow = 5
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "%s"
[strategy.groups.params]
n = 10
[supervisor]
backoff_min_ms = 100
""" % (FEED_TICKS, os.path.join(REPO, "tests", "python_strategy"))
STRATEGIES = ["trend-0", "trend-1", "py-0"]
PROCESSES = ["dead_letter", "dll_gateway", "executor", *STRATEGIES, "gateway"]
# Offsets README "Metrics (Prometheus)" documents.
PORT_OFFSETS = {"supervisor": 0, "gateway": 1, "executor": 2, "dll_gateway": 3, "dead_letter": 4,
                "trend-0": 10, "trend-1": 11, "py-0": 12}
ALERTS = os.path.join(REPO, "config", "prometheus", "alerts.yml")
MISSING = missing_binaries() if BIN_DIR else ["(TP_BIN_DIR unset)"]


@unittest.skipIf(MISSING, f"real binaries missing: {MISSING}")
class RealPrometheus(unittest.TestCase):
    def setUp(self):
        if not PROMETHEUS or not PROMTOOL:
            self.skipTest("prometheus or promtool is not installed (Debian: apt-get install prometheus)")
        from svtest import SupervisorRun
        self.d = Deployment(extra_toml=PIPELINE_TOML)
        self.addCleanup(self.d.close)
        self.base = free_port_base(16)
        # Prometheus ready before the supervisor writes its targets file: it
        # scrapes from the processes' start, so it sees the feed run and the
        # fills come (the dashboard's rates and latency quantiles).
        targets = os.path.join(self.d.run_dir, "prometheus_targets.json")
        self.prom = Prometheus(self.d.dir, file_sd=targets, rules=[ALERTS])
        self.addCleanup(self.prom.close)
        wait_for(lambda: http_get(f"{self.prom.url}/-/ready")[0] == 200, 15, what="Prometheus ready",
                 detail=self.prom.log)
        self.sup = SupervisorRun(self.d.dir, BIN_DIR, ["--config", self.d.config, "--set", f"metrics.port={self.base}"],
                                 run_dir=self.d.run_dir)
        self.addCleanup(self.sup.close)
        self.sup.wait_all_running(timeout=30, count=len(PROCESSES))

    def stats(self, name):
        return self.d.stats(name) or {}

    def by(self, promql, label):
        """{label value: sample value} of an instant query."""
        return {m.get(label): v for m, v in self.prom.query(promql)}

    def test_prometheus_scrapes_every_process_and_agrees_with_the_pipeline(self):
        prom, d = self.prom, self.d
        # Prometheus finds every process in the targets file, each on its offset.
        want_targets = {name: f"127.0.0.1:{self.base + off}" for name, off in PORT_OFFSETS.items()}
        active = wait_for(lambda: (lambda t: len(t) == len(want_targets) and t)(
            {t["labels"]["tp_process"]: t["labels"]["instance"]
             for t in (prom.api("targets") or {}).get("activeTargets", [])}), 20,
            what="every process among Prometheus' targets", detail=prom.log)
        self.assertEqual(active, want_targets)

        # Every program serves metrics; the executor and dll_gateway gained
        # theirs last (issue 15), so until they do only they may be down.
        serving = {name for name, addr in want_targets.items() if http_get(f"http://{addr}/metrics")[0] == 200}
        not_yet = set(want_targets) - serving
        self.assertLessEqual(not_yet, {"executor", "dll_gateway"}, "these serve no metrics")
        if not_yet:
            print(f"NOTE: {sorted(not_yet)} serve no metrics yet: their checks are skipped", file=sys.stderr)
        wait_for(lambda: self.by('up{job="tp"} == 1', "tp_process").keys() == serving, 20,
                 what=f"up == 1 for {sorted(serving)}", detail=lambda: f"{prom.query('up')}\n{prom.log()}")

        # Every endpoint's text passes promtool.
        for name in sorted(serving):
            text = http_get(f"http://{want_targets[name]}/metrics")[1]
            ok, out = promtool_check_metrics(text)
            self.assertTrue(ok, f"{name}:\n{out}")

        # The shipped rules are loaded and evaluate without error.
        groups = wait_for(lambda: (prom.api("rules") or {}).get("groups"), 10, what="the rules loaded")
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        self.assertIn("TpProcessFatal", rules)
        wait_for(lambda: all(r.get("health") == "ok" for g in (prom.api("rules") or {}).get("groups", [])
                             for r in g["rules"]), 10, what="every rule healthy",
                 detail=lambda: str(prom.api("rules")))

        # The supervisor's states as Prometheus has them: what `status` says.
        status = self.sup.status()
        self.assertEqual(self.by("tp_supervisor_process_state == 1", "process"),
                         {name: 1.0 for name in PROCESSES})
        states = {m["process"]: m["state"] for m, _ in prom.query("tp_supervisor_process_state == 1")}
        self.assertEqual(states, {name: p["state"] for name, p in status.items()})
        self.assertEqual(self.by("tp_supervisor_process_restarts_total", "process"),
                         {name: float(p["restarts"]) for name, p in status.items()})

        # Some dead letters of two reasons, besides any the pipeline sends.
        push_letters(d.endpoints["dead_letters"], [letter("trading_halted")] * 4 + [letter(ODD_REASON)] * 3)

        # Once the feed has stopped and the fills have settled, the figures
        # hold still: Prometheus' last scrape must equal each stats file.
        wait_for(lambda: self.stats("gateway").get("ticks_published") == FEED_TICKS, 30,
                 what=f"{FEED_TICKS} ticks published", detail=lambda: self.sup.status_text())
        fills, = wait_for(self.settled("executor", "fills"), 30, interval=0.6, what="the executor's fills settled")
        self.assertGreater(fills, 0, "the pipeline traded")
        wait_for(self.settled("dead_letter", "dead_letters"), 30, interval=0.6, what="the dead letters settled")

        def agree():
            return (self.by("tp_gateway_ticks_published_total", "process") == {"gateway": float(FEED_TICKS)}
                    and self.by("tp_dead_letter_letters_total", "reason")
                    == {k: float(v) for k, v in self.stats("dead_letter").get("by_reason", {}).items()}
                    and self.by("tp_strategy_ticks_received_total", "process")
                    == {n: float(self.stats(n).get("ticks_received", -1)) for n in STRATEGIES})
        wait_for(agree, 15, what="Prometheus agrees on ticks, dead letters and ticks received",
                 detail=lambda: (f"{prom.query('tp_gateway_ticks_published_total')}\n"
                                 f"{prom.query('tp_dead_letter_letters_total')} vs "
                                 f"{self.stats('dead_letter').get('by_reason')}\n"
                                 f"{prom.query('tp_strategy_ticks_received_total')}"))
        by_reason = self.by("tp_dead_letter_letters_total", "reason")
        self.assertGreaterEqual(by_reason.get("trading_halted", 0), 4)
        self.assertEqual(by_reason.get(ODD_REASON), 3.0)

        if "executor" in serving:
            want = {k: float(v) for k, v in self.stats("executor")["fills_by_instrument"].items() if v}
            wait_for(lambda: {k: v for k, v in self.by("tp_executor_fills_total", "instrument").items() if v}
                     == want, 15, what=f"Prometheus' fills by instrument == {want}",
                     detail=lambda: str(prom.query("tp_executor_fills_total")))
            self.assertEqual(sum(want.values()), float(fills))
            # Both runtimes' groups traded.
            self.assertEqual({g for g, v in self.by("tp_executor_group_fills_total", "group").items() if v},
                             {"trend", "py"})
        else:
            print("NOTE: the executor serves no metrics yet: fills not compared", file=sys.stderr)

        # Every query of the shipped Grafana dashboard finds this pipeline's series.
        self.check_dashboard()

        # Every series an alert rule reads is one the pipeline serves: the
        # rules' unit tests use made-up series, this holds their names to the
        # programs' (the executor's only once it serves them).
        served = set(prom.api("label/__name__/values") or [])
        used = set(re.findall(r"\b(?:tp|process)_[a-z0-9_]+", "\n".join(
            line for line in open(ALERTS) if line.strip().startswith("expr:"))))
        self.assertGreaterEqual(len(used), 10, used)
        if "executor" not in serving:
            used = {n for n in used if not n.startswith("tp_executor_")}
        self.assertEqual(used - served, set(), "alert rules read series nobody serves")

        # Nothing is FATAL, nothing restarted: the alerts about them are quiet.
        self.assertEqual(prom.query('ALERTS{alertname=~"TpProcessFatal|TpProcessRestartingOften"}'), [])

        # The gateway stopped: each strategy's feed dies (strategy.feed_timeout_ms,
        # 2 s) and TpFeedDead fires for each, 10 s later, from the real series.
        self.assertTrue(self.sup.ctl({"cmd": "stop", "name": "gateway"})["ok"])
        firing = wait_for(lambda: (lambda f: set(f) == set(STRATEGIES) and f)(
            self.by('ALERTS{alertname="TpFeedDead",alertstate="firing"}', "process")), 30,
            what="TpFeedDead firing for every strategy process",
            detail=lambda: str(prom.query("ALERTS")) + str(prom.query("tp_strategy_feed_alive")))
        self.assertEqual(set(firing), set(STRATEGIES))
        self.assertEqual(self.by('tp_supervisor_process_state{state="STOPPED"} == 1', "process"), {"gateway": 1.0})

    # Grafana's $__rate_interval is four scrape intervals at least (1m for
    # its default 15 s); 1m spans this whole short run, so that each rate
    # sees the feed's ticks and the fills.
    RATE_INTERVAL = "1m"
    # (panel, refId) of the dashboard's targets that may find no series in
    # this run: a family of counters by reason has no sample before its
    # first reason.
    DASHBOARD_MAY_BE_EMPTY = {
        ("Rejects per second", "A"): "the executor need refuse no signal in a 5-second feed",
        ("Rejects and errors per second", "B"): "dll_gateway need reject no order",
    }

    def check_dashboard(self):
        """config/grafana/trading-pipeline.json against this pipeline: its
        variables' label_values() list every program and process; every
        target's query, with the variables put in as Grafana puts them in
        for "All", parses and evaluates, and finds a series (but the few
        DASHBOARD_MAY_BE_EMPTY)."""
        prom, board = self.prom, grafana.load()
        everything = grafana.all_values(board)
        want = {"program": {"supervisor", "gateway", "executor", "dll_gateway", "dead_letter", "strategy"},
                "process": {"supervisor", *PROCESSES}}
        for v in grafana.variables(board, "query"):
            selector, label = grafana.label_values(v)
            found = prom.api(f"label/{label}/values", **{"match[]": grafana.substitute(selector, everything)})
            self.assertEqual(set(found or []), want[v["name"]], v["name"])

        values = {**everything, "__rate_interval": self.RATE_INTERVAL}
        queries = {(p["title"], t["refId"]): grafana.substitute(t["expr"], values)
                   for p, t in grafana.targets(board)}
        results = {}

        def missing():
            return sorted(k for k, r in results.items() if not r and k not in self.DASHBOARD_MAY_BE_EMPTY)

        def evaluate_all():
            for key, promql in queries.items():
                results[key], error = prom.evaluate(promql)
                self.assertIsNone(error, f"{key}: {promql}")
            return not missing()
        # A rate needs two scrapes of its series: a few seconds at most after the figures agreed.
        wait_for(evaluate_all, 10, interval=1, what="a series for every dashboard query",
                 detail=lambda: "\n".join(f"{k}: {queries[k]}" for k in missing()))

    def settled(self, name, key):
        """A predicate for wait_for (polled 0.6 s apart, three stats
        periods): the stats figure `key` of `name` once it reads the same
        twice in a row, else None."""
        last = []

        def still():
            now = self.stats(name).get(key)
            same = bool(last) and now is not None and now == last[-1]
            last.append(now)
            return (now,) if same else None
        return still


# Where the programs name their metrics: the C++ renderers, the Python
# runtime's and the supervisor's.
RENDERERS = [f for d in ("common/src", "gateway/src", "strategy/src", "executor/src", "dll_gateway/src",
                         "dead_letter/src", "strategy/python/tp_strategy", "scripts/tp_supervisor")
             for ext in ("cpp", "py") for f in glob.glob(os.path.join(REPO, d, f"*.{ext}"))]
METRIC_NAME = re.compile(r"\b(?:tp|process)_[a-z0-9_]+")


class GrafanaDashboard(unittest.TestCase):
    """config/grafana/trading-pipeline.json read as Grafana reads it, without
    a pipeline: its shape, variables and the names its queries use.
    RealPrometheus runs every query."""

    def setUp(self):
        self.board = grafana.load()

    def test_every_panel_has_an_id_a_place_and_the_datasource_variable(self):
        board = self.board
        self.assertGreaterEqual(board["schemaVersion"], 36)
        self.assertTrue(board["uid"] and board["title"])
        panels = grafana.panels(board)
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")
        taken = {}  # grid cell -> the panel there
        for p in panels:
            pos = p["gridPos"]
            self.assertTrue(all(isinstance(pos[k], int) for k in "hwxy"), p["title"])
            self.assertLessEqual(pos["x"] + pos["w"], 24, p["title"])
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            clash = {taken[c] for c in cells & taken.keys()}
            self.assertFalse(clash, f"{p['title']} overlaps {clash}")
            taken.update(dict.fromkeys(cells, p["title"]))
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], grafana.DATASOURCE, p["title"])
            self.assertTrue(p["targets"], p["title"])
            self.assertIn("unit", p["fieldConfig"]["defaults"], p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"], grafana.DATASOURCE, p["title"])
                self.assertTrue(t["expr"].strip(), p["title"])

    def test_the_variables_choose_a_prometheus_then_programs_and_processes(self):
        ds, = grafana.variables(self.board, "datasource")
        self.assertEqual((ds["name"], ds["query"]), ("datasource", "prometheus"))
        query_vars = {v["name"]: v for v in grafana.variables(self.board, "query")}
        self.assertEqual(set(query_vars), {"program", "process"})
        for name, v in query_vars.items():
            self.assertEqual(v["datasource"], grafana.DATASOURCE)
            self.assertEqual(grafana.label_values(v)[1], name)
            self.assertTrue(v["multi"] and v["includeAll"], name)
            self.assertEqual(v["allValue"], ".*", name)
        # Every variable a query uses is one Grafana knows.
        known = {**grafana.all_values(self.board), "__rate_interval": "1m"}
        for panel, t in grafana.targets(self.board):
            try:
                grafana.substitute(t["expr"], known)
            except KeyError as e:
                self.fail(f"{panel['title']} {t['refId']}: no variable {e}")

    def test_the_provisioned_data_source_has_the_scrape_interval_of_the_sample_prometheus(self):
        # $__rate_interval follows the data source's timeInterval: 4 of them at least.
        with open(os.path.join(REPO, "config", "prometheus", "prometheus.yml")) as f:
            scrape_interval = re.search(r"^  scrape_interval: (\S+)$", f.read(), re.M).group(1)
        with open(os.path.join(REPO, "config", "grafana", "provisioning", "datasources", "trading-pipeline.yml")) as f:
            self.assertRegex(f.read(), rf"\n +type: prometheus\n(.*\n)* +timeInterval: {scrape_interval}\n")

    def test_every_metric_is_one_a_program_serves_and_every_alert_named_is_a_rule(self):
        served = set()
        for path in RENDERERS:
            with open(path) as f:
                served |= set(re.findall(r'"((?:tp|process)_[a-z0-9_]+)"', f.read()))
        used = {re.sub(r"_(bucket|sum|count)$", "", n)
                for _, t in grafana.targets(self.board) for n in METRIC_NAME.findall(t["expr"])}
        self.assertGreaterEqual(len(used), 40, used)
        self.assertEqual(used - served, set(), "the dashboard reads metrics no program serves")
        with open(ALERTS) as f:
            rules = set(re.findall(r"- alert: (\w+)", f.read()))
        named = set(re.findall(r"alert (Tp\w+)", json.dumps(self.board)))
        self.assertGreaterEqual(len(named), 10, named)
        self.assertEqual(named - rules, set(), "descriptions name alerts alerts.yml lacks")


if __name__ == "__main__":
    unittest.main()
