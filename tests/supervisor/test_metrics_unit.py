"""The supervisor's Prometheus parts without a supervisor: the exposition
writer (exposition.py, the same text as common/metrics.hpp's for the same
figures), /proc/self/stat, the ports and the file_sd targets (metrics.py),
the rendered process states, and the HTTP server on a free loopback port."""

import json
import os
import socket
import sys
import tempfile
import time
import unittest

from svtest import REPO  # and scripts/ on sys.path

sys.path.insert(0, os.path.join(REPO, "tests", "support"))

from ports import free_port  # noqa: E402
from prom import PROMTOOL, http_get, promtool_check_metrics, samples  # noqa: E402
from tp_supervisor import exposition, metrics  # noqa: E402
from tp_supervisor.policy import RestartPolicy  # noqa: E402
from tp_supervisor.settings import Settings  # noqa: E402
from tp_supervisor.states import BACKOFF, FATAL, RUNNING, STATES, STOPPED  # noqa: E402
from tp_supervisor.watcher import Proc, exit_status  # noqa: E402


def proc(program, state, index=None, group=None, slot=None, restarts=0, exit_code=None):
    p = Proc(program, RestartPolicy.from_settings(Settings()), index=index, shards=None if index is None else 2, group=group)
    p.state, p.restarts, p.last_exit_code, p.metrics_slot = state, restarts, exit_code, slot
    return p


class ExpositionTest(unittest.TestCase):
    def test_values_as_the_cpp_writes_them(self):
        f = exposition.format_value
        self.assertEqual([f(0.1), f(1e21), f(3.0), f(3), f(float("nan")), f(float("inf")), f(-float("inf"))],
                         ["0.1", "1e+21", "3", "3", "NaN", "+Inf", "-Inf"])
        self.assertEqual(float(f(1.0 / 3)), 1.0 / 3)

    def test_help_and_type_once_per_family_and_labels_escaped(self):
        out = exposition.MetricsText([("program", "supervisor")])
        out.gauge("tp_x", "An x.\nSecond line \\.", 1, [("reason", 'a "b" \\ c\nd')])
        out.gauge("tp_x", "ignored", 2, [("reason", "e")])
        out.counter("tp_y_total", "Ys.", 5)
        self.assertEqual(out.text(),
                         "# HELP tp_x An x.\\nSecond line \\\\.\n# TYPE tp_x gauge\n"
                         'tp_x{program="supervisor",reason="a \\"b\\" \\\\ c\\nd"} 1\n'
                         'tp_x{program="supervisor",reason="e"} 2\n'
                         "# HELP tp_y_total Ys.\n# TYPE tp_y_total counter\n"
                         'tp_y_total{program="supervisor"} 5\n')

    def test_programming_errors_are_refused(self):
        out = exposition.MetricsText()
        with self.assertRaises(ValueError):
            out.counter("tp_restarts", "no _total", 1)
        with self.assertRaises(ValueError):
            out.gauge("tp bad", "a space", 1)
        with self.assertRaises(ValueError):
            out.gauge("tp_ok", "bad label", 1, [("__reserved", "x")])
        out.gauge("tp_a", "a", 1).gauge("tp_b", "b", 1)
        with self.assertRaises(ValueError):
            out.gauge("tp_a", "a family written in two places", 2)

    def test_proc_stat_parsed_as_the_cpp_test_parses_it(self):
        # common/test_metrics.cpp's line: a command with spaces and parentheses.
        stat = ("4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 12000 "
                "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0")
        p = exposition.parse_proc_stat(stat, 100, 4096, 1_700_000_000)
        self.assertEqual(p, {"cpu_seconds": 3.0, "start_time_seconds": 1_700_000_120.0,
                             "virtual_bytes": 104857600, "resident_bytes": 2560 * 4096})
        self.assertIsNone(exposition.parse_proc_stat("4242 (x) S 1 2 3", 100, 4096, 0))
        self.assertIsNone(exposition.parse_proc_stat("no parenthesis", 100, 4096, 0))

    def test_this_process_looks_alive(self):
        p = exposition.read_process_sample()
        self.assertGreater(p["resident_bytes"], 1 << 20)
        self.assertGreater(p["open_fds"], 2)
        self.assertGreater(p["max_fds"], p["open_fds"])
        self.assertLess(abs(p["start_time_seconds"] - time.time()), 24 * 3600)
        self.assertGreater(p["cpu_seconds"], 0)


class PortsAndTargetsTest(unittest.TestCase):
    def test_the_documented_offsets(self):
        self.assertEqual([metrics.metrics_port(9300, prog) for prog in
                          ("supervisor", "gateway", "executor", "dll_gateway", "dead_letter")],
                         [9300, 9301, 9302, 9303, 9304])
        self.assertEqual(metrics.metrics_port(9300, "strategy", 0), 9310)
        self.assertEqual(metrics.metrics_port(9300, "strategy", 7), 9317)

    def test_lowest_free_slot(self):
        self.assertEqual(metrics.lowest_free_slot(set()), 0)
        self.assertEqual(metrics.lowest_free_slot({0, 1, 3}), 2)
        self.assertEqual(metrics.lowest_free_slot({1, 2}), 0)

    def test_targets_name_every_process(self):
        procs = [proc("gateway", RUNNING), proc("strategy", RUNNING, 0, "trend", slot=0),
                 proc("strategy", RUNNING, 1, "trend", slot=3)]
        self.assertEqual(metrics.targets("127.0.0.1", 9300, procs), [
            {"targets": ["127.0.0.1:9300"], "labels": {"tp_process": "supervisor"}},
            {"targets": ["127.0.0.1:9301"], "labels": {"tp_process": "gateway"}},
            {"targets": ["127.0.0.1:9310"], "labels": {"tp_process": "trend-0"}},
            {"targets": ["127.0.0.1:9313"], "labels": {"tp_process": "trend-1"}}])
        self.assertEqual(metrics.targets("::1", 9300, [])[0]["targets"], ["[::1]:9300"])
        # A wildcard listen address is no address to scrape: the machine's name.
        self.assertEqual(metrics.targets("0.0.0.0", 9300, [])[0]["targets"], [f"{socket.gethostname()}:9300"])

    def test_targets_file_replaced_whole(self):
        with tempfile.TemporaryDirectory() as d:
            groups = metrics.targets("127.0.0.1", 9300, [proc("executor", RUNNING)])
            path = metrics.write_targets(d, groups)
            self.assertEqual(path, os.path.join(d, "prometheus_targets.json"))
            with open(path) as f:
                self.assertEqual(json.load(f), groups)
            metrics.write_targets(d, groups[:1])
            with open(path) as f:
                self.assertEqual(json.load(f), groups[:1])
            self.assertEqual(os.listdir(d), ["prometheus_targets.json"], "no temporary file left")

    def test_a_port_someone_listens_on_is_a_problem(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            taken = s.getsockname()[1]
            self.assertIn(f"cannot listen on 127.0.0.1:{taken}", metrics.port_problem("127.0.0.1", taken))
        self.assertIsNone(metrics.port_problem("127.0.0.1", free_port()))
        self.assertEqual(metrics.port_problem("127.0.0.1", 65536), "port 65536 is beyond 65535")


class RenderTest(unittest.TestCase):
    def setUp(self):
        self.procs = [proc("dead_letter", RUNNING), proc("executor", BACKOFF, restarts=2, exit_code=exit_status(-9)),
                      proc("strategy", FATAL, 0, "trend", slot=0, restarts=5, exit_code=3),
                      proc("gateway", STOPPED)]
        self.procs[0].popen = object()   # alive
        self.text = metrics.render(self.procs, {"trend": 1})

    def test_one_state_sample_per_state_and_one_of_them_set(self):
        states = samples(self.text, "tp_supervisor_process_state")
        self.assertEqual(len(states), len(self.procs) * len(STATES))
        current = {dict(k)["process"]: dict(k)["state"] for k, v in states.items() if v == 1}
        self.assertEqual(current, {"dead_letter": RUNNING, "executor": BACKOFF, "trend-0": FATAL,
                                   "gateway": STOPPED})
        self.assertIn(frozenset({"program": "strategy", "process": "trend-0", "state": FATAL}.items()), states)

    def test_restarts_exits_up_and_groups(self):
        def by_process(name):
            return {dict(k)["process"]: v for k, v in samples(self.text, name).items()}
        self.assertEqual(by_process("tp_supervisor_process_restarts_total"),
                         {"dead_letter": 0, "executor": 2, "trend-0": 5, "gateway": 0})
        self.assertEqual(by_process("tp_supervisor_process_last_exit_code"), {"executor": 137, "trend-0": 3})
        self.assertEqual(by_process("tp_supervisor_process_up"),
                         {"dead_letter": 1, "executor": 0, "trend-0": 0, "gateway": 0})
        self.assertEqual(samples(self.text, "tp_supervisor_group_instances"), {frozenset({("group", "trend")}): 1})

    def test_signature_moves_with_what_is_shown(self):
        before = metrics.state_signature(self.procs)
        self.procs[3].state = RUNNING
        self.assertNotEqual(metrics.state_signature(self.procs), before)


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.server = metrics.MetricsServer("127.0.0.1", 0)
        self.addCleanup(self.server.stop)
        self.url = f"http://127.0.0.1:{self.server.port}/metrics"

    def test_503_before_the_first_publish_then_the_text_and_process_metrics(self):
        self.assertEqual(http_get(self.url)[0], 503)
        procs = [proc("gateway", RUNNING)]
        self.server.publish(metrics.render(procs, {}), 1_700_000_000_500_000_000)
        status, body = http_get(self.url)
        self.assertEqual(status, 200)
        self.assertIn('tp_supervisor_process_state{program="gateway",process="gateway",state="RUNNING"} 1', body)
        self.assertIn('tp_metrics_snapshot_timestamp_seconds{program="supervisor",process="supervisor"} '
                      '1700000000.5', body)
        rss = samples(body, "process_resident_memory_bytes")
        self.assertEqual(list(rss), [frozenset({("program", "supervisor"), ("process", "supervisor")})])
        self.assertGreater(next(iter(rss.values())), 1 << 20)
        if PROMTOOL:
            ok, out = promtool_check_metrics(body)
            self.assertTrue(ok, out + body)
        self.assertEqual(http_get(self.url.replace("/metrics", "/other"))[0], 404)

    def test_a_taken_port_is_refused_naming_it(self):
        with self.assertRaises(OSError) as e:
            metrics.MetricsServer("127.0.0.1", self.server.port)
        self.assertIn(f"metrics: cannot listen on 127.0.0.1:{self.server.port}", str(e.exception))

    def test_a_stalled_scraper_holds_up_no_other(self):
        self.server.publish("", 1_000_000_000)
        with socket.create_connection(("127.0.0.1", self.server.port)) as stalled:
            stalled.sendall(b"GET /metr")   # and nothing more
            began = time.monotonic()
            self.assertEqual(http_get(self.url, timeout=5)[0], 200)
            self.assertLess(time.monotonic() - began, 1.0)


if __name__ == "__main__":
    unittest.main()
