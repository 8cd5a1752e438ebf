"""sd_notify(3) for a shard run as a systemd Type=notify unit, as the C++
programs do (common/systemd_notify.hpp): READY=1 when the loop starts,
WATCHDOG=1 from the loop at half of WATCHDOG_USEC, STOPPING=1 when it ends.
One datagram to the socket NOTIFY_SOCKET names; nothing at all without it."""

import os
import socket


class SystemdNotifier:
    def __init__(self, environ=os.environ):
        path = environ.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: a leading NUL byte on the wire.
        self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process systemd watches: not a child that inherited it.
        ours = not pid or pid == str(os.getpid())
        self.ping_every_ns = int(usec) * 1000 // 2 if self.address and usec.isdigit() and ours else 0
        self.next_ping_ns = 0
        self.sock = None

    def send(self, state: str) -> None:
        if not self.address:
            return
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.sendto(state.encode(), self.address)
        except OSError:
            pass  # systemd judges a missing message (restarts the unit); the shard goes on

    def ready(self) -> None:
        self.send("READY=1\nSTATUS=running")

    def alive(self, now_ns: int) -> None:
        if self.ping_every_ns and now_ns >= self.next_ping_ns:
            self.send("WATCHDOG=1")
            self.next_ping_ns = now_ns + self.ping_every_ns

    def stopping(self) -> None:
        self.send("STOPPING=1\nSTATUS=stopping")
        if self.sock is not None:
            self.sock.close()
            self.sock = None
