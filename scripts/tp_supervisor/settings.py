"""Configuration: the same TOML file and --set overrides as the C++ programs
(common/src/config.cpp), reduced to what the supervisor reads."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

MAX_INSTANCES = 256

DEFAULT_INSTRUMENTS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]


class ConfigError(Exception):
    pass


@dataclass
class Settings:
    run_dir: str = "run"
    instances: int = 2
    instruments: list = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
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


def parse_settings(toml_text: str, overrides=(), origin: str = "<string>") -> Settings:
    """Settings from TOML text + overrides; raises ConfigError naming the key."""
    try:
        root = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: {e}") from None
    for spec in overrides:
        apply_override(root, spec)

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

    st = table("strategy")
    if "instances" in st:
        v = st["instances"]
        if not _is_int(v):
            raise ConfigError(f"{origin}: strategy.instances must be an integer")
        if not 1 <= v <= MAX_INSTANCES:
            raise ConfigError(f"{origin}: strategy.instances must be in 1..{MAX_INSTANCES}")
        s.instances = v

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


    sv = table("supervisor")
    known = {"bin_dir", "control", "hang_timeout_ms", *SUPERVISOR_INTS, *SUPERVISOR_BOOLS}
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
    if s.backoff_max_ms < s.backoff_min_ms:
        raise ConfigError(f"{origin}: supervisor.backoff_max_ms must be >= backoff_min_ms")
    if s.hang_timeout_ms and s.hang_timeout_ms < 2 * s.stats_interval_ms:
        raise ConfigError(f"{origin}: supervisor.hang_timeout_ms must be 0 (off) or "
                          f">= 2 * run.stats_interval_ms ({2 * s.stats_interval_ms})")
    return s


def load_settings(path: str | None, overrides=()) -> Settings:
    if not path:
        return parse_settings("", overrides, "<defaults>")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError:
        raise ConfigError(f"{path}: cannot read the config file") from None
    return parse_settings(text, overrides, path)


def control_path(settings: Settings, run_dir: str) -> str:
    return settings.control or os.path.join(run_dir, "supervisor.sock")

