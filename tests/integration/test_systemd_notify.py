"""Every program under a real notify socket, as systemd runs a Type=notify
unit: dead_letter, dll_gateway, executor, a C++ strategy shard, a Python
strategy shard and the gateway, each started with NOTIFY_SOCKET naming its
own Unix datagram socket and WATCHDOG_USEC = 400 ms. Each says READY=1 once
its loop starts, keeps saying WATCHDOG=1 (at half the period), says nothing
while SIGSTOPped (what systemd's watchdog acts on) and pings again after
SIGCONT, and says STOPPING=1 on SIGTERM before it exits 0. An executor
whose start-up waits on an absent dll_gateway pings all the while.

A pipeline on ipc:// endpoints in a temporary directory; waits poll the
sockets with deadlines; the one window of silence asserted is three watchdog
periods long. Children are always killed. PythonNotifier: tp_strategy's
notifier alone (an abstract socket, the ping period, WATCHDOG_PID)."""

import os
import signal
import socket
import subprocess
import sys
import time
import unittest

from pipeline import BIN_DIR, Deployment, missing_binaries, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "strategy", "python"))
from tp_strategy.systemd import SystemdNotifier  # noqa: E402
WATCHDOG_USEC = 400_000  # pings every 200 ms
SILENCE_S = 3 * WATCHDOG_USEC / 1e6

EXTRA = f"""
[[strategy.groups]]
name = "trend"
kind = "every_nth"
instances = 1
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "{os.path.join(REPO, "tests", "python_strategy")}"
instances = 1
[strategy.groups.params]
n = 10
"""

# Start order as the supervisor's, each with its command-line tail.
PROCESSES = [
    ("dead_letter", ["dead_letter"]),
    ("dll_gateway", ["dll_gateway"]),
    ("executor", ["executor"]),
    ("trend-0", ["strategy", "--group", "trend", "--shard", "0", "--shards", "1"]),
    ("py-0", ["python", "--group", "py", "--shard", "0", "--shards", "1"]),
    ("gateway", ["gateway", "--rate", "200"]),
]


class NotifySocket:
    """A bound datagram socket, as systemd's for one unit."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages = []   # every datagram received, in order

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def count(self, prefix):
        return sum(1 for m in self.drain() if m.startswith(prefix))

    def close(self):
        self.sock.close()


@unittest.skipIf(missing_binaries(), f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR!r}")
class ProgramsNotifySystemd(unittest.TestCase):
    def setUp(self):
        self.d = Deployment(extra_toml=EXTRA)
        self.addCleanup(self.d.close)
        self.sockets = {}
        self.addCleanup(lambda: [s.close() for s in self.sockets.values()])

    def start(self, name, argv):
        sock = self.sockets[name] = NotifySocket(os.path.join(self.d.dir, f"notify-{name}"))
        env = dict(os.environ, NOTIFY_SOCKET=sock.path, WATCHDOG_USEC=str(WATCHDOG_USEC),
                   PYTHONPATH=os.path.join(REPO, "strategy", "python"))
        env.pop("WATCHDOG_PID", None)
        if argv[0] == "python":
            cmd = [sys.executable, "-m", "tp_strategy", *argv[1:]]
        else:
            cmd = [os.path.join(BIN_DIR, argv[0]), *argv[1:]]
        cmd += ["--config", self.d.config]
        with open(os.path.join(self.d.run_dir, "logs", name + ".log"), "ab") as log:
            self.d.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def detail(self, name):
        return lambda: f"{name} sent {self.sockets[name].drain()}\n{self.d.log(name)[-2000:]}"

    def test_ready_watchdog_silence_when_stopped_and_stopping(self):
        # Each ready before the next starts, as systemd orders Type=notify units.
        for name, argv in PROCESSES:
            self.start(name, argv)
            wait_for(lambda: self.sockets[name].count("READY=1"), timeout=30, what=f"{name}: READY=1",
                     detail=self.detail(name))
            # The executor's start-up reconcile may ping before it (its waits do).
            said = [m for m in self.sockets[name].messages if m != "WATCHDOG=1"]
            self.assertEqual(said[0], "READY=1\nSTATUS=running", name)

        # Pinging, at about half the watchdog period: not a burst, not late.
        for name, sock in self.sockets.items():
            before = sock.count("WATCHDOG=1")
            wait_for(lambda: sock.count("WATCHDOG=1") >= before + 3, timeout=10,
                     what=f"{name}: WATCHDOG=1 keeps arriving", detail=self.detail(name))
        start, base = time.monotonic(), {n: s.count("WATCHDOG=1") for n, s in self.sockets.items()}
        wait_for(lambda: time.monotonic() - start >= 2.0, timeout=5, what="2 s of pings")
        counts = {n: s.count("WATCHDOG=1") - base[n] for n, s in self.sockets.items()}
        print(f"\nWATCHDOG=1 in 2 s at WATCHDOG_USEC={WATCHDOG_USEC}: {counts}", file=sys.stderr)
        for name, sock in self.sockets.items():
            pings = sock.count("WATCHDOG=1") - base[name]
            # 2 s / 200 ms = 10; the loops' own cadence (up to 100 ms a turn)
            # makes it fewer, but never fewer than one a watchdog period (5),
            # what systemd needs. The executor's waits ping on a notifier of
            # their own (its heartbeat, also run each turn): up to twice as many.
            most = 24 if name == "executor" else 12
            self.assertGreaterEqual(pings, 5, f"{name}: {pings} pings in 2 s")
            self.assertLessEqual(pings, most, f"{name}: {pings} pings in 2 s")

        # SIGSTOP: a hung program says nothing, which is what systemd acts on.
        for proc in self.d.procs.values():
            os.kill(proc.pid, signal.SIGSTOP)
        for sock in self.sockets.values():
            sock.drain()
        stopped = {n: len(s.messages) for n, s in self.sockets.items()}
        start = time.monotonic()
        wait_for(lambda: time.monotonic() - start >= SILENCE_S, timeout=5, what="the silence window")
        for name, sock in self.sockets.items():
            self.assertEqual(sock.drain()[stopped[name]:], [], f"{name} sent while stopped")
        for proc in self.d.procs.values():
            os.kill(proc.pid, signal.SIGCONT)
        for name, sock in self.sockets.items():
            wait_for(lambda: len(sock.drain()) > stopped[name], timeout=5,
                     what=f"{name}: WATCHDOG=1 again after SIGCONT", detail=self.detail(name))

        # SIGTERM in the supervisor's stop order (the reverse): STOPPING=1, then exit 0.
        for name, _ in reversed(PROCESSES):
            self.assertEqual(self.d.stop(name, timeout=20), 0, f"{name}: exit code\n{self.d.log(name)[-2000:]}")
            messages = self.sockets[name].drain()
            self.assertEqual(messages[-1], "STOPPING=1\nSTATUS=stopping", name)
            self.assertEqual(sum(m.startswith("READY=1") for m in messages), 1, name)

    def test_executor_pings_while_it_waits_for_dll_gateway(self):
        # Its start-up reconcile waits on an absent dll_gateway (4 attempts,
        # ~4 s) inside no loop turn: its heartbeat pings meanwhile, so that
        # a watchdog of a few seconds does not kill a program that waits.
        self.start("executor", ["executor"])
        sock = self.sockets["executor"]
        wait_for(lambda: sock.count("READY=1"), timeout=30, what="executor: READY=1",
                 detail=self.detail("executor"))
        before = sock.messages[:sock.messages.index("READY=1\nSTATUS=running")]
        self.assertGreaterEqual(len(before), 5, f"pings before READY=1: {before}")
        self.assertEqual(set(before), {"WATCHDOG=1"})
        self.assertEqual(self.d.stop("executor", timeout=20), 0)
        self.assertEqual(sock.drain()[-1], "STOPPING=1\nSTATUS=stopping")


class PythonNotifier(unittest.TestCase):
    """tp_strategy's notifier alone, on sockets of this process."""

    def test_silent_without_notify_socket(self):
        n = SystemdNotifier({"WATCHDOG_USEC": "1000000"})
        self.assertEqual(n.ping_every_ns, 0)
        n.ready()
        n.alive(0)
        n.stopping()   # nowhere to send: nothing raised, nothing sent

    def test_abstract_socket_half_period_and_another_pid(self):
        name = f"tp-notify-test-{os.getpid()}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind("\0" + name)
            sock.settimeout(5)
            n = SystemdNotifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "200000"})
            self.assertEqual(n.ping_every_ns, 100_000_000)
            for t_ms in (0, 99, 100, 150):   # pings at 0 and 100 only
                n.alive(t_ms * 1_000_000)
            n.stopping()
            got = [sock.recv(4096).decode() for _ in range(3)]
            self.assertEqual(got, ["WATCHDOG=1", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"])
        other = SystemdNotifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "200000",
                                 "WATCHDOG_PID": str(os.getpid() + 1)})
        self.assertEqual(other.ping_every_ns, 0)


if __name__ == "__main__":
    unittest.main()
