"""The Python runtime's Prometheus writer and server (tp_strategy/metrics.py)
by the C++ writer's rules: the exact texts of tests/common/test_metrics.cpp
for the same calls, the same escapes, std::to_chars' notation for values,
the same programming errors refused; /proc/self/stat read as the C++ reads
it; the server's 503 before the first snapshot, its process metrics and
snapshot timestamp, a taken port refused naming host and port; the
[metrics] config keys with the C++ texts. (test_crosscheck.py runs the C++
writer itself on the same figures.)"""

import math
import os
import socket
import sys
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "strategy", "python"))

from tp_strategy import metrics  # noqa: E402
from tp_strategy.config import ConfigError, parse_config  # noqa: E402
from tp_strategy.metrics import MetricsText  # noqa: E402


def get(url):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Writer(unittest.TestCase):
    def test_counter_with_help_and_type_once(self):
        m = MetricsText()
        m.counter("tp_ticks_total", "Ticks published.", 42, [("instrument", "EURUSD")])
        m.counter("tp_ticks_total", "Ticks published.", 7, [("instrument", "GBPUSD")])
        self.assertEqual(m.text(), "# HELP tp_ticks_total Ticks published.\n"
                                   "# TYPE tp_ticks_total counter\n"
                                   'tp_ticks_total{instrument="EURUSD"} 42\n'
                                   'tp_ticks_total{instrument="GBPUSD"} 7\n')

    def test_gauges_and_common_labels_first(self):
        m = MetricsText([("program", "gateway"), ("process", "gateway")])
        m.gauge("tp_rate", "Per second.", 12.5).gauge("tp_low", "Flag.", True).gauge("tp_delta", "Signed.", -3)
        self.assertEqual(m.text(), "# HELP tp_rate Per second.\n# TYPE tp_rate gauge\n"
                                   'tp_rate{program="gateway",process="gateway"} 12.5\n'
                                   "# HELP tp_low Flag.\n# TYPE tp_low gauge\n"
                                   'tp_low{program="gateway",process="gateway"} 1\n'
                                   "# HELP tp_delta Signed.\n# TYPE tp_delta gauge\n"
                                   'tp_delta{program="gateway",process="gateway"} -3\n')

    def test_no_labels_no_braces(self):
        self.assertEqual(MetricsText().gauge("up_ish", "x", 0.0).text(),
                         "# HELP up_ish x\n# TYPE up_ish gauge\nup_ish 0\n")

    def test_label_values_and_help_are_escaped(self):
        m = MetricsText().counter("tp_letters_total", 'Dead letters\nby "reason" \\ source.', 1,
                                  [("reason", 'a"b\\c\nd')])
        self.assertEqual(m.text(), '# HELP tp_letters_total Dead letters\\nby "reason" \\\\ source.\n'
                                   "# TYPE tp_letters_total counter\n"
                                   'tp_letters_total{reason="a\\"b\\\\c\\nd"} 1\n')
        self.assertEqual(metrics.escape_label_value("prix €"), "prix €")

    def test_values_as_std_to_chars_writes_them(self):
        f = metrics.format_value
        # test_metrics.cpp's, then the notation rules: the shorter of fixed
        # and scientific, fixed on a tie, an integer written exactly.
        for value, text in [(0.1, "0.1"), (1e21, "1e+21"), (3.0, "3"), (math.nan, "NaN"), (math.inf, "+Inf"),
                            (-math.inf, "-Inf"), (100000.0, "1e+05"), (123456.0, "123456"), (1e-4, "1e-04"),
                            (0.00025, "0.00025"), (5e-05, "5e-05"), (-0.0, "-0"), (0.0, "0"),
                            (1764178000.123456, "1764178000.123456"), (1.2345678901234568e+20, "123456789012345683968"),
                            (1.7976931348623157e308, "1.7976931348623157e+308"), (-2.5, "-2.5"), (1e16, "1e+16")]:
            self.assertEqual(f(value), text, value)
        self.assertEqual(float(f(1 / 3)), 1 / 3)
        # Integers go through as integers (the C++ integer overloads).
        self.assertEqual(MetricsText().gauge("tp_big", "x", 2**64 - 1).text().splitlines()[-1],
                         "tp_big 18446744073709551615")

    def test_histogram(self):
        h = metrics.Histogram([0.001, 0.01, 0.1])
        for v in (0.0005, 0.001, 0.005, 0.5):
            h.observe(v)
        m = MetricsText([("program", "executor")]).histogram("tp_fill_latency_seconds", "Tick to fill.", h.sample())
        self.assertEqual(m.text(), "# HELP tp_fill_latency_seconds Tick to fill.\n"
                                   "# TYPE tp_fill_latency_seconds histogram\n"
                                   'tp_fill_latency_seconds_bucket{program="executor",le="0.001"} 2\n'
                                   'tp_fill_latency_seconds_bucket{program="executor",le="0.01"} 3\n'
                                   'tp_fill_latency_seconds_bucket{program="executor",le="0.1"} 3\n'
                                   'tp_fill_latency_seconds_bucket{program="executor",le="+Inf"} 4\n'
                                   'tp_fill_latency_seconds_sum{program="executor"} 0.5065\n'
                                   'tp_fill_latency_seconds_count{program="executor"} 4\n')

    def test_latency_bounds_make_a_histogram(self):
        h = metrics.Histogram(metrics.LATENCY_BOUNDS_SECONDS)
        h.observe(30e-6)
        h.observe(20.0)
        s = h.sample()
        self.assertEqual((s.upper_bounds[0], s.upper_bounds[-1]), (50e-6, 10.0))
        self.assertEqual((s.cumulative_counts[0], s.cumulative_counts[-1], s.count), (1, 1, 2))
        with self.assertRaises(ValueError):
            metrics.Histogram([0.1, 0.1])
        with self.assertRaises(ValueError):
            metrics.Histogram([math.inf])

    def test_counters_from_a_map(self):
        m = MetricsText().counters("tp_rejected_total", "By reason.", {"stale": 5, "risk": 2}, "reason")
        m.counters("tp_none_total", "Empty: no family at all.", {}, "reason")
        self.assertEqual(m.text(), "# HELP tp_rejected_total By reason.\n# TYPE tp_rejected_total counter\n"
                                   'tp_rejected_total{reason="risk"} 2\ntp_rejected_total{reason="stale"} 5\n')

    def test_programming_errors_raise(self):
        m = MetricsText()
        for call in (lambda: m.counter("tp_ticks", "no _total", 1.0),
                     lambda: m.gauge("9lives", "bad name", 1.0),
                     lambda: m.gauge("tp_x", "bad label", 1.0, [("bad-label", "v")]),
                     lambda: m.gauge("tp_y", "reserved label", 1.0, [("__name__", "v")]),
                     lambda: MetricsText([("le", "1")])):
            with self.assertRaises(ValueError):
                call()
        split = MetricsText().gauge("tp_a", "a", 1.0).gauge("tp_b", "b", 1.0)
        with self.assertRaises(ValueError):
            split.gauge("tp_a", "a again, apart from its family", 2.0)


# A line of a real /proc/<pid>/stat, with a command holding a space and a ')'.
PROC_STAT = ("4242 (my prog) x) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 50 0 0 20 0 3 0 12000 104857600 2560 "
             "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")


class ProcessMetrics(unittest.TestCase):
    def test_parses_proc_stat(self):
        self.assertEqual(metrics.parse_proc_stat(PROC_STAT, 100, 4096, 1_700_000_000),
                         {"cpu_seconds": 3.0, "start_time_seconds": 1_700_000_120.0, "virtual_bytes": 104857600,
                          "resident_bytes": 2560 * 4096})
        self.assertIsNone(metrics.parse_proc_stat("4242 (x) S 1 2 3", 100, 4096, 0))
        self.assertIsNone(metrics.parse_proc_stat("no parenthesis", 100, 4096, 0))

    def test_this_process_looks_alive(self):
        m = MetricsText()
        metrics.add_process_metrics(m)
        values = {line.split()[0]: float(line.split()[1]) for line in m.text().splitlines() if not line.startswith("#")}
        self.assertGreater(values["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(values["process_open_fds"], 0)
        self.assertGreaterEqual(values["process_max_fds"], values["process_open_fds"])
        self.assertGreater(values["process_start_time_seconds"], 1.5e9)
        self.assertIn("process_cpu_seconds_total", values)
        self.assertIn("process_virtual_memory_bytes", values)


class Server(unittest.TestCase):
    def serve(self, port=0):
        server = metrics.MetricsServer("127.0.0.1", port, [("program", "strategy"), ("process", "g-0"),
                                                          ("group", "g")])
        self.addCleanup(server.stop)
        return server

    def test_503_until_the_first_snapshot_then_the_snapshot_and_the_process(self):
        server = self.serve()
        url = f"http://127.0.0.1:{server.port}/metrics"
        self.assertEqual(get(url)[0], 503)
        server.publish(MetricsText([("program", "strategy")]).counter("tp_x_total", "x", 5).text(),
                       1_764_000_000_250_000_000)
        status, body = get(url)
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith('# HELP tp_x_total x\n# TYPE tp_x_total counter\n'
                                        'tp_x_total{program="strategy"} 5\n'))
        self.assertIn('process_resident_memory_bytes{program="strategy",process="g-0",group="g"} ', body)
        # ns / 1e9 in doubles, as the C++ server divides.
        self.assertIn('tp_metrics_snapshot_timestamp_seconds{program="strategy",process="g-0",group="g"} '
                      '1764000000.2499998\n', body)
        self.assertEqual(get(f"http://127.0.0.1:{server.port}/other")[0], 404)
        self.assertEqual(server.scrapes, 2)

    def test_a_taken_port_is_a_clear_error_naming_it(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with self.assertRaises(metrics.MetricsBindError) as e:
                self.serve(port)
        self.assertIn(f"metrics: cannot listen on 127.0.0.1:{port}", str(e.exception))

    def test_stopped_is_gone(self):
        server = self.serve()
        server.publish("", 0)
        server.stop()
        server.stop()  # idempotent
        with self.assertRaises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=2)

    def test_off_is_none(self):
        self.assertIsNone(metrics.start_metrics_server("127.0.0.1", 0, "strategy", "g-0"))


class Config(unittest.TestCase):
    def error(self, text):
        with self.assertRaises(ConfigError) as e:
            parse_config(text, origin="test.toml")
        return str(e.exception)

    def test_off_on_loopback_by_default(self):
        c = parse_config("")
        self.assertEqual((c.metrics_host, c.metrics_port), ("127.0.0.1", 0))
        c = parse_config('[metrics]\nport = 9301\nhost = "::1"\n')
        self.assertEqual((c.metrics_host, c.metrics_port), ("::1", 9301))

    def test_the_cpp_checks_and_words(self):
        self.assertIn("metrics.host must be a loopback address", self.error('[metrics]\nhost = "0.0.0.0"\n'))
        self.assertEqual(parse_config('[metrics]\nhost = "0.0.0.0"\n[security]\nallow_public_bind = true\n')
                         .metrics_host, "0.0.0.0")
        self.assertIn("metrics.port must be in 0..65535", self.error("[metrics]\nport = 70000\n"))
        self.assertIn("unknown key metrics.prot", self.error("[metrics]\nprot = 9000\n"))


if __name__ == "__main__":
    unittest.main()
