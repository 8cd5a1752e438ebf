"""The deployment file as the Python runtime reads it: the same TOML file and
`--set section.key=value` overrides as the C++ programs. The override rule
and the strategy groups (builtin parameters, the one-group shorthand, the
default groups, their checks and error texts) are the supervisor's reading,
scripts/tp_supervisor/settings.py, which tests/supervisor/
test_config_agreement.py holds equal to common/src/config.cpp's
(docs/STRATEGIES.md, "The deployment file"); a float parameter alone differs:
the runtime keeps every digit (repr) where the C++ prints 6 significant ones.
Read and checked here is what a strategy instance needs beyond the groups:
run, endpoints, instruments, strategy.* runtime settings, network (the
link options every socket gets; ranges checked by the C++ programs),
security (CURVE client keys) and metrics (the Prometheus endpoint, checked
as common/src/config.cpp checks it); the C++ programs and the supervisor
check the rest of the file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ._shared import (DEFAULT_ENDPOINTS, DEFAULT_INSTRUMENTS, STRATEGY_GROUP_KEYS, Section, Settings,
                      StrategyGroup, is_int, read_endpoints, read_hosts, read_root, read_strategy, read_text)
from ._shared import SettingsError as ConfigError
from .metrics import is_loopback_host

# A resolved [[strategy.groups]] entry (name, kind, entry, python_path,
# instances, quantity, instruments, max_position, params as text).
Group = StrategyGroup
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "critical", "off")
# [network] and its defaults, as common/config.hpp's NetworkConfig.
NETWORK_DEFAULTS = {"heartbeat_ms": 0, "heartbeat_timeout_ms": 3000, "reconnect_ms": 100,
                    "reconnect_max_ms": 500, "connect_timeout_ms": 1000, "tcp_keepalive": True,
                    "tcp_keepalive_idle_s": 1, "tcp_keepalive_interval_s": 1, "tcp_keepalive_count": 2}


@dataclass
class Config:
    origin: str = "<defaults>"
    run_dir: str = "run"
    log_level: str = "info"
    stats_interval_ms: int = 1000
    min_free_bytes: int = 64 << 20
    endpoints: dict = field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))
    instruments: list = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
    quantity: float = 1000.0
    signal_ttl_ms: int = 5000
    resend_ms: int = 1000
    feed_timeout_ms: int = 2000
    max_tick_age_ms: int = 5000
    max_signal_tick_age_ms: int = 250
    max_clock_skew_ms: int = 1000
    give_up_after_ms: int = 60000
    groups: list = field(default_factory=list)
    security: dict = field(default_factory=dict)
    network: dict = field(default_factory=lambda: dict(NETWORK_DEFAULTS))
    metrics_host: str = "127.0.0.1"  # [metrics] host: loopback unless security.allow_public_bind
    metrics_port: int = 0            # [metrics] port: 0 = no metrics endpoint

    def group(self, name: str) -> Group | None:
        for g in self.groups:
            if g.name == name:
                return g
        return None

    def run_path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)


def _section(value, path, origin) -> Section:
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{origin}: {path} must be a table")
    return Section(value, path, origin)


def parse_config(text: str, overrides=(), origin: str = "<string>") -> Config:
    root = read_root(text, overrides, origin)
    c = Config(origin=origin)

    run = _section(root.get("run"), "run", origin)
    c.run_dir = run.string("dir", c.run_dir)
    c.log_level = run.string("log_level", c.log_level)
    run.require(c.log_level in LOG_LEVELS, "log_level", "one of " + ", ".join(LOG_LEVELS))
    c.stats_interval_ms = run.integer("stats_interval_ms", c.stats_interval_ms)
    if run.has("min_free_bytes"):
        c.min_free_bytes = run.table["min_free_bytes"]
        run.require(is_int(c.min_free_bytes) and c.min_free_bytes >= 0, "min_free_bytes", "an integer >= 0")
    run.finish()
    run.require(c.stats_interval_ms > 0, "stats_interval_ms", "> 0")

    # Every endpoint of the file, the executor's and dll_gateway's own
    # (reports, control) among them, read and checked as the C++ programs
    # read them: a strategy uses four, and refuses none of the others.
    ep = _section(root.get("endpoints"), "endpoints", origin)
    c.endpoints = read_endpoints(root, origin)
    for key, v in c.endpoints.items():
        ep.require(v.startswith(("tcp://", "ipc://", "inproc://")), key, "a tcp://, ipc:// or inproc:// endpoint")
    ep.used.update(c.endpoints)
    ep.finish()

    if "instruments" in root:
        items = root["instruments"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{origin}: instruments must be a non-empty array of tables ([[instruments]])")
        symbols = []
        for i, item in enumerate(items):
            t = _section(item, f"instruments[{i}]", origin)
            sym = t.string("symbol", "")
            t.require(0 < len(sym) <= 32 and all(" " < ch <= "~" and ch != "." for ch in sym), "symbol",
                      "1 to 32 printable characters without '.' or spaces")
            t.require(sym not in symbols, "symbol", "unique")
            symbols.append(sym)
        c.instruments = symbols

    st = _section(root.get("strategy"), "strategy", origin)
    # [[hosts]] only for the groups' `hosts` keys, which name them.
    groups = Settings(instruments=c.instruments, hosts=read_hosts(root, origin))
    read_strategy(groups, st.table, origin, num_text=repr)
    c.groups, c.quantity = groups.groups, groups.quantity
    for key, low in (("signal_ttl_ms", 1), ("resend_ms", 1), ("feed_timeout_ms", 1), ("max_tick_age_ms", 1),
                     ("max_signal_tick_age_ms", 1), ("max_clock_skew_ms", 0), ("give_up_after_ms", 0)):
        v = st.integer(key, getattr(c, key))
        st.require(v >= low, key, "> 0" if low else ">= 0")
        setattr(c, key, v)
    st.used.update(STRATEGY_GROUP_KEYS)
    st.finish()

    net = _section(root.get("network"), "network", origin)
    for key, default in NETWORK_DEFAULTS.items():
        c.network[key] = net.flag(key, default) if isinstance(default, bool) else net.integer(key, default)
        net.require(isinstance(default, bool) or c.network[key] >= 0, key, ">= 0")
    net.finish()

    sec = _section(root.get("security"), "security", origin)
    c.security = {k: sec.string(k, "") for k in ("server_public_key", "client_public_key", "client_secret_key")}
    c.security["curve"] = sec.flag("curve", False)
    sec.require(not c.security["curve"] or c.security["server_public_key"], "server_public_key",
                "set when curve = true")
    allow_public_bind = sec.flag("allow_public_bind", False)

    mx = _section(root.get("metrics"), "metrics", origin)
    c.metrics_host = mx.string("host", c.metrics_host)
    mx.require(bool(c.metrics_host), "host", "an address of this host (127.0.0.1 by default)")
    # The endpoint has no authentication: like the ZeroMQ binds, beyond
    # loopback only when the operator says so.
    mx.require(allow_public_bind or is_loopback_host(c.metrics_host), "host",
               "a loopback address (127.x.x.x, ::1 or localhost) unless security.allow_public_bind = true")
    c.metrics_port = mx.integer("port", c.metrics_port)
    mx.require(0 <= c.metrics_port <= 65535, "port", "in 0..65535 (0 = off)")
    mx.finish()
    return c


def load_config(path: str | None, overrides=()) -> Config:
    if not path:
        return parse_config("", overrides, "<defaults>")
    return parse_config(read_text(path), overrides, path)
