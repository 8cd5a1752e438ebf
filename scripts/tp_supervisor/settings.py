"""Configuration: the same TOML file and --set overrides as the C++ programs
(common/src/config.cpp), reduced to what the supervisor reads: run.dir and
the stats period, the instruments, [supervisor], the hosts and the strategy
groups, which it resolves exactly as common/src/config.cpp does (read_hosts,
read_groups, shorthand_group, default_groups, check_endpoints_on_hosts;
tests/supervisor/test_config_agreement.py compares the two readings), with
the same error texts. Also what one host runs (processes_on_host) and the
command line each process is started with (command_line), shared by the
supervisor and the systemd unit generator."""

from __future__ import annotations

import math
import os
import sys
import tomllib
from dataclasses import dataclass, field

from .states import PYTHON_MODULE, PROGRAMS as START_ORDER

MAX_INSTANCES = 256

DEFAULT_INSTRUMENTS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]

# common/include/common/config.hpp's builtin_strategy_kinds.
BUILTIN_KINDS = ["sma_crossover", "rsi_reversion", "breakout", "every_nth"]
# Names a group may not take: programs' (its files would collide) and "flatten"
# (the kill switch's closing orders' signal ids begin so).
PROGRAM_NAMES = {"gateway", "executor", "dll_gateway", "dead_letter", "supervisor", "flatten"}
# The name of the one-group shorthand's group (processes strategy-<k>).
SHORTHAND_GROUP = "strategy"

# The built-in strategies' parameters ([strategy.<kind>]) and their defaults.
BUILTIN_PARAM_DEFAULTS = {
    "sma_crossover": {"fast": 10, "slow": 30},
    "rsi_reversion": {"period": 14, "oversold": 30.0, "overbought": 70.0},
    "breakout": {"window": 50},
    "every_nth": {"n": 100},
}


class ConfigError(Exception):
    pass


@dataclass
class StrategyGroup:
    """One [[strategy.groups]] entry, resolved (C++ tp::StrategyGroup):
    `instances` processes <name>-0..<name>-(n-1) over `instruments`."""
    name: str
    kind: str                  # a built-in name, "plugin" or "python"
    plugin: str = ""           # kind "plugin": the shared library
    entry: str = ""            # kind "python": "module:Class"
    python_path: str = ""      # kind "python": a directory put first on sys.path
    instances: int = 1
    quantity: float = 1000.0
    instruments: list = field(default_factory=list)
    max_position: float = 0.0
    max_orders_per_second: float = 0.0
    params: dict = field(default_factory=dict)   # str -> str, as the C++ keeps them
    # Its signals' default order terms (C++ tp::OrderSettings, StrategyGroup::orders).
    order_type: str = "market"     # "market" | "limit"
    time_in_force: str = "ioc"     # "ioc" | "gtc" | "gtd"; a market order is always ioc
    limit_offset_bps: float = 0.0  # a BUY's limit at trigger x (1 - bps/1e4), a SELL's x (1 + bps/1e4)
    good_till_ms: int = 0          # gtd: good till created + this; 0 = the signal's TTL
    cancel_after_ms: int = 0       # built-ins cancel an order still open this long after; 0 = never
    # With [[hosts]]: where its shards run, instance k on hosts[k % len(hosts)];
    # left out in the file: strategy_hosts(). [] without [[hosts]].
    hosts: list = field(default_factory=list)


@dataclass
class Host:
    """One [[hosts]] entry (C++ tp::Host): a machine of the deployment, the
    address the other hosts dial it at, and the programs it runs."""
    name: str
    address: str
    programs: list = field(default_factory=list)


# The programs [[hosts]] places (C++ placed_programs); strategy shards go
# where their group's hosts say.
PLACED_PROGRAMS = ["gateway", "executor", "dll_gateway", "dead_letter"]


def strategy_hosts(hosts) -> list:
    """Where a group without its own `hosts` runs: the hosts that run no
    placed program, or every host when each runs one; [] without hosts."""
    idle = [h.name for h in hosts if not h.programs]
    return idle or [h.name for h in hosts]


# The order-term keys of a group, and of [strategy] as every group's default.
ORDER_KEYS = ["order_type", "time_in_force", "limit_offset_bps", "good_till_ms", "cancel_after_ms"]


def default_orders() -> dict:
    """The order terms a group has when neither it nor [strategy] sets them."""
    return {"order_type": "market", "time_in_force": "ioc", "limit_offset_bps": 0.0,
            "good_till_ms": 0, "cancel_after_ms": 0}


def read_orders(sec: "Section", defaults: dict) -> dict:
    """The order-term keys of one table over `defaults` (C++ read_order_settings:
    the same checks in the same order, the same texts)."""
    o = dict(defaults)
    o["order_type"] = sec.string("order_type", o["order_type"])
    sec.require(o["order_type"] in ("market", "limit"), "order_type", '"market" or "limit"')
    o["time_in_force"] = sec.string("time_in_force", o["time_in_force"])
    sec.require(o["time_in_force"] in ("ioc", "gtc", "gtd"), "time_in_force", '"ioc", "gtc" or "gtd"')
    sec.require(o["order_type"] == "limit" or o["time_in_force"] == "ioc", "time_in_force",
                '"ioc" when order_type = "market" (a market order never rests)')
    o["limit_offset_bps"] = sec.number("limit_offset_bps", o["limit_offset_bps"])
    sec.require(0 <= o["limit_offset_bps"] < 10000, "limit_offset_bps",
                "in [0, 10000) (a BUY's limit is trigger x (1 - bps/1e4))")
    o["good_till_ms"] = sec.integer("good_till_ms", o["good_till_ms"])
    sec.require(o["good_till_ms"] >= 0, "good_till_ms", ">= 0 (0 = the signal's TTL)")
    o["cancel_after_ms"] = sec.integer("cancel_after_ms", o["cancel_after_ms"])
    sec.require(o["cancel_after_ms"] >= 0, "cancel_after_ms", ">= 0 (0 = never)")
    sec.require(o["cancel_after_ms"] == 0 or o["time_in_force"] != "ioc", "cancel_after_ms",
                '0 when time_in_force = "ioc" (an IOC order never rests)')
    return o


def _num_text(v) -> str:
    """A double as C++'s `std::ostringstream << v` writes it (%g)."""
    return "%g" % v


def builtin_params(tables: dict, kind: str, num_text=_num_text) -> dict:
    """A built-in kind's parameters as strings, from the [strategy.<kind>]
    values in `tables` (C++ builtin_params: ints as integers, the RSI levels as
    doubles, written by `num_text`)."""
    t = tables.get(kind)
    if t is None:
        return {}
    if kind == "rsi_reversion":
        return {"period": str(t["period"]), "oversold": num_text(t["oversold"]),
                "overbought": num_text(t["overbought"])}
    return {k: str(v) for k, v in t.items()}


# The default deployment's revert group sets its own order terms, as its
# entry in config/default.toml does (so they win over [strategy]'s): passive
# limits that rest, most filled later, the rest cancelled after a second.
REVERT_ORDERS = {"order_type": "limit", "time_in_force": "gtc", "limit_offset_bps": 1.0,
                 "cancel_after_ms": 1000}


def default_groups(instruments, tables=None, quantity=1000.0, num_text=_num_text, orders=None,
                   hosts=()) -> list:
    """The embedded default deployment: trend (sma_crossover x2, [strategy]'s
    order terms) and revert (rsi_reversion x1, limit GTC orders cancelled
    after 1 s: REVERT_ORDERS), every instrument (C++ default_groups)."""
    tables = tables or BUILTIN_PARAM_DEFAULTS
    orders = orders or default_orders()
    return [StrategyGroup(name=name, kind=kind, instances=n, quantity=quantity,
                          instruments=list(instruments), params=builtin_params(tables, kind, num_text),
                          hosts=strategy_hosts(hosts), **{**orders, **own})
            for name, kind, n, own in (("trend", "sma_crossover", 2, {}),
                                       ("revert", "rsi_reversion", 1, REVERT_ORDERS))]


@dataclass
class Settings:
    run_dir: str = "run"
    instances: int = 2   # strategy.instances: the one-group shorthand's count
    quantity: float = 1000.0  # strategy.quantity: a group's default
    instruments: list = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
    # Never empty: [[strategy.groups]], the shorthand's one group, or the default two.
    groups: list = field(default_factory=lambda: default_groups(DEFAULT_INSTRUMENTS))
    bin_dir: str = ""
    control: str = ""
    backoff_min_ms: int = 250
    backoff_max_ms: int = 8000
    flap_window_s: int = 30
    flap_max_restarts: int = 5
    stop_grace_ms: int = 3000
    healthy_after_ms: int = 5000
    hang_timeout_ms: int = 5000   # no heartbeat this long: HUNG (0: not watched)
    restart_hung: bool = False    # SIGKILL and restart a HUNG process
    stats_interval_ms: int = 1000  # run.stats_interval_ms: the heartbeat period
    hosts: list = field(default_factory=list)   # [Host]; [] = one machine runs everything
    control_port: int = 0        # tcp control for tpctl on other hosts; 0 = the Unix socket only
    control_secret: str = ""     # its shared secret's file (remote.read_secret)
    metrics_host: str = "127.0.0.1"  # [metrics] host: where every process serves /metrics
    metrics_port: int = 0   # [metrics] port: the supervisor's; 0 = no process serves metrics

    def find_group(self, name: str):
        """The group called `name`; None when there is none."""
        return next((g for g in self.groups if g.name == name), None)


SUPERVISOR_INTS = ["backoff_min_ms", "backoff_max_ms", "flap_window_s",
                   "flap_max_restarts", "stop_grace_ms", "healthy_after_ms"]
SUPERVISOR_BOOLS = ["restart_hung"]


def apply_override(root: dict, spec: str) -> None:
    """Stores `section.key=value` in `root`; value is TOML, or a bare string."""
    path, eq, value = spec.partition("=")
    if not eq or not path:
        raise ConfigError(f"override '{spec}' must look like section.key=value")
    parts = path.split(".")
    table = root
    for part in parts[:-1]:
        child = table.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {path}: {part} is not a table")
        table = child
    try:
        parsed = tomllib.loads("v = " + value)["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: take it as a string, as the C++ does
    table[parts[-1]] = parsed


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_is_int = is_int


def read_root(toml_text: str, overrides, origin: str) -> dict:
    """The file's tables with the --set overrides applied."""
    try:
        root = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: {e}") from None
    for spec in overrides:
        apply_override(root, spec)
    return root


def read_text(path: str) -> str:
    """A config file's text; ConfigError when it cannot be read as UTF-8."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{path}: cannot read the config file") from None


def parse_settings(toml_text: str, overrides=(), origin: str = "<string>") -> Settings:
    """Settings from TOML text + overrides; raises ConfigError naming the key."""
    root = read_root(toml_text, overrides, origin)

    def table(name):
        t = root.get(name, {})
        if not isinstance(t, dict):
            raise ConfigError(f"{origin}: {name} must be a table")
        return t

    s = Settings()
    run = table("run")
    if "dir" in run:
        if not isinstance(run["dir"], str):
            raise ConfigError(f"{origin}: run.dir must be a string")
        s.run_dir = run["dir"]
    if "stats_interval_ms" in run:
        v = run["stats_interval_ms"]
        if not _is_int(v) or not 0 < v < 2**31:
            raise ConfigError(f"{origin}: run.stats_interval_ms must be an integer > 0")
        s.stats_interval_ms = v

    if "instruments" in root:
        items = root["instruments"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{origin}: instruments must be a non-empty array of tables")
        symbols = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
                raise ConfigError(f"{origin}: instruments[{i}].symbol must be a string")
            symbols.append(item["symbol"])
        s.instruments = symbols

    # Before the strategy groups, which name hosts.
    s.hosts = read_hosts(root, origin)
    read_strategy(s, table("strategy"), origin)

    sv = table("supervisor")
    known = {"bin_dir", "control", "hang_timeout_ms", "control_port", "control_secret", *SUPERVISOR_INTS,
             *SUPERVISOR_BOOLS}
    for key in sv:
        if key not in known:
            raise ConfigError(f"{origin}: unknown key supervisor.{key}")
    for key in ("bin_dir", "control"):
        if key in sv:
            if not isinstance(sv[key], str):
                raise ConfigError(f"{origin}: supervisor.{key} must be a string")
            setattr(s, key, sv[key])
    for key in SUPERVISOR_INTS:
        if key in sv:
            v = sv[key]
            if not _is_int(v) or not -2**31 <= v < 2**31:
                raise ConfigError(f"{origin}: supervisor.{key} must be an integer")
            if v <= 0:
                raise ConfigError(f"{origin}: supervisor.{key} must be > 0")
            setattr(s, key, v)
    for key in SUPERVISOR_BOOLS:
        if key in sv:
            if not isinstance(sv[key], bool):
                raise ConfigError(f"{origin}: supervisor.{key} must be true or false")
            setattr(s, key, sv[key])
    if "hang_timeout_ms" in sv:
        v = sv["hang_timeout_ms"]
        if not _is_int(v) or not 0 <= v < 2**31:
            raise ConfigError(f"{origin}: supervisor.hang_timeout_ms must be an integer >= 0")
        s.hang_timeout_ms = v
    read_control(s, sv, origin)
    read_metrics(s, root, origin)
    if s.backoff_max_ms < s.backoff_min_ms:
        raise ConfigError(f"{origin}: supervisor.backoff_max_ms must be >= backoff_min_ms")
    if s.hang_timeout_ms and s.hang_timeout_ms < 2 * s.stats_interval_ms:
        raise ConfigError(f"{origin}: supervisor.hang_timeout_ms must be 0 (off) or "
                          f">= 2 * run.stats_interval_ms ({2 * s.stats_interval_ms})")
    check_endpoints_on_hosts(s.hosts, root, origin)
    return s


def read_control(s: Settings, sv: dict, origin: str) -> None:
    """supervisor.control_port and control_secret (C++ the same checks and texts)."""
    sec = Section(sv, "supervisor", origin)
    s.control_port = sec.integer("control_port", 0)
    sec.require(0 <= s.control_port <= 65535, "control_port", "in 0..65535 (0 = the Unix socket only)")
    s.control_secret = sec.string("control_secret", "")
    sec.require(s.control_port == 0 or bool(s.control_secret), "control_secret",
                "set (a file holding the shared secret, mode 0600) when control_port is set")


def tcp_control(settings: Settings, host: str | None):
    """(address, port) of a supervisor's tcp control: `host`'s address, or
    127.0.0.1 for a supervisor of every process; None when control_port is 0."""
    if not settings.control_port:
        return None
    h = next((h for h in settings.hosts if h.name == host), None)
    return (h.address if h else "127.0.0.1", settings.control_port)


def choose_host(settings: Settings, host: str | None, all_hosts: bool = False):
    """The host a supervisor runs the share of (None: every process), from
    --host and --all-hosts; ConfigError for a combination that makes no sense.
    A file with [[hosts]] needs one of the two: run on one machine by
    mistake, it would start the whole deployment there."""
    names = ", ".join(h.name for h in settings.hosts)
    if host is not None and all_hosts:
        raise ConfigError("--host and --all-hosts exclude each other")
    if not settings.hosts:
        if host is not None or all_hosts:
            raise ConfigError(f"{'--host ' + host if host else '--all-hosts'}: the deployment file has no [[hosts]]")
        return None
    if all_hosts:
        return None
    if host is None:
        raise ConfigError(f"the deployment places its programs on hosts {names}: run each host's share "
                          "there with --host NAME, or every process on this machine with --all-hosts "
                          "(its endpoints' addresses must then be this machine's)")
    if host not in {h.name for h in settings.hosts}:
        raise ConfigError(f"--host {host}: no such host in the deployment file (hosts: {names})")
    return host


def _valid_host_name(name: str) -> bool:
    return (0 < len(name) <= 32 and "a" <= name[0] <= "z"
            and all("a" <= ch <= "z" or "0" <= ch <= "9" or ch in "_-" for ch in name))


def _valid_host_address(address: str) -> bool:
    """C++ valid_host_address: an IP address or a host name others can dial
    (a wildcard is bound by one program and dialled by the others: nobody
    can dial 0.0.0.0)."""
    return (0 < len(address) <= 253 and address not in ("0.0.0.0", "::")
            and all(ch.isascii() and (ch.isalnum() or ch in ".-:") for ch in address))


def read_hosts(root: dict, origin: str) -> list:
    """[[hosts]] (C++ read_hosts: the same checks in the same order, the same
    texts): [Host], [] when the file has none."""
    if "hosts" not in root:
        return []
    items = root["hosts"]
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{origin}: hosts must be a non-empty array of tables ([[hosts]])")
    out, names, addresses, placed = [], set(), set(), {}
    for i, item in enumerate(items):
        path = f"hosts[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{origin}: {path} must be a table")
        sec = Section(item, path, origin)
        h = Host(name=sec.string("name", ""), address="")
        sec.require(_valid_host_name(h.name), "name", "1 to 32 of a-z, 0-9, _ and -, starting with a letter")
        sec.require(h.name not in names, "name", "unique")
        names.add(h.name)
        h.address = sec.string("address", "")
        sec.require(_valid_host_address(h.address), "address",
                    "the address the other hosts dial it at (an IP address or a host name, not 0.0.0.0 nor ::)")
        sec.require(h.address not in addresses, "address", "unique (one address per host)")
        addresses.add(h.address)
        h.programs = sec.strings("programs") if sec.has("programs") else []
        for p in h.programs:
            if p not in PLACED_PROGRAMS:
                raise ConfigError(f"{origin}: {path}.programs: {p} is not one of gateway, executor, "
                                  "dll_gateway, dead_letter (strategy shards go where their group's hosts say)")
            if p in placed:
                raise ConfigError(f"{origin}: {path}.programs: {p} already runs on host {placed[p]} "
                                  "(each program runs on one host)")
            placed[p] = h.name
        sec.finish()
        out.append(h)
    for p in PLACED_PROGRAMS:
        if p not in placed:
            raise ConfigError(f"{origin}: hosts: no host runs {p} (each of gateway, executor, dll_gateway, "
                              "dead_letter is in one host's programs)")
    return out


def host_of(hosts, program: str):
    """The Host running `program` (a placed program); None without hosts."""
    return next((h for h in hosts if program in h.programs), None)


# Which program binds each endpoint, in the order common/src/config.cpp checks them.
ENDPOINT_BINDERS = [("ticks", "gateway"), ("signals", "executor"), ("order_events", "executor"),
                    ("orders", "dll_gateway"), ("dead_letters", "dead_letter"),
                    ("reports", "dll_gateway"), ("control", "executor")]
DEFAULT_ENDPOINTS = {"ticks": "tcp://127.0.0.1:7101", "signals": "tcp://127.0.0.1:7102",
                     "order_events": "tcp://127.0.0.1:7103", "orders": "tcp://127.0.0.1:7104",
                     "dead_letters": "tcp://127.0.0.1:7105"}


def derived_endpoint(orders: str, offset: int, name: str) -> str:
    """common/endpoints.cpp's derived: tcp://H:N -> tcp://H:(N+offset),
    ipc://P and inproc://N -> P.name."""
    if orders.startswith("tcp://"):
        host, colon, port = orders.rpartition(":")
        if len(host) >= 6 and port.isdigit() and int(port) + offset <= 65535:
            return f"{host}:{int(port) + offset}"
        raise ConfigError(f"endpoints.{name}: cannot derive it from orders = '{orders}' (no numeric port): set it")
    return f"{orders}.{name}"


def read_endpoints(root: dict, origin: str) -> dict:
    """[endpoints] with the defaults and the derived reports and control
    endpoints (the C++ programs check their form; this is for the hosts)."""
    sec = Section(root.get("endpoints"), "endpoints", origin)
    out = {key: sec.string(key, default) for key, default in DEFAULT_ENDPOINTS.items()}
    for key, offset in (("reports", 2), ("control", 3)):
        out[key] = sec.string(key, "")
        if not out[key]:
            try:
                out[key] = derived_endpoint(out["orders"], offset, key)
            except ConfigError as e:
                raise ConfigError(f"{origin}: {e}") from None
    return out


def endpoint_host(endpoint: str) -> str:
    """The host of a tcp endpoint (tcp://[::1]:P -> ::1); "" for another transport."""
    if not endpoint.startswith("tcp://"):
        return ""
    host = endpoint[6:].rpartition(":")[0] if ":" in endpoint[6:] else endpoint[6:]
    return host[1:-1] if len(host) >= 2 and host[0] == "[" and host[-1] == "]" else host


def check_endpoints_on_hosts(hosts, root: dict, origin: str) -> None:
    """With [[hosts]], each endpoint is a tcp address of the host whose
    program binds it (C++ check_endpoints_on_hosts): the other hosts dial
    that very string."""
    if not hosts:
        return
    endpoints = read_endpoints(root, origin)
    for key, program in ENDPOINT_BINDERS:
        host = host_of(hosts, program)
        if endpoint_host(endpoints[key]) != host.address:
            address = f"[{host.address}]" if ":" in host.address else host.address
            raise ConfigError(f"{origin}: endpoints.{key} must be tcp://{address}:PORT "
                              f"({program} binds it on host {host.name})")


def is_loopback_host(host: str) -> bool:
    """common/src/config.cpp's is_loopback_host."""
    return host.startswith("127.") or host in ("::1", "localhost")


def read_metrics(s: Settings, root: dict, origin: str) -> None:
    """[metrics] host and port, checked as common/src/config.cpp checks
    them (security.allow_public_bind lets the host be public), same texts."""
    sec = Section(root.get("security"), "security", origin)
    public_ok = sec.flag("allow_public_bind", False)
    mx = Section(root.get("metrics"), "metrics", origin)
    s.metrics_host = mx.string("host", s.metrics_host)
    mx.require(bool(s.metrics_host), "host", "an address of this host (127.0.0.1 by default)")
    mx.require(public_ok or is_loopback_host(s.metrics_host), "host",
               "a loopback address (127.x.x.x, ::1 or localhost) unless security.allow_public_bind = true")
    s.metrics_port = mx.integer("port", s.metrics_port)
    mx.require(0 <= s.metrics_port <= 65535, "port", "in 0..65535 (0 = off)")
    mx.finish()


class Section:
    """One table's keys read as common/src/config.cpp's Section reads them:
    the same types accepted, the same error texts naming the key (the Python
    strategy runtime reads its own keys with it too)."""

    def __init__(self, table, path: str, origin: str, num_text=_num_text):
        self.table = table if table is not None else {}
        self.path = path
        self.origin = origin
        self.num_text = num_text
        self.used = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def wrong(self, key: str, what: str):
        raise ConfigError(f"{self.origin}: {self.key(key)} must be {what}")

    def require(self, ok: bool, key: str, what: str) -> None:
        if not ok:
            self.wrong(key, what)

    def has(self, key: str) -> bool:
        self.used.add(key)
        return key in self.table

    def _typed(self, key: str, default, kind: type, what: str):
        if not self.has(key):
            return default
        v = self.table[key]
        self.require(isinstance(v, kind), key, what)
        return v

    def string(self, key: str, default: str) -> str:
        return self._typed(key, default, str, "a string")

    def flag(self, key: str, default: bool) -> bool:
        return self._typed(key, default, bool, "true or false")

    def integer(self, key: str, default: int) -> int:
        if not self.has(key):
            return default
        v = self.table[key]
        self.require(is_int(v), key, "an integer")
        self.require(-2**31 <= v < 2**31, key, "an integer in range")
        return v

    def number(self, key: str, default: float) -> float:
        if not self.has(key):
            return default
        v = self.table[key]
        self.require(isinstance(v, (int, float)) and not isinstance(v, bool), key, "a number")
        v = float(v)
        self.require(math.isfinite(v), key, "a finite number")
        return v

    def strings(self, key: str) -> list:
        v = self.table[key]
        self.used.add(key)
        self.require(isinstance(v, list) and all(isinstance(x, str) for x in v), key,
                     "an array of strings")
        return list(v)

    def scalars(self, key: str) -> dict:
        """A table of scalars, kept as strings as the C++ keeps them."""
        v = self.table[key]
        self.used.add(key)
        self.require(isinstance(v, dict), key, "a table")
        out = {}
        for name, x in v.items():
            if isinstance(x, bool):
                out[name] = "true" if x else "false"
            elif isinstance(x, (str, int)):
                out[name] = str(x)
            elif isinstance(x, float):
                out[name] = self.num_text(x)
            else:
                raise ConfigError(f"{self.origin}: {self.key(key)}.{name} must be a scalar")
        return out

    def sub(self, key: str) -> "Section":
        self.used.add(key)
        v = self.table.get(key)
        self.require(v is None or isinstance(v, dict), key, "a table")
        return Section(v, self.key(key), self.origin, self.num_text)

    def finish(self) -> None:
        for k in self.table:
            if k not in self.used:
                raise ConfigError(f"{self.origin}: unknown key {self.key(k)}")


def _valid_group_name(name: str) -> bool:
    return (0 < len(name) <= 32 and "a" <= name[0] <= "z"
            and all("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_" for ch in name)
            and name not in PROGRAM_NAMES)


# The [strategy] keys read_strategy reads; the rest are the strategy programs'.
STRATEGY_GROUP_KEYS = ["name", "instances", "quantity", *ORDER_KEYS, *BUILTIN_KINDS, "groups"]


def read_strategy(s: Settings, table: dict, origin: str, num_text=_num_text) -> None:
    """[strategy]: the shorthand's name and instances, the default quantity,
    the built-ins' parameter tables, and the groups over s.instruments (C++
    from_table's strategy part, same order of checks). The runtime keys
    (signal_ttl_ms, ...) are the strategy programs' to check. `num_text` writes
    a float parameter: %g as the C++ does; the Python runtime keeps every
    digit (repr)."""
    st = Section(table, "strategy", origin)
    shorthand = "name" in table or "instances" in table
    name = st.string("name", "sma_crossover")
    st.require(name in BUILTIN_KINDS, "name", "one of " + ", ".join(BUILTIN_KINDS))
    s.instances = st.integer("instances", 2)
    st.require(1 <= s.instances <= MAX_INSTANCES, "instances", f"in 1..{MAX_INSTANCES}")
    s.quantity = quantity = st.number("quantity", 1000.0)
    st.require(quantity > 0, "quantity", "> 0")
    orders = read_orders(st, default_orders())

    tables = {}
    t = st.sub("sma_crossover")
    tables["sma_crossover"] = sma = {"fast": t.integer("fast", 10), "slow": t.integer("slow", 30)}
    t.require(sma["fast"] >= 1, "fast", ">= 1")
    t.require(sma["slow"] > sma["fast"], "slow", "> fast")
    t.finish()
    t = st.sub("rsi_reversion")
    tables["rsi_reversion"] = rsi = {"period": t.integer("period", 14),
                                     "oversold": t.number("oversold", 30.0),
                                     "overbought": t.number("overbought", 70.0)}
    t.require(rsi["period"] >= 2, "period", ">= 2")
    t.require(0 < rsi["oversold"] < rsi["overbought"] < 100, "oversold", "0 < oversold < overbought < 100")
    t.finish()
    t = st.sub("breakout")
    tables["breakout"] = {"window": t.integer("window", 50)}
    t.require(tables["breakout"]["window"] >= 2, "window", ">= 2")
    t.finish()
    t = st.sub("every_nth")
    tables["every_nth"] = {"n": t.integer("n", 100)}
    t.require(tables["every_nth"]["n"] >= 1, "n", ">= 1")
    t.finish()

    if "groups" in table:
        s.groups = _read_groups(table["groups"], s.instruments, tables, quantity, origin, num_text, orders,
                                s.hosts)
    elif shorthand:
        s.groups = [StrategyGroup(name=SHORTHAND_GROUP, kind=name, instances=s.instances,
                                  quantity=quantity, instruments=list(s.instruments),
                                  params=builtin_params(tables, name, num_text),
                                  hosts=strategy_hosts(s.hosts), **orders)]
    else:
        s.groups = default_groups(s.instruments, tables, quantity, num_text, orders, s.hosts)


def _read_groups(items, instruments, tables, quantity, origin, num_text, orders=None, hosts=()) -> list:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{origin}: strategy.groups must be a non-empty array of tables "
                          "([[strategy.groups]])")
    out, names = [], set()
    for i, item in enumerate(items):
        path = f"strategy.groups[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{origin}: {path} must be a table")
        sec = Section(item, path, origin, num_text)
        g = StrategyGroup(name=sec.string("name", ""), kind="", quantity=quantity)
        sec.require(_valid_group_name(g.name), "name",
                    "1 to 32 of a-z, 0-9 and _, starting with a letter, not a program's name nor \"flatten\"")
        sec.require(g.name not in names, "name", "unique")
        names.add(g.name)
        g.kind = sec.string("kind", "")
        sec.require(g.kind in BUILTIN_KINDS or g.kind in ("plugin", "python"), "kind",
                    "sma_crossover, rsi_reversion, breakout, every_nth, plugin or python")
        g.plugin = sec.string("plugin", "")
        sec.require((g.kind == "plugin") == bool(g.plugin), "plugin",
                    'set (the strategy\'s .so) exactly when kind = "plugin"')
        g.entry = sec.string("entry", "")
        module, colon, cls = g.entry.partition(":")
        sec.require((g.kind == "python") == bool(g.entry), "entry",
                    'set ("module:Class") exactly when kind = "python"')
        sec.require(not g.entry or (colon and module and cls), "entry", '"module:Class"')
        g.python_path = sec.string("python_path", "")
        sec.require(not g.python_path or g.kind == "python", "python_path",
                    'set only when kind = "python"')
        g.instances = sec.integer("instances", 1)
        sec.require(1 <= g.instances <= MAX_INSTANCES, "instances", f"in 1..{MAX_INSTANCES}")
        g.quantity = sec.number("quantity", quantity)
        sec.require(g.quantity > 0, "quantity", "> 0")
        if sec.has("instruments"):
            g.instruments = sec.strings("instruments")
            sec.require(bool(g.instruments), "instruments", "a non-empty list (leave it out for all)")
            seen = set()
            for sym in g.instruments:
                if sym not in instruments:
                    raise ConfigError(f"{origin}: {path}.instruments: {sym} is not in [[instruments]]")
                sec.require(sym not in seen, "instruments", "without repeats")
                seen.add(sym)
        else:
            g.instruments = list(instruments)
        g.max_position = sec.number("max_position", 0.0)
        sec.require(g.max_position >= 0, "max_position", ">= 0 (0 = only risk.max_position)")
        g.max_orders_per_second = sec.number("max_orders_per_second", 0.0)
        sec.require(g.max_orders_per_second >= 0, "max_orders_per_second", ">= 0 (0 = none of its own)")
        for key, value in read_orders(sec, orders or default_orders()).items():
            setattr(g, key, value)
        g.params = sec.scalars("params") if sec.has("params") else builtin_params(tables, g.kind, num_text)
        g.hosts = _read_group_hosts(sec, path, hosts)
        sec.finish()
        out.append(g)
    return out


def _read_group_hosts(sec: Section, path: str, hosts) -> list:
    """A group's `hosts` (C++ read_group_hosts): names from [[hosts]], once
    each; left out, the strategy hosts."""
    if not sec.has("hosts"):
        return strategy_hosts(hosts)
    sec.require(bool(hosts), "hosts", "left out when the file has no [[hosts]]")
    names = sec.strings("hosts")
    sec.require(bool(names), "hosts", "a non-empty list (leave it out for the strategy hosts)")
    known = {h.name for h in hosts}
    seen = set()
    for name in names:
        if name not in known:
            raise ConfigError(f"{sec.origin}: {path}.hosts: {name} is not in [[hosts]]")
        sec.require(name not in seen, "hosts", "without repeats")
        seen.add(name)
    return names


@dataclass
class Placement:
    """One process of the deployment as one host runs it: a program
    ("strategy" for a shard), its process name (the program's, or
    <group>-<k>), and for a shard its group, k and n (k 0, n 1 otherwise)."""
    program: str
    process: str
    group: str | None = None
    k: int = 0
    n: int = 1
    kind: str | None = None   # a shard's group kind ("python" runs python3 -m tp_strategy)


def shard_host(group: StrategyGroup, k: int):
    """The host instance k of `group` runs on (hosts[k % len]); None without hosts."""
    return group.hosts[k % len(group.hosts)] if group.hosts else None


def processes_on_host(settings: Settings, host: str | None) -> list:
    """What `host` runs, in the supervisor's start order: its programs, and
    the shards of each group (in config order) that land on it. host None:
    every process (a single machine, or --all-hosts)."""
    out = []
    for program in START_ORDER:
        if program == "strategy":
            for g in settings.groups:
                out += [Placement("strategy", f"{g.name}-{k}", g.name, k, g.instances, g.kind)
                        for k in range(g.instances) if host is None or shard_host(g, k) == host]
        elif host is None or program in next((h.programs for h in settings.hosts if h.name == host), []):
            out.append(Placement(program, program))
    return out


def command_line(placement: Placement, bin_dir: str, run_dir: str, config_path: str | None = None,
                 overrides=(), python: str = sys.executable) -> list:
    """The command a process is started with, the one place that writes it
    (the supervisor and the systemd unit generator both call it): the
    program's binary in bin_dir (a python group's `python -m tp_strategy`),
    the deployment file, the --set overrides, the run dir, and a shard's
    --group/--shard/--shards."""
    if placement.kind == "python":
        cmd = [python, "-m", PYTHON_MODULE]
    else:
        cmd = [os.path.join(bin_dir, placement.program)]
    if config_path:
        cmd += ["--config", config_path]
    for o in overrides:
        cmd += ["--set", o]
    cmd += ["--run-dir", run_dir]
    if placement.group is not None:
        cmd += ["--group", placement.group, "--shard", str(placement.k), "--shards", str(placement.n)]
    return cmd


def load_settings(path: str | None, overrides=()) -> Settings:
    if not path:
        return parse_settings("", overrides, "<defaults>")
    return parse_settings(read_text(path), overrides, path)


def control_path(settings: Settings, run_dir: str) -> str:
    return settings.control or os.path.join(run_dir, "supervisor.sock")

