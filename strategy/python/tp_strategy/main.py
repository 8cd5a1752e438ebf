"""The program: command line -> config -> group -> the user's class (imported,
instantiated, on_start run and its params checked, all before any file or
socket is opened) -> Runtime -> loop until SIGTERM/SIGINT -> exit code."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time

from . import api
from .config import ConfigError, load_config

EXIT_USAGE = 2
EXIT_FATAL = 1

_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL, "off": logging.CRITICAL + 10}


class EntryError(Exception):
    pass


class _Formatter(logging.Formatter):
    """spdlog's line: [2026-11-26 06:40:00.123] [program] [info] message."""

    _NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error",
              logging.CRITICAL: "critical"}

    def __init__(self, program):
        super().__init__()
        self.program = program

    def format(self, record):
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return f"[{t}.{int(record.msecs):03d}] [{self.program}] [{self._NAMES.get(record.levelno, 'info')}] {msg}"


def init_logging(program, level):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(program))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))


def load_entry(entry: str, python_path: str = "", config_dir: str = ""):
    """The Strategy subclass named by "module:Class"; python_path (relative:
    to the working directory, else to the config file's) goes first on
    sys.path. EntryError with a clear message otherwise."""
    mod_name, colon, cls_name = entry.partition(":")
    if not colon or not mod_name or not cls_name:
        raise EntryError(f'entry "{entry}" must look like "module:Class"')
    if python_path:
        path = python_path
        if not os.path.isabs(path) and not os.path.isdir(path) and config_dir:
            path = os.path.join(config_dir, path)
        if not os.path.isdir(path):
            raise EntryError(f"python_path {python_path}: no such directory")
        sys.path.insert(0, os.path.abspath(path))
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise EntryError(f'entry "{entry}": module {mod_name} not found (python_path '
                             f'"{python_path}", sys.path[0] {sys.path[0]!r})') from None
        raise EntryError(f'entry "{entry}": importing {mod_name} failed: {e}') from None
    except Exception as e:  # noqa: BLE001 - any import-time failure of the user's module
        raise EntryError(f'entry "{entry}": importing {mod_name} failed: {type(e).__name__}: {e}') from None
    obj = module
    for part in cls_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise EntryError(f'entry "{entry}": module {mod_name} ({getattr(module, "__file__", "?")}) has no '
                             f"{cls_name}")
    if not isinstance(obj, type) or not issubclass(obj, api.Strategy):
        raise EntryError(f'entry "{entry}": {cls_name} is not a subclass of tp_strategy.Strategy')
    if obj.on_tick is api.Strategy.on_tick:
        raise EntryError(f'entry "{entry}": {cls_name} does not define on_tick')
    return obj


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tp_strategy", description="A Python strategy instance: shard K of N of a "
                                "strategy group (ticks in, signals out), with the C++ runtime's guarantees")
    p.add_argument("-c", "--config", help="deployment TOML file (default: embedded defaults)")
    p.add_argument("--set", action="append", default=[], metavar="section.key=value",
                   help="override one config value (repeatable)")
    p.add_argument("--group", help="the strategy group (default: the first kind = \"python\" group)")
    p.add_argument("--shard", type=int, default=0, help="this instance's index K (0-based, < N)")
    p.add_argument("--shards", type=int, help="number of instances N (default: the group's instances)")
    p.add_argument("--entry", help="module:Class, instead of the group's entry (tests)")
    p.add_argument("--log-level", help="trace, debug, info, warn, error")
    p.add_argument("--run-dir", help="directory for state, stats and default file paths")
    return p.parse_args(argv)


def main(argv=None):
    from .runtime import Runtime, install_stop_handlers, stop_requested
    install_stop_handlers()  # first: a SIGTERM during start-up is a clean stop too
    args = parse_args(sys.argv[1:] if argv is None else argv)
    overrides = list(args.set)
    if args.log_level:
        overrides.append(f'run.log_level="{args.log_level}"')
    if args.run_dir:
        overrides.append(f'run.dir="{args.run_dir}"')
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"tp_strategy: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.group:
        group = cfg.group(args.group)
        if group is None:
            print(f"tp_strategy: --group {args.group}: no such group in strategy.groups "
                  f"({', '.join(g.name for g in cfg.groups)})", file=sys.stderr)
            return EXIT_USAGE
    else:
        group = next((g for g in cfg.groups if g.kind == "python"), None)
        if group is None:
            print("tp_strategy: no kind = \"python\" group in strategy.groups; name one with --group",
                  file=sys.stderr)
            return EXIT_USAGE
    if group.kind != "python" and not args.entry:
        print(f"tp_strategy: group {group.name} is kind \"{group.kind}\", not \"python\": run it with the strategy "
              "program (or give --entry)", file=sys.stderr)
        return EXIT_USAGE
    shards = args.shards if args.shards is not None else group.instances
    if shards < 1 or not 0 <= args.shard < shards:
        print(f"tp_strategy: --shard {args.shard} must be in 0..{shards - 1} (--shards {shards})", file=sys.stderr)
        return EXIT_USAGE
    name = f"{group.name}-{args.shard}"
    init_logging(name, cfg.log_level)
    entry = args.entry or group.entry
    config_dir = os.path.dirname(os.path.abspath(args.config)) if args.config else ""
    try:
        cls = load_entry(entry, group.python_path, config_dir)
        strategy = cls()
    except EntryError as e:
        print(f"tp_strategy: {name}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - the user's constructor
        print(f"tp_strategy: {name}: entry \"{entry}\": {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_USAGE
    rt = Runtime(cfg, group, args.shard, shards, strategy)
    try:
        rt.start_strategy()
    except api.ParamError as e:
        print(f"tp_strategy: {name}: parameter refused: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - on_start refused to start
        print(f"tp_strategy: {name}: on_start refused to start: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        rt.open()
    except Exception as e:  # noqa: BLE001 - journal locked, endpoint refused...
        logging.getLogger("tp_strategy").critical("fatal: %s", e)
        return EXIT_FATAL
    return rt.run(stop_requested)
