#!/usr/bin/python3
"""tp_units.py: writes the systemd units of one host of a deployment.

  scripts/tp_units.py --config FILE [--host NAME] --out DIR [options]

One service per program on the host (tp-<program>.service), a template per
strategy group with shards there (tp-strategy-<group>@.service, the instance
name is the shard k) and tp.target, which wants them all. Without [[hosts]]
in the file, --host is left out and the units run the whole deployment.
The command lines are the supervisor's (settings.command_line); docs/DEPLOY.md
says how to install, start, scale and restart them."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from tp_supervisor import layout  # noqa: E402
from tp_supervisor.settings import ConfigError, load_settings  # noqa: E402
from tp_supervisor.units import UnitOptions, local_systemd_version, units  # noqa: E402


def main(argv=None) -> int:
    d = UnitOptions("", "", "")
    ap = argparse.ArgumentParser(prog="tp_units.py", description="Write the systemd units of one host.")
    ap.add_argument("--config", required=True, help="the deployment file (TOML)")
    ap.add_argument("--host", help="the [[hosts]] entry to write units for (required when the file has hosts)")
    ap.add_argument("--out", required=True, help="directory to write the units to (e.g. /etc/systemd/system)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one config value (repeatable); passed on to every program, as supervisor.py's")
    ap.add_argument("--bin-dir", help="where the programs are on the host (default: supervisor.bin_dir, "
                    "else bin/ beside an installed supervisor, or build/release/bin of a checkout)")
    ap.add_argument("--run-dir", help="state/stats directory of every process (default: run.dir)")
    ap.add_argument("--python", default=d.python, help=f"python groups' interpreter ({d.python})")
    ap.add_argument("--strategy-python", help="the directory holding tp_strategy (default: this tree's)")
    ap.add_argument("--user", default="", help="run the services as this user and group (default: root)")
    ap.add_argument("--memory-max", default=d.memory_max, help=f"MemoryMax= of a C++ program ({d.memory_max})")
    ap.add_argument("--python-memory-max", default=d.python_memory_max,
                    help=f"MemoryMax= of a python shard ({d.python_memory_max})")
    ap.add_argument("--systemd-version", type=int,
                    help="the host's systemd (default: this machine's, else 252); 254 and later back off "
                    "with RestartSteps")
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        opts = UnitOptions(
            config_path=os.path.abspath(args.config),
            bin_dir=os.path.abspath(args.bin_dir or settings.bin_dir or layout.default_bin_dir()),
            run_dir=os.path.abspath(args.run_dir or settings.run_dir),
            python=args.python,
            strategy_python=os.path.abspath(args.strategy_python or layout.strategy_python_dir()),
            overrides=tuple(args.overrides),
            user=args.user,
            memory_max=args.memory_max,
            python_memory_max=args.python_memory_max,
            systemd_version=args.systemd_version or local_systemd_version() or d.systemd_version)
        files = units(settings, args.host, opts)
    except (ConfigError, ValueError) as e:
        print(f"tp_units.py: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(args.out, name)), exist_ok=True)
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
        print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
