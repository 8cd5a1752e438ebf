#!/usr/bin/python3
"""A stand-in for a pipeline program, for the supervisor's process tests.

Installed under each program's name (a symlink gateway -> fake_program.py);
the name is taken from argv[0]. Like the real ones it takes --config, --set,
--run-dir (and --group/--shard/--shards: it is then <group>-<shard>), writes
<run-dir>/<name>.stats.json about five times a second (with its arguments
and PYTHONPATH) and exits 0 on SIGTERM. A python group's stand-in is a
tp_strategy module that runs this file (see test_supervisor_process.py).
Environment switches (comma separated program names, "strategy" or
"strategy-1" style):
  FAKE_CRASH        exit at once with code 3
  FAKE_IGNORE_TERM  ignore SIGTERM (the supervisor must SIGKILL it)
FAKE_EVENTS names a file every process appends "start|exit NAME PID TIME_NS"
to (one clock for processes of several supervisors: the order of a scale's
stops and starts across hosts).
"""
import json
import os
import signal
import sys
import time

program = os.path.basename(sys.argv[0])
args = sys.argv[1:]


def flag(name, default=None):
    return args[args.index(name) + 1] if name in args else default


run_dir = flag("--run-dir", ".")
shard = flag("--shard")
shards = flag("--shards")
group = flag("--group", program)
name = program if shard is None else f"{group}-{shard}"


def listed(var):
    items = [s for s in os.environ.get(var, "").split(",") if s]
    return program in items or name in items


def event(what):
    if os.environ.get("FAKE_EVENTS"):
        with open(os.environ["FAKE_EVENTS"], "a") as f:
            f.write(f"{what} {name} {os.getpid()} {time.time_ns()}\n")


event("start")
if listed("FAKE_CRASH"):
    sys.exit(3)

stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, signal.SIG_IGN if listed("FAKE_IGNORE_TERM") else on_term)
started = time.time()
path = os.path.join(run_dir, name + ".stats.json")


writes = 0


def write_stats():
    global writes
    writes += 1
    # A counter for tpctl top's rates: five a second.
    data = {"program": program, "pid": os.getpid(), "ts_ns": time.time_ns(), "args": args, "ticks_published": writes,
            "pythonpath": os.environ.get("PYTHONPATH"),
            "shard": None if shard is None else int(shard),
            "shards": None if shards is None else int(shards)}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


while not stop:
    write_stats()
    time.sleep(0.2)
write_stats()
event("exit")
sys.exit(0)
