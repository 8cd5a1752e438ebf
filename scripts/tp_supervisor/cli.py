"""supervisor.py's command line."""

import argparse
import os
import sys

from . import layout
from .arbiter import Arbiter
from .portfolio import start_watch, stop_watch
from .settings import ConfigError, choose_host, load_settings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="supervisor.py", description="Run and supervise the trading pipeline.")
    ap.add_argument("--config", help="deployment TOML file (default: embedded defaults)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one config value (repeatable); passed on to every program")
    ap.add_argument("--run-dir", help="state/stats/logs directory (default: run.dir)")
    ap.add_argument("--bin-dir", help="where the program binaries are (default: supervisor.bin_dir, "
                    "else bin/ beside an installed supervisor, or build/release/bin of a checkout)")
    ap.add_argument("--duration", type=float, help="run this many seconds, then stop cleanly")
    ap.add_argument("--status-line", action="store_true", help="print one status line a second")
    ap.add_argument("--summary", action="store_true", help="print a summary at the end")
    ap.add_argument("--host", help="with [[hosts]] in the config: run this host's share (its programs and "
                    "the strategy shards placed on it)")
    ap.add_argument("--all-hosts", action="store_true",
                    help="with [[hosts]]: run every host's processes here (to try a multi-host file on one "
                         "machine whose addresses are all its own)")
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        run_dir = os.path.abspath(args.run_dir or settings.run_dir)
        bin_dir = os.path.abspath(args.bin_dir or settings.bin_dir or layout.default_bin_dir())
        config = os.path.abspath(args.config) if args.config else None
        host = choose_host(settings, args.host, args.all_hosts)
        sup = Arbiter(settings, run_dir, bin_dir, config, args.overrides, host=host)
        # The summary's portfolio: the executor's last published valuation,
        # kept by a watcher process for as long as the programs run.
        watch = start_watch(run_dir, config, args.overrides, sup.log) if args.summary else None
        try:
            rc = sup.run(duration=args.duration, status_line=args.status_line)
        finally:
            stop_watch(watch)
    except ConfigError as e:
        print(f"supervisor: {e}", file=sys.stderr)
        return 1
    if args.summary:
        print(sup.summary(), flush=True)
    return rc
