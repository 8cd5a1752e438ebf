"""Bounded waits for the Python tests that run real programs: poll a
condition (a counter in a stats file, a file, a process state) until it holds
or a deadline passes, never a sleep standing in for the state itself; and
read what the programs write (stats files no older than a moment). Shared
by tests/integration/pipeline.py, tests/supervisor/svtest.py (and so the
chaos tests) and tests/dead_letter; the C++ tests' twin is
test_support/wait.hpp."""

import json
import os
import time


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition", detail=None):
    """Polls `predicate` every `interval` s until it returns a truthy value and
    returns that value; raises AssertionError after `timeout` s, naming `what`
    and, when given, the text `detail()` returns (the state seen last)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = ("\n" + detail()) if detail else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


def read_json(path):
    """The JSON object in `path`; None when it is missing or not (yet) JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_stats(run_dir, name, pid=None, after_ns=None):
    """<run_dir>/<name>.stats.json; None when it is missing, another
    process's (`pid`), or written at or before `after_ns` (wall clock, the
    file's ts_ns). A program rewrites its file every stats interval, so a
    file read at once may predate what the test has just seen happen
    elsewhere: a read that must show it passes the moment it was seen."""
    data = read_json(os.path.join(run_dir, f"{name}.stats.json"))
    if data is None or (pid is not None and data.get("pid") != pid):
        return None
    if after_ns is not None and data.get("ts_ns", 0) <= after_ns:
        return None
    return data
