"""The supervisor's Prometheus side: the port each process serves its
metrics on, the file_sd targets file that points a Prometheus at all of
them, the supervisor's own metrics, and the HTTP server that serves them.

Ports, when [metrics] port = P is not 0 (fixed offsets, so that a reader
finds a process's endpoint without asking the supervisor):
  supervisor P, gateway P+1, executor P+2, dll_gateway P+3, dead_letter P+4,
  the strategy processes P+10+slot, where slot is the lowest slot no other
  strategy process holds when the process is created; a process keeps its
  slot while it runs (a restart, or a scale that keeps it, keeps its port).

The server is exposition.MetricsServer, the Python runtime's too: it serves
the last text the arbiter's loop published (publish() swaps one reference)
and reads the process_* metrics at the scrape; the loop never waits on a
scrape. Each connection is served on a thread of its own with a 2 s socket
timeout, so a scraper that stalls holds no one but itself (the endpoint is on
loopback unless security.allow_public_bind)."""

import json
import os
import socket

from . import exposition
from .exposition import MetricsText
from .states import SCALABLE, STATES

SUPERVISOR = "supervisor"
PROGRAM_OFFSETS = {SUPERVISOR: 0, "gateway": 1, "executor": 2, "dll_gateway": 3, "dead_letter": 4}
STRATEGY_OFFSET = 10
TARGETS_FILE = "prometheus_targets.json"
HIGHEST_PORT = 65535


def lowest_free_slot(taken) -> int:
    slot = 0
    while slot in taken:
        slot += 1
    return slot


def metrics_port(base: int, program: str, slot=None) -> int:
    """Where a process of `program` (a strategy process in `slot`) serves
    its metrics under the supervisor's port `base`."""
    if program == SCALABLE:
        return base + STRATEGY_OFFSET + slot
    return base + PROGRAM_OFFSETS[program]


def address(host: str, port: int) -> str:
    """host:port as Prometheus writes a target ([::1]:port for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def target_host(host: str) -> str:
    """Where a scraper reaches an endpoint listening on `host`: a wildcard
    (0.0.0.0, ::; security.allow_public_bind) is no address to dial, so this
    machine's name instead."""
    return socket.gethostname() if host in ("0.0.0.0", "::") else host


def targets(host: str, base: int, procs) -> list:
    """The file_sd target groups: the supervisor, then each process in
    start order, each labelled tp_process=<its name> (not `process`, which
    its samples carry themselves and Prometheus would rename)."""
    entries = [(SUPERVISOR, base)] + [(p.name, metrics_port(base, p.program, p.metrics_slot)) for p in procs]
    return [{"targets": [address(target_host(host), port)], "labels": {"tp_process": name}}
            for name, port in entries]


def write_targets(run_dir: str, groups: list) -> str:
    """Replaces <run_dir>/prometheus_targets.json atomically (Prometheus
    watches it and must never read half a file); returns its path."""
    path = os.path.join(run_dir, TARGETS_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(g) for g in groups) + "\n]\n")
    os.replace(tmp, path)
    return path


def port_problem(host: str, port: int):
    """None when `port` can be listened on at `host` now, else why not. The
    probe sets SO_REUSEADDR as the servers do, so a port left in TIME_WAIT
    by the last run is free, and one another program listens on is not."""
    if not 0 < port <= HIGHEST_PORT:
        return f"port {port} is beyond {HIGHEST_PORT}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError as e:
            return f"cannot listen on {address(host, port)}: {e.strerror or e}"
    return None


# -- the supervisor's own metrics -------------------------------------------------


def render(procs, groups) -> str:
    """The supervisor's figures about its processes (the loop's part of the
    exposition; the server adds the process_* metrics at the scrape).
    `groups`: group name -> its instance count."""
    out = MetricsText()

    def labels(p):
        return [("program", p.program), ("process", p.name)]

    for p in procs:
        for state in STATES:
            out.gauge("tp_supervisor_process_state",
                      "1 for the process's current supervisor state, 0 for the others.",
                      1 if p.state == state else 0, labels(p) + [("state", state)])
    for p in procs:
        out.counter("tp_supervisor_process_restarts_total",
                    "Times the supervisor started the process again (crash, hang, or on request).",
                    p.restarts, labels(p))
    for p in procs:
        out.gauge("tp_supervisor_process_up", "1 while the process runs (has a pid), else 0.",
                  1 if p.alive else 0, labels(p))
    exited = [p for p in procs if p.last_exit_code is not None]
    for p in exited:
        out.gauge("tp_supervisor_process_last_exit_code",
                  "How the process last exited: its exit code, or 128 + N when killed by signal N.",
                  p.last_exit_code, labels(p))
    for name, n in groups.items():
        out.gauge("tp_supervisor_group_instances", "Strategy processes the group runs now.",
                  n, [("group", name)])
    return out.text()


def state_signature(procs) -> tuple:
    """What render() shows, cheaply: a change means publish now."""
    return tuple((p.name, p.state, p.restarts, p.alive, p.last_exit_code) for p in procs)


class MetricsServer(exposition.MetricsServer):
    """The supervisor's GET /metrics (exposition.MetricsServer): the last
    text the arbiter's loop published, then the supervisor's process_*
    metrics and tp_metrics_snapshot_timestamp_seconds, labelled
    program="supervisor", process="supervisor". A taken port: OSError
    (MetricsBindError) naming it."""

    def __init__(self, host: str, port: int):
        super().__init__(host, port, [("program", SUPERVISOR), ("process", SUPERVISOR)])

