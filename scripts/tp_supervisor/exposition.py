"""Prometheus' text exposition format (version 0.0.4), the process_* metrics
read from /proc/self, and the small HTTP server that serves GET /metrics:
the one Python implementation, used by the supervisor for its own metrics
and by the Python strategy runtime (tp_strategy.metrics). Standard library
only. MetricsText writes what common/src/metrics.cpp's MetricsText writes
for the same figures, byte for byte (tests/python_strategy/test_crosscheck.py
holds them equal), so that one PromQL query reads every process alike.

The loop renders its figures into a MetricsText and hands the text to
MetricsServer.publish, which replaces one reference; the server's threads
only read the latest one. The loop never waits on a scrape, and a slow
scraper never slows the loop (beyond the GIL a render takes). MetricsText is
not thread-safe; publish() may be called from the loop's thread while the
server serves."""

from __future__ import annotations

import bisect
import decimal
import math
import os
import re
import resource
import socket
import socketserver
import threading

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

# Bounds for latencies in seconds, 50 us to 10 s: common/metrics.hpp's
# latency_bounds_seconds(), shared so that one PromQL query sums across
# programs and runtimes.
LATENCY_BOUNDS_SECONDS = (50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
                          250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0)


def escape_label_value(value: str) -> str:
    """A label value as the exposition format quotes it: \\ " and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """A HELP text: \\ and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """The text C++'s std::to_chars(double) writes: the shortest digits that
    read back to the same double, in fixed or scientific notation, whichever
    is shorter (fixed on a tie), an integer in fixed notation written exactly
    (1.2345678901234568e+20 is 123456789012345683968); NaN, +Inf and -Inf as
    Prometheus spells them. Python's repr gives the same digits but picks
    the notation by the exponent alone (100000.0 where C++ writes 1e+05)."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exp = decimal.Decimal(repr(value)).as_tuple()
    written = "".join(map(str, digit_tuple))
    digits = written.rstrip("0")  # repr's "100000.0" is the digit 1 times 10**5
    exp += len(written) - len(digits)
    n = len(digits)
    sci_exp = n - 1 + exp
    sci = digits[0] + ("." + digits[1:] if n > 1 else "") + f"e{'-' if sci_exp < 0 else '+'}{abs(sci_exp):02d}"
    if exp >= 0:
        fixed = str(int(abs(value)))  # exact: as many digits as digits + zeros
    elif sci_exp >= 0:
        fixed = digits[:n + exp] + "." + digits[n + exp:]
    else:
        fixed = "0." + "0" * (-sci_exp - 1) + digits
    return ("-" if sign else "") + (fixed if len(fixed) <= len(sci) else sci)


def _number_text(value) -> str:
    # C++'s integer overloads write an integer with std::to_string; the
    # double one with format_value. bool is an int here as in the C++.
    if isinstance(value, int):
        return str(int(value))
    return format_value(value)


class HistogramSample:
    """Upper bounds, the counts at or below each (cumulative), sum and count
    (the +Inf bucket): common/metrics.hpp's HistogramSample."""

    __slots__ = ("upper_bounds", "cumulative_counts", "sum", "count")

    def __init__(self, upper_bounds, cumulative_counts, total, count):
        self.upper_bounds = list(upper_bounds)
        self.cumulative_counts = list(cumulative_counts)
        self.sum = total
        self.count = count


class Histogram:
    """Fixed bounds, observe() in O(log buckets). Not thread-safe: the loop
    that observes also takes the sample."""

    def __init__(self, upper_bounds=LATENCY_BOUNDS_SECONDS):
        bounds = [float(b) for b in upper_bounds]
        if any(not math.isfinite(b) for b in bounds) or any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise ValueError("histogram bounds must be finite and strictly increasing")
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, the last above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # le is "less than or equal": a value on a bound counts in that bucket.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def sample(self) -> HistogramSample:
        running, cumulative = 0, []
        for n in self.counts[:-1]:
            running += n
            cumulative.append(running)
        return HistogramSample(self.bounds, cumulative, self.sum, self.count)


class MetricsText:
    """One exposition, as common/metrics.hpp's MetricsText writes it: each
    family's HELP and TYPE once, before its first sample; a family's samples
    one after the other; the `common` labels (program, process...) first in
    every sample. A bad name, a counter not ending in _total or a family
    written in two places is a programming error: ValueError."""

    def __init__(self, common=()):
        self.common = list(common)
        for k, _ in self.common:
            self._check_label(k)
        self._parts = []
        self._current = ""
        self._families = set()

    @staticmethod
    def _check_label(name):
        if not _LABEL_NAME.match(name) or name.startswith("__") or name == "le":
            raise ValueError(f"bad label name: {name}")

    def _family(self, name, help_text, kind):
        if name == self._current:
            return
        if not _METRIC_NAME.match(name):
            raise ValueError(f"bad metric name: {name}")
        if name in self._families:
            raise ValueError(f"metric family written in two places: {name}")
        self._families.add(name)
        self._current = name
        self._parts.append(f"# HELP {name} {escape_help(help_text)}\n# TYPE {name} {kind}\n")

    def _sample(self, name, labels, value_text, extra=None):
        pairs = list(self.common)
        for k, v in labels:
            self._check_label(k)
            pairs.append((k, v))
        if extra:
            pairs.append(extra)
        body = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in pairs)
        self._parts.append(f"{name}{{{body}}} {value_text}\n" if pairs else f"{name} {value_text}\n")

    def counter(self, name, help_text, value, labels=()):
        if not name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {name}")
        self._family(name, help_text, "counter")
        self._sample(name, labels, _number_text(value))
        return self

    def gauge(self, name, help_text, value, labels=()):
        self._family(name, help_text, "gauge")
        self._sample(name, labels, _number_text(value))
        return self

    def counters(self, name, help_text, by: dict, label: str):
        """One counter sample per entry of `by` (a bounded map: reasons,
        instruments), labelled `label`, in key order; nothing when empty."""
        for key, n in sorted(by.items()):
            self.counter(name, help_text, n, [(label, key)])
        return self

    def histogram(self, name, help_text, h: HistogramSample, labels=()):
        if len(h.cumulative_counts) != len(h.upper_bounds):
            raise ValueError(f"histogram {name}: one count per bound")
        self._family(name, help_text, "histogram")
        for bound, n in zip(h.upper_bounds, h.cumulative_counts):
            self._sample(name + "_bucket", labels, str(n), ("le", format_value(bound)))
        self._sample(name + "_bucket", labels, str(h.count), ("le", "+Inf"))
        self._sample(name + "_sum", labels, format_value(h.sum))
        self._sample(name + "_count", labels, str(h.count))
        return self

    def text(self) -> str:
        return "".join(self._parts)


# ---- the process, from /proc ----

def parse_proc_stat(stat: str, ticks_per_s: int, page_size: int, boot_time_s: float):
    """{cpu_seconds, start_time_seconds, virtual_bytes, resident_bytes} from
    /proc/<pid>/stat's text, or None when it cannot be read. The command
    (field 2, in parentheses) may hold anything: the fields after it begin
    after its last ')'."""
    close = stat.rfind(")")
    if close < 0 or ticks_per_s <= 0:
        return None
    f = stat[close + 1:].split()  # f[0] is field 3 (state)
    if len(f) < 22:
        return None
    try:
        return {"cpu_seconds": (int(f[11]) + int(f[12])) / ticks_per_s,        # utime + stime
                "start_time_seconds": boot_time_s + int(f[19]) / ticks_per_s,  # starttime
                "virtual_bytes": int(f[20]),                                   # vsize
                "resident_bytes": int(f[21]) * page_size}                      # rss pages
    except ValueError:
        return None


def _boot_time_s() -> float:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def read_process_sample() -> dict:
    """This process now, as the C++ read_process_sample() reads it: a figure
    it cannot read is 0; max_fds is the soft limit as it is (2**64 - 1 when
    unlimited, as rlim_cur reads)."""
    sample = {"cpu_seconds": 0.0, "start_time_seconds": 0.0, "virtual_bytes": 0, "resident_bytes": 0}
    try:
        with open("/proc/self/stat") as f:
            sample.update(parse_proc_stat(f.read(), os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE"),
                                          _boot_time_s()) or {})
    except OSError:
        pass
    try:
        sample["open_fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:
        sample["open_fds"] = 0
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    sample["max_fds"] = 2**64 - 1 if soft == resource.RLIM_INFINITY or soft < 0 else soft
    return sample


def add_process_metrics(out: MetricsText, p: dict | None = None) -> None:
    """process_cpu_seconds_total, process_start_time_seconds,
    process_resident_memory_bytes, process_virtual_memory_bytes,
    process_open_fds, process_max_fds, with the C++ programs' HELP texts:
    `p` (read_process_sample()'s), or this process now."""
    p = p or read_process_sample()
    out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                float(p["cpu_seconds"]))
    out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              float(p["start_time_seconds"]))
    out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p["resident_bytes"])
    out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p["virtual_bytes"])
    out.gauge("process_open_fds", "Number of open file descriptors.", p["open_fds"])
    out.gauge("process_max_fds", "Maximum number of open file descriptors.", p["max_fds"])


# ---- the server ----

class MetricsBindError(OSError):
    """The server cannot listen where configured (a start-up error)."""


def is_loopback_host(host: str) -> bool:
    """As common/src/config.cpp's: 127.x.x.x, ::1 or localhost."""
    return host.startswith("127.") or host in ("::1", "localhost")


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True        # a scrape in progress never holds the process at exit
    block_on_close = False
    allow_reuse_address = True   # SO_REUSEADDR, as the C++ server: a restart rebinds at once
    allow_reuse_port = False     # no SO_REUSEPORT: a second program on the port fails at start

    def __init__(self, address, handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


class _ScrapeHandler(socketserver.StreamRequestHandler):
    """One request per connection, HTTP/1.0, no keep-alive. Written on
    socketserver rather than http.server: http.server brings http.client and
    with it ssl, +6.9 MB of resident memory measured in this runtime, for a
    server that only ever answers GET /metrics."""

    timeout = 2  # seconds, on every read and write: a stuck scraper lets go of its thread

    def handle(self):
        try:
            request = self.rfile.readline(8192).split()
            for _ in range(100):  # the headers, unread
                if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                    break
            if len(request) < 2 or request[0] != b"GET":
                self._reply(405, "text/plain; charset=utf-8", "only GET /metrics\n")
            elif request[1].split(b"?", 1)[0] != b"/metrics":
                self._reply(404, "text/plain; charset=utf-8", "not found: GET /metrics\n")
            else:
                status, body = self.server.owner._scrape()
                self._reply(status, "text/plain; version=0.0.4; charset=utf-8" if status == 200
                            else "text/plain; charset=utf-8", body)
        except OSError:
            pass  # the scraper hung up or timed out: nothing to answer

    _REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

    def _reply(self, status, content_type, body):
        data = body.encode()
        head = (f"HTTP/1.0 {status} {self._REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
        self.wfile.write(head.encode() + data)


class MetricsServer:
    """GET /metrics on host:port from daemon threads: the last published
    snapshot, then the process metrics read at the scrape, then
    tp_metrics_snapshot_timestamp_seconds (when the loop last published: a
    loop that stopped publishing shows as a stale timestamp, not as an
    unreachable target). 503 before the first publish. A thread per
    connection, one request each, a 2 s socket timeout: a scraper that holds
    its connection open cannot starve another."""

    def __init__(self, host: str, port: int, common):
        self.host = host
        self.common = list(common)
        self.scrapes = 0
        self._snapshot = None  # (text, wall_ns), replaced whole by publish()
        try:
            self._server = _TcpServer((host, port), _ScrapeHandler)
        except OSError as e:
            raise MetricsBindError(
                f"metrics: cannot listen on {host}:{port} ({e.strerror or e}: in use by another process, or not "
                "an address of this host); set metrics.port to a free port, or 0 to turn metrics off") from None
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="metrics",
                                        daemon=True)
        self._thread.start()

    def publish(self, text: str, now_wall_ns: int) -> None:
        """Makes `text` what the next scrape sees; a scrape in progress keeps
        the snapshot it took."""
        self._snapshot = (text, now_wall_ns)

    def _scrape(self):
        """(status, body) of one GET /metrics."""
        self.scrapes += 1
        snap = self._snapshot
        if snap is None:
            return 503, "no metrics published yet\n"
        text, wall_ns = snap
        tail = MetricsText(self.common)
        add_process_metrics(tail)
        tail.gauge("tp_metrics_snapshot_timestamp_seconds",
                   "When the program's loop last published these metrics, since unix epoch in seconds.",
                   wall_ns / 1e9)
        return 200, text + tail.text()

    def stop(self) -> None:
        """Stops serving and closes the socket; idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._thread = None
