#!/usr/bin/python3
"""tp_report: write the HTML report of a stopped run.

  scripts/tp_report.py --run-dir DIR [--out FILE]

Reads DIR (executor.db and dll_gateway.db, which their programs hold while
they run: stop the run first; the strategies' journals, the dead-letter
files, the stats files) and writes DIR/report.html (or FILE): one page,
figures inline, nothing to fetch. scripts/demo writes one at the end of its
run; after any other run (a CSV replay under the supervisor, a deployment
you stopped) run this. Needs python3-matplotlib (scripts/install-deps).
Exit code: 0 written, 1 not written (the reason on stderr), 2 bad usage."""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tp_supervisor import html_report  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tp_report.py", description="Write the HTML report of a stopped run.")
    ap.add_argument("--run-dir", required=True, help="the run directory (e.g. run/demo)")
    ap.add_argument("--out", help="where to write the page (default: RUN_DIR/report.html)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        print(f"tp_report: no run directory {args.run_dir}", file=sys.stderr)
        return 1
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("tp_report: python3-matplotlib is not installed (scripts/install-deps installs it)", file=sys.stderr)
        return 1
    try:
        path = html_report.write_report(args.run_dir, args.out)
    except OSError as e:
        print(f"tp_report: cannot write the report: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
