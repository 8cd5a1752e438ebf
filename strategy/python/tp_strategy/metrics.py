"""Prometheus metrics for the Python runtime: the exposition writer, the
process metrics and the GET /metrics server are the supervisor's
(scripts/tp_supervisor/exposition.py, standard library only, held byte for
byte to common/src/metrics.cpp by tests/python_strategy/test_crosscheck.py);
this module names them for the runtime and starts the server as [metrics]
asks."""

import logging

from . import _shared  # noqa: F401  (puts the supervisor's package on the path)
from tp_supervisor.exposition import (LATENCY_BOUNDS_SECONDS, Histogram, HistogramSample,  # noqa: E402,F401
                                      MetricsBindError, MetricsServer, MetricsText, add_process_metrics,
                                      escape_help, escape_label_value, format_value, is_loopback_host,
                                      parse_proc_stat)

log = logging.getLogger("tp_strategy")


def start_metrics_server(host: str, port: int, program: str, process: str, extra_labels=()):
    """The server [metrics] asks for, labelled program, process and
    `extra_labels`; None when port is 0. Raises MetricsBindError."""
    if port == 0:
        return None
    server = MetricsServer(host, port, [("program", program), ("process", process), *extra_labels])
    if not is_loopback_host(host):
        log.warning("METRICS SERVED ON %s:%d WITHOUT AUTHENTICATION: anyone who can reach it can read them", host,
                    server.port)
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, server.port)
    return server
