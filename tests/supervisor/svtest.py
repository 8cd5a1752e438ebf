"""Helpers for the supervisor's process tests: run a supervisor, talk to its
control socket, wait on conditions with bounded polling, and make sure no
process outlives a test."""

import json
import os
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "scripts")
SUPERVISOR = os.path.join(SCRIPTS, "supervisor.py")
TPCTL = os.path.join(SCRIPTS, "tpctl")
PROGRAMS = ["dead_letter", "dll_gateway", "executor", "strategy", "gateway"]

sys.dont_write_bytecode = True
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import supervisor  # noqa: E402,F401  (the module under test)
from waiting import wait_for  # noqa: E402,F401  (re-exported: tests import it from here)


def pid_alive(pid) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def request(path, req, timeout=60.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def make_fake_bin_dir(path):
    """A bin dir whose programs are all tests/supervisor/fake_program.py."""
    os.makedirs(path, exist_ok=True)
    for p in PROGRAMS:
        os.symlink(os.path.join(HERE, "fake_program.py"), os.path.join(path, p))
    return path


def endpoints_toml(d) -> list:
    """The [endpoints] table on ipc:// sockets in directory `d`, as TOML lines."""
    names = ("ticks", "signals", "order_events", "orders", "dead_letters")
    return ["[endpoints]", *(f'{k} = "ipc://{d}/{k}.ipc"' for k in names)]


def three_hosts_toml(md, strat, exec_):
    """The [[hosts]] of config/samples/three_hosts.toml at these addresses:
    md runs the gateway, exec the executor, dll_gateway and the sink, and
    strat (no program) the strategy groups."""
    return f"""
[[hosts]]
name = "md"
address = "{md}"
programs = ["gateway"]

[[hosts]]
name = "strat"
address = "{strat}"

[[hosts]]
name = "exec"
address = "{exec_}"
programs = ["executor", "dll_gateway", "dead_letter"]
"""


# The three-host layout at 10.77.0.1-3 (as the sample file places it), each
# endpoint on the address of the host whose program binds it.
THREE_HOSTS = """
[endpoints]
ticks = "tcp://10.77.0.1:7101"
signals = "tcp://10.77.0.3:7102"
order_events = "tcp://10.77.0.3:7103"
orders = "tcp://10.77.0.3:7104"
dead_letters = "tcp://10.77.0.3:7105"
""" + three_hosts_toml("10.77.0.1", "10.77.0.2", "10.77.0.3")


class SupervisorRun:
    """A supervisor.py child; close() leaves no process behind."""

    def __init__(self, tmp, bin_dir, args=(), env=None, run_dir=None, wrap=()):
        """`wrap`: a command line prefix, e.g. `ip netns exec NS` to run it on
        another host (the same files: its control socket is reached here)."""
        self.run_dir = run_dir or os.path.join(tmp, "run")
        self.socket = os.path.join(self.run_dir, "supervisor.sock")
        self.log_path = os.path.join(tmp, "supervisor.out")
        self.seen = set()
        full_env = dict(os.environ, **(env or {}))
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*wrap, sys.executable, SUPERVISOR, "--bin-dir", bin_dir, "--run-dir", self.run_dir, *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=full_env, start_new_session=True)

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "supervisor output (tail):\n" + "".join(f.readlines()[-40:])
        except OSError:
            return ""

    def tpctl(self, *args) -> subprocess.CompletedProcess:
        """scripts/tpctl on this run, its output captured."""
        return subprocess.run([sys.executable, TPCTL, "--run-dir", self.run_dir, *args],
                              capture_output=True, text=True, timeout=120)

    def ctl(self, req, timeout=60.0) -> dict:
        return request(self.socket, req, timeout)

    def status(self) -> dict:
        """name -> process entry; remembers every pid for the clean-up."""
        reply = self.ctl({"cmd": "status"}, timeout=10.0)
        assert reply["ok"], reply
        procs = {p["name"]: p for p in reply["processes"]}
        self.seen.update(p["pid"] for p in procs.values() if p["pid"])
        return procs

    def try_status(self):
        try:
            return self.status()
        except (OSError, ValueError):
            return None

    def wait_all_running(self, timeout=20.0, count=None):
        def ok():
            st = self.try_status()
            if st and all(p["state"] == "RUNNING" for p in st.values()) and \
                    (count is None or len(st) == count):
                return st
            return None
        return wait_for(ok, timeout, what="every process RUNNING", detail=self.status_text)

    def wait_state(self, name, state, timeout=20.0, pred=None):
        def ok():
            st = self.try_status()
            if st and name in st and st[name]["state"] == state and (pred is None or pred(st[name])):
                return st
            return None
        return wait_for(ok, timeout, what=f"{name} {state}", detail=self.status_text)

    def status_text(self) -> str:
        st = self.try_status()
        rows = "\n".join(f"  {n}: {p['state']} pid {p['pid']} restarts {p['restarts']} "
                         f"last exit {p['last_exit']}" for n, p in (st or {}).items())
        return f"status:\n{rows}\n{self.log()}"

    def wait_exit(self, timeout=20.0) -> int:
        return self.proc.wait(timeout)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pid in self.seen:  # belt and braces: nothing may outlive the test
            if pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
