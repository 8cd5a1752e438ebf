"""Prometheus' text exposition format (version 0.0.4) for the supervisor's
own metrics, and its process_* metrics read from /proc/self: the Python twin
of the few parts of common/include/common/metrics.hpp it needs (MetricsText,
format_value, parse_proc_stat, add_process_metrics), written the same way so
that one PromQL query reads the supervisor as it reads the programs.

Pure except read_process_sample(); MetricsText is a value, used by one thread."""

import math
import os
import re
import resource

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value) -> str:
    """The shortest text that reads back to the same double, as the C++
    writes it: 3 not 3.0, NaN, +Inf, -Inf."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class MetricsText:
    """One exposition. Each family gets its HELP and TYPE once, before its
    first sample, and its samples must be written one after the other;
    `common` labels open every sample's label set. A bad name, a counter not
    ending in _total, a family written twice: ValueError (a programming error)."""

    def __init__(self, common=()):
        self.common = list(common)
        self._lines = []
        self._families = set()
        self._current = None

    def counter(self, name: str, help_text: str, value, labels=()):
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        return self._write(name, help_text, "counter", value, labels)

    def gauge(self, name: str, help_text: str, value, labels=()):
        return self._write(name, help_text, "gauge", value, labels)

    def text(self) -> str:
        return "".join(self._lines)

    def _write(self, name, help_text, kind, value, labels):
        if name != self._current:
            if not _NAME.match(name):
                raise ValueError(f"bad metric name {name!r}")
            if name in self._families:
                raise ValueError(f"family {name} written in two places")
            self._families.add(name)
            self._current = name
            self._lines.append(f"# HELP {name} {escape_help(help_text)}\n# TYPE {name} {kind}\n")
        pairs = self.common + list(labels)
        for key, _ in pairs:
            if not _LABEL.match(key) or key.startswith("__"):
                raise ValueError(f"bad label name {key!r}")
        body = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in pairs)
        self._lines.append(f"{name}{{{body}}} {format_value(value)}\n" if body
                           else f"{name} {format_value(value)}\n")
        return self


def parse_proc_stat(stat: str, ticks_per_s: int, page_size: int, boot_time_s: float):
    """{cpu_seconds, start_time_seconds, virtual_bytes, resident_bytes} from
    /proc/<pid>/stat's text, or None when it cannot be read. The command
    (field 2) may hold spaces and parentheses: the fields after it begin
    after its last ')'."""
    close = stat.rfind(")")
    if close < 0:
        return None
    fields = stat[close + 1:].split()
    # After the command: state is field 3, so field n is fields[n - 3].
    try:
        utime, stime = int(fields[14 - 3]), int(fields[15 - 3])
        start_ticks = int(fields[22 - 3])
        vsize, rss_pages = int(fields[23 - 3]), int(fields[24 - 3])
    except (IndexError, ValueError):
        return None
    return {"cpu_seconds": (utime + stime) / ticks_per_s,
            "start_time_seconds": boot_time_s + start_ticks / ticks_per_s,
            "virtual_bytes": vsize, "resident_bytes": rss_pages * page_size}


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
    """This process now, as add_process_metrics wants it; what cannot be
    read stays 0."""
    sample = {"cpu_seconds": 0.0, "start_time_seconds": 0.0, "virtual_bytes": 0, "resident_bytes": 0}
    try:
        with open("/proc/self/stat") as f:
            parsed = parse_proc_stat(f.read(), os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE"),
                                     _boot_time_s())
        sample.update(parsed or {})
    except OSError:
        pass
    try:
        sample["open_fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:
        sample["open_fds"] = 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    sample["max_fds"] = soft if soft != resource.RLIM_INFINITY else 0
    return sample


def add_process_metrics(out: MetricsText, p: dict) -> None:
    """The standard process_* families, with the C++ programs' HELP texts."""
    out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                p["cpu_seconds"])
    out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              p["start_time_seconds"])
    out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p["resident_bytes"])
    out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p["virtual_bytes"])
    out.gauge("process_open_fds", "Number of open file descriptors.", p["open_fds"])
    out.gauge("process_max_fds", "Maximum number of open file descriptors.", p["max_fds"])
