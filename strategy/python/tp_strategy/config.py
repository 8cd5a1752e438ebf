"""The deployment file as the Python runtime reads it: the same TOML file and
`--set section.key=value` overrides as the C++ programs (the override rule is
the supervisor's, scripts/tp_supervisor/settings.py, itself the C++ one), and
the strategy groups resolved as common/src/config.cpp resolves them
(docs/STRATEGIES.md, "The deployment file"). Only what a strategy
instance needs is read and checked here: run, endpoints, instruments,
strategy.* runtime settings, strategy.groups and security (CURVE client
keys); the C++ programs and the supervisor check the rest of the file."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field

from ._shared import SettingsError as _SettingsError
from ._shared import apply_override as _apply_override


class ConfigError(Exception):
    pass


DEFAULT_INSTRUMENTS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]
BUILTIN_KINDS = ("sma_crossover", "rsi_reversion", "breakout", "every_nth")
TAKEN_NAMES = {"gateway", "executor", "dll_gateway", "dead_letter", "supervisor"}
_GROUP_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BUILTIN_DEFAULTS = {
    "sma_crossover": {"fast": 10, "slow": 30},
    "rsi_reversion": {"period": 14, "oversold": 30.0, "overbought": 70.0},
    "breakout": {"window": 50},
    "every_nth": {"n": 100},
}
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "critical", "off")


@dataclass
class Group:
    name: str
    kind: str
    entry: str = ""
    python_path: str = ""
    instances: int = 1
    quantity: float = 1000.0
    instruments: list = field(default_factory=list)
    max_position: float = 0.0
    params: dict = field(default_factory=dict)   # key -> str, as the C++ keeps them


@dataclass
class Config:
    origin: str = "<defaults>"
    run_dir: str = "run"
    log_level: str = "info"
    stats_interval_ms: int = 1000
    min_free_bytes: int = 64 << 20
    endpoints: dict = field(default_factory=lambda: {
        "ticks": "tcp://127.0.0.1:7101", "signals": "tcp://127.0.0.1:7102",
        "order_events": "tcp://127.0.0.1:7103", "orders": "tcp://127.0.0.1:7104",
        "dead_letters": "tcp://127.0.0.1:7105"})
    instruments: list = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
    quantity: float = 1000.0
    signal_ttl_ms: int = 5000
    resend_ms: int = 1000
    feed_timeout_ms: int = 2000
    max_tick_age_ms: int = 5000
    max_clock_skew_ms: int = 1000
    give_up_after_ms: int = 60000
    groups: list = field(default_factory=list)
    security: dict = field(default_factory=dict)

    def group(self, name: str) -> Group | None:
        for g in self.groups:
            if g.name == name:
                return g
        return None

    def run_path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def param_text(v) -> str:
    """A params value as the C++ keeps it: a string. Floats keep every digit
    (repr), where the C++ prints 6 significant ones."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


class _Table:
    """One table's keys, read with types; unknown keys refused on finish()."""

    def __init__(self, table, path, origin):
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"{origin}: {path} must be a table")
        self.t, self.path, self.origin, self.used = table or {}, path, origin, set()

    def _name(self, key):
        return f"{self.path}.{key}" if self.path else key

    def wrong(self, key, what):
        raise ConfigError(f"{self.origin}: {self._name(key)} must be {what}")

    def has(self, key):
        self.used.add(key)
        return key in self.t

    def get(self, key, default, kind):
        self.used.add(key)
        if key not in self.t:
            return default
        v = self.t[key]
        if kind is str:
            if not isinstance(v, str):
                self.wrong(key, "a string")
        elif kind is int:
            if not _is_int(v) or not -2**31 <= v < 2**31:
                self.wrong(key, "an integer")
        elif kind is float:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                self.wrong(key, "a number")
            v = float(v)
            if not math.isfinite(v):
                self.wrong(key, "a finite number")
        elif kind is bool:
            if not isinstance(v, bool):
                self.wrong(key, "true or false")
        return v

    def require(self, ok, key, what):
        if not ok:
            self.wrong(key, what)

    def sub(self, key):
        self.used.add(key)
        return _Table(self.t.get(key), self._name(key), self.origin)

    def finish(self, also=()):
        for k in self.t:
            if k not in self.used and k not in also:
                raise ConfigError(f"{self.origin}: unknown key {self._name(k)}")


def parse_config(text: str, overrides=(), origin: str = "<string>") -> Config:
    try:
        root = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: {e}") from None
    for spec in overrides:
        try:
            _apply_override(root, spec)
        except _SettingsError as e:
            raise ConfigError(str(e)) from None
    c = Config(origin=origin)

    run = _Table(root.get("run"), "run", origin)
    c.run_dir = run.get("dir", c.run_dir, str)
    c.log_level = run.get("log_level", c.log_level, str)
    run.require(c.log_level in LOG_LEVELS, "log_level", "one of " + ", ".join(LOG_LEVELS))
    c.stats_interval_ms = run.get("stats_interval_ms", c.stats_interval_ms, int)
    v = run.get("min_free_bytes", c.min_free_bytes, None)
    if not _is_int(v) or v < 0:
        run.wrong("min_free_bytes", "an integer >= 0")
    c.min_free_bytes = v
    run.finish()
    run.require(c.stats_interval_ms > 0, "stats_interval_ms", "> 0")

    ep = _Table(root.get("endpoints"), "endpoints", origin)
    for key in list(c.endpoints):
        v = ep.get(key, c.endpoints[key], str)
        ep.require(v.startswith(("tcp://", "ipc://", "inproc://")), key, "a tcp://, ipc:// or inproc:// endpoint")
        c.endpoints[key] = v
    ep.finish()

    if "instruments" in root:
        items = root["instruments"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{origin}: instruments must be a non-empty array of tables ([[instruments]])")
        symbols = []
        for i, item in enumerate(items):
            t = _Table(item, f"instruments[{i}]", origin)
            sym = t.get("symbol", "", str)
            t.require(0 < len(sym) <= 32 and all(" " < ch <= "~" and ch != "." for ch in sym), "symbol",
                      "1 to 32 printable characters without '.' or spaces")
            t.require(sym not in symbols, "symbol", "unique")
            symbols.append(sym)
        c.instruments = symbols

    st = _Table(root.get("strategy"), "strategy", origin)
    shorthand = st.has("name") or st.has("instances")
    name = st.get("name", "sma_crossover", str)
    st.require(name in BUILTIN_KINDS, "name", "one of " + ", ".join(BUILTIN_KINDS))
    instances = st.get("instances", 2, int)
    st.require(1 <= instances <= 256, "instances", "in 1..256")
    c.quantity = st.get("quantity", c.quantity, float)
    st.require(c.quantity > 0, "quantity", "> 0")
    for key, low in (("signal_ttl_ms", 1), ("resend_ms", 1), ("feed_timeout_ms", 1), ("max_tick_age_ms", 1),
                     ("max_clock_skew_ms", 0), ("give_up_after_ms", 0)):
        v = st.get(key, getattr(c, key), int)
        st.require(v >= low, key, "> 0" if low else ">= 0")
        setattr(c, key, v)
    builtin = {}
    for kind, defaults in _BUILTIN_DEFAULTS.items():
        sub = st.sub(kind)
        builtin[kind] = {k: param_text(sub.get(k, v, type(v))) for k, v in defaults.items()}
        sub.finish()
    if st.has("groups"):
        c.groups = _read_groups(st.t["groups"], c, builtin, origin)
    elif shorthand:
        c.groups = [Group("strategy", name, instances=instances, quantity=c.quantity,
                          instruments=list(c.instruments), params=dict(builtin[name]))]
    else:
        c.groups = [Group("trend", "sma_crossover", instances=2, quantity=c.quantity,
                          instruments=list(c.instruments), params=dict(builtin["sma_crossover"])),
                    Group("revert", "rsi_reversion", instances=1, quantity=c.quantity,
                          instruments=list(c.instruments), params=dict(builtin["rsi_reversion"]))]
    st.finish()

    sec = _Table(root.get("security"), "security", origin)
    c.security = {k: sec.get(k, "", str) for k in ("server_public_key", "client_public_key", "client_secret_key")}
    c.security["curve"] = sec.get("curve", False, bool)
    sec.require(not c.security["curve"] or c.security["server_public_key"], "server_public_key",
                "set when curve = true")
    return c


def _read_groups(items, c, builtin, origin):
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{origin}: strategy.groups must be a non-empty array of tables ([[strategy.groups]])")
    out, names = [], set()
    for i, item in enumerate(items):
        t = _Table(item, f"strategy.groups[{i}]", origin)
        name = t.get("name", "", str)
        t.require(_GROUP_NAME.fullmatch(name) is not None and name not in TAKEN_NAMES, "name",
                  "1 to 32 of a-z, 0-9 and _, starting with a letter, not a program's name")
        t.require(name not in names, "name", "unique")
        names.add(name)
        g = Group(name, t.get("kind", "", str), quantity=c.quantity)
        t.require(g.kind in BUILTIN_KINDS or g.kind in ("plugin", "python"), "kind",
                  "sma_crossover, rsi_reversion, breakout, every_nth, plugin or python")
        plugin = t.get("plugin", "", str)
        t.require((g.kind == "plugin") == bool(plugin), "plugin",
                  'set (the strategy\'s .so) exactly when kind = "plugin"')
        g.entry = t.get("entry", "", str)
        t.require((g.kind == "python") == bool(g.entry), "entry",
                  'set ("module:Class") exactly when kind = "python"')
        mod, colon, cls = g.entry.partition(":")
        t.require(not g.entry or (colon and mod and cls), "entry", '"module:Class"')
        g.python_path = t.get("python_path", "", str)
        t.require(not g.python_path or g.kind == "python", "python_path", 'set only when kind = "python"')
        g.instances = t.get("instances", 1, int)
        t.require(1 <= g.instances <= 256, "instances", "in 1..256")
        g.quantity = t.get("quantity", c.quantity, float)
        t.require(g.quantity > 0, "quantity", "> 0")
        if t.has("instruments"):
            syms = t.t["instruments"]
            if not isinstance(syms, list) or not all(isinstance(s, str) for s in syms):
                t.wrong("instruments", "an array of strings")
            t.require(syms, "instruments", "a non-empty list (leave it out for all)")
            for s in syms:
                if s not in c.instruments:
                    raise ConfigError(f"{origin}: strategy.groups[{i}].instruments: {s} is not in [[instruments]]")
            t.require(len(set(syms)) == len(syms), "instruments", "without repeats")
            g.instruments = list(syms)
        else:
            g.instruments = list(c.instruments)
        g.max_position = t.get("max_position", 0.0, float)
        t.require(g.max_position >= 0, "max_position", ">= 0 (0 = only risk.max_position)")
        if t.has("params"):
            p = t.t["params"]
            if not isinstance(p, dict):
                t.wrong("params", "a table")
            for k, v in p.items():
                if isinstance(v, (dict, list)):
                    raise ConfigError(f"{origin}: strategy.groups[{i}].params.{k} must be a scalar")
            g.params = {k: param_text(v) for k, v in p.items()}
        else:
            g.params = dict(builtin.get(g.kind, {}))
        t.finish()
        out.append(g)
    return out


def load_config(path: str | None, overrides=()) -> Config:
    if not path:
        return parse_config("", overrides, "<defaults>")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{path}: cannot read the config file") from None
    return parse_config(text, overrides, path)
