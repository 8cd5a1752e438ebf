"""Helpers for tests that run the real programs: a temporary deployment on
ipc:// endpoints, process start/stop with guaranteed clean-up, and bounded
waits on conditions (never sleeps as synchronisation)."""

import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from waiting import read_json, read_stats, wait_for  # noqa: E402,F401  (re-exported: tests import them from here)

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PROGRAMS = ("gateway", "strategy", "executor", "dll_gateway", "dead_letter")


def missing_binaries():
    return [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]


class Deployment:
    """A deployment in a temporary directory: config file, run dir, logs."""

    def __init__(self, extra_toml="", endpoints=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_it_")
        self.dir = self.tmp.name
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(os.path.join(self.run_dir, "logs"))
        self.endpoints = endpoints or {name: f"ipc://{self.dir}/{name}.sock" for name in
                                       ("ticks", "signals", "order_events", "orders", "dead_letters")}
        self.config = os.path.join(self.dir, "deploy.toml")
        lines = ["[run]", f'dir = "{self.run_dir}"', "stats_interval_ms = 200", "", "[endpoints]"]
        lines += [f'{k} = "{v}"' for k, v in self.endpoints.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + extra_toml)
        self.procs = {}

    def start(self, name, *args, program=None, max_open_files=None):
        """Starts a program; `max_open_files` sets its descriptor limit
        (soft and hard), as `ulimit -n` would."""
        program = program or name.split(":")[0]
        log = open(os.path.join(self.run_dir, "logs", name.replace(":", "-") + ".log"), "ab")
        limit = None
        if max_open_files is not None:
            import resource
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
        proc = subprocess.Popen([os.path.join(BIN_DIR, program), "--config", self.config, *args],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=limit)
        log.close()
        self.procs[name] = proc
        return proc

    def stop(self, name, timeout=10.0):
        """SIGTERM and wait; returns the exit code."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def stats(self, name, after_ns=None):
        """<name>.stats.json, None before it (or before one written after
        `after_ns`: waiting.read_stats)."""
        return read_stats(self.run_dir, name, after_ns=after_ns)

    def stat(self, name, key, default=0):
        s = self.stats(name)
        return s.get(key, default) if s else default

    def dead_letters(self):
        path = os.path.join(self.run_dir, "dead_letters.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def log(self, name):
        with open(os.path.join(self.run_dir, "logs", name.replace(":", "-") + ".log"), "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        self.tmp.cleanup()
