"""The control socket: a Unix stream socket ([supervisor].control, default
<run.dir>/supervisor.sock). One JSON request line, one JSON reply line:
  {"cmd": "status"}
  {"cmd": "status", "stats": true}
      and what tpctl top reads of each process's stats file (tpctl top
      across hosts)
  {"cmd": "stop"|"start"|"restart", "name": NAME}
      NAME: a program ("executor"), a group ("trend": its every instance), one
      instance ("trend-1" or "trend:1"), or "strategy" (every group's
      instances, when no group has that name)
  {"cmd": "scale", "name": "trend", "n": 3}
      "name" may be left out when the deployment has exactly one group
  {"cmd": "shutdown"}
  {"cmd": "scale", "name": "trend", "n": 3, "phase": "stop"|"start"}
      a scale across hosts, driven by tpctl (README "Several machines"):
      "stop" stops this host's instances of the group, "start" starts this
      host's share of n (instance k where hosts[k % len(hosts)] is this host)
Replies: {"ok": true, ...} or {"ok": false, "error": "..."}. Commands that
change processes are queued on the arbiter as operations, which reply when
the change is done (stopped, or spawned again).

With [supervisor] control_port the same requests come over tcp too, from
tpctl on other hosts, each sealed with the shared secret (remote.py)."""

import json
import os
import selectors
import socket
import time

from . import remote, report
from .settings import MAX_INSTANCES, ConfigError, is_int, tcp_control
from .states import PROGRAMS, SCALABLE

# A tcp client has this long to send its request, and so many may wait at
# once: a peer that connects and says nothing must not hold descriptors.
TCP_REQUEST_S = 5.0
MAX_TCP_CLIENTS = 16


class Client:
    def __init__(self, sock, challenge=None, peer=None):
        self.sock = sock
        self.buf = b""
        self.challenge = challenge   # a tcp client's: its request must carry the MAC over it
        self.peer = peer
        self.deadline = time.monotonic() + TCP_REQUEST_S if challenge is not None else None


class Controller:
    """Accepts control connections on the arbiter's selector, reads one
    request from each and answers it (or hands it to the arbiter)."""

    def __init__(self, arbiter, path: str, sel):
        self.arb = arbiter
        self.path = path
        self.sel = sel
        self.listener = None
        self.tcp_listener = None   # with supervisor.control_port
        self.secret = None

    def resolve(self, name):
        """The processes `name` designates, or an error string."""
        if not isinstance(name, str) or not name:
            return "missing process name"
        for p in self.arb.procs:
            if p.name == name:
                return [p]
        if name in self.arb.groups:
            return self.arb.instances(name)
        if name == SCALABLE:
            return self.arb.instances()
        # GROUP:K (as dead letters name their source) or GROUP-K.
        for sep in (":", "-"):
            group, found, index = name.rpartition(sep)
            if found and group in self.arb.groups and index.isdigit():
                procs = [p for p in self.arb.instances(group) if p.index == int(index)]
                if procs:
                    return procs
                n = len(self.arb.instances(group))
                return f"no instance {name} ({group} runs {n} instances: {group}-0..{group}-{n - 1})"
        programs = [p for p in PROGRAMS if p != SCALABLE]
        return (f"unknown program '{name}' (known: " + ", ".join(programs) +
                ", a group (" + ", ".join(self.arb.groups) + "), GROUP-K or GROUP:K, or strategy)")

    def scale_group(self, name):
        """The group a scale request names, or an error string. Without a
        name (or with the tier's name "strategy", as before groups existed),
        the deployment's only group."""
        groups = list(self.arb.groups)
        if name is not None and not isinstance(name, str):
            return "the group name must be a string"
        if name in self.arb.groups:
            return name
        if name is None or name == SCALABLE:
            if len(groups) == 1:
                return groups[0]
            return (f"the deployment has {len(groups)} strategy groups ({', '.join(groups)}): "
                    "name one (scale GROUP N)")
        return f"unknown group {name!r} (groups: {', '.join(groups)})"

    def handle_request(self, client: Client, line: bytes) -> None:
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            return self.reply(client, {"ok": False, "error": "request must be one JSON object line"})
        cmd = req.get("cmd")
        if cmd == "status":
            return self.reply(client, report.status(self.arb, with_stats=req.get("stats") is True))
        if cmd == "shutdown":
            return self.arb.begin_shutdown(client, "shutdown requested")
        if self.arb.shutting_down:
            return self.reply(client, {"ok": False, "error": "supervisor is shutting down"})
        if cmd in ("stop", "start", "restart"):
            procs = self.resolve(req.get("name"))
            if isinstance(procs, str):
                return self.reply(client, {"ok": False, "error": procs})
            op = {"stop": self.arb.op_stop, "start": self.arb.op_start, "restart": self.arb.op_restart}[cmd]
            self.arb.log(f"{cmd} {req.get('name')} requested")
            self.arb.ops.append([op(procs), client])
            return None
        if cmd == "scale" and req.get("phase") is not None:
            return self.scale_phase(client, req)
        if cmd == "scale":
            group = self.scale_group(req.get("name"))
            if group not in self.arb.groups:
                return self.reply(client, {"ok": False, "error": group})
            n = req.get("n")
            if isinstance(n, str) and n.strip().lstrip("+").isdigit():
                n = int(n)
            if not is_int(n) or not 1 <= n <= MAX_INSTANCES:
                return self.reply(client, {"ok": False, "error":
                                            f"instance count must be an integer in 1..{MAX_INSTANCES}"})
            self.arb.log(f"scale {group} {n} requested")
            self.arb.ops.append([self.arb.op_scale(group, n), client])
            return None
        return self.reply(client, {"ok": False, "error": f"unknown command {cmd!r} "
                                    "(status, stop, start, restart, scale, shutdown)"})

    def scale_phase(self, client: Client, req: dict) -> None:
        """One phase of a scale across hosts (tpctl drives the phases)."""
        group, n, phase = req.get("name"), req.get("n"), req.get("phase")
        if group not in self.arb.groups:
            return self.reply(client, {"ok": False, "error": f"unknown group {group!r} (groups: "
                                                             f"{', '.join(self.arb.groups)})"})
        if phase not in ("stop", "start"):
            return self.reply(client, {"ok": False, "error": "phase must be \"stop\" or \"start\""})
        if phase == "start" and (not is_int(n) or not 1 <= n <= MAX_INSTANCES):
            return self.reply(client, {"ok": False, "error":
                                       f"instance count must be an integer in 1..{MAX_INSTANCES}"})
        self.arb.log(f"scale {group} {n} phase {phase} requested")
        op = self.arb.op_scale_stop(group) if phase == "stop" else self.arb.op_scale_start(group, n)
        self.arb.ops.append([op, client])
        return None

    def reply(self, client: Client, reply: dict) -> None:
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        try:
            client.sock.setblocking(True)
            client.sock.settimeout(2.0)
            if client.challenge is not None:
                client.sock.sendall(remote.seal_reply(self.secret, client.challenge, reply))
            else:
                client.sock.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        finally:
            client.sock.close()

    def accept(self) -> None:
        """Takes the connections waiting on either listener; a tcp client
        is sent its challenge at once (a short line: a fresh socket's
        buffer takes it)."""
        for listener in (self.listener, self.tcp_listener):
            if listener is None:
                continue
            try:
                sock, peer = listener.accept()
            except BlockingIOError:
                continue
            client = Client(sock)
            if listener is self.tcp_listener:
                if len(self.waiting_tcp()) >= MAX_TCP_CLIENTS:
                    sock.close()
                    continue
                client = Client(sock, remote.new_challenge(), peer)
                try:
                    sock.sendall(remote.hello(client.challenge, self.arb.host))
                except OSError:
                    sock.close()
                    continue
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, client)

    def waiting_tcp(self) -> list:
        """The tcp clients whose request has not come yet."""
        return [key.data for key in self.sel.get_map().values()
                if isinstance(key.data, Client) and key.data.deadline is not None]

    def expire(self, now: float) -> None:
        """Closes the tcp clients that sent no request in TCP_REQUEST_S."""
        for client in self.waiting_tcp():
            if now >= client.deadline:
                self.sel.unregister(client.sock)
                client.sock.close()

    def read(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        client.buf += data
        if b"\n" in client.buf or (not data and client.buf.strip()):
            self.sel.unregister(client.sock)  # one request per connection
            line = client.buf.split(b"\n", 1)[0]
            if client.challenge is not None:
                try:
                    line = remote.open_request(self.secret, client.challenge, line)
                except remote.AuthFailed as e:
                    self.arb.log(f"control: refused a tcp request from {client.peer[0]}: {e}")
                    try:
                        client.sock.setblocking(True)
                        client.sock.settimeout(2.0)
                        client.sock.sendall(remote.refusal())
                    except OSError:
                        pass
                    client.sock.close()
                    return
            self.handle_request(client, line)
        elif not data or len(client.buf) > 65536:
            self.sel.unregister(client.sock)
            client.sock.close()

    def open(self) -> None:
        tcp = tcp_control(self.arb.s, self.arb.host)
        if tcp:
            self.secret = remote.read_secret(self.arb.s.control_secret)
        self.open_unix()
        if tcp:
            try:
                self.tcp_listener = remote.listen(*tcp)
            except ConfigError:
                self.close()
                raise
            self.sel.register(self.tcp_listener, selectors.EVENT_READ, "listener")

    def open_unix(self) -> None:
        if len(self.path.encode()) >= 108:
            raise ConfigError(f"control socket path too long (max 107 bytes): {self.path}")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                raise ConfigError(f"another supervisor is running at {self.path}")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(self.path)  # stale, from a supervisor that was killed
            finally:
                probe.close()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listener")

    def close(self) -> None:
        """Closes open connections and the listener and removes the socket."""
        for key in list(self.sel.get_map().values()):
            if isinstance(key.data, Client):
                key.fileobj.close()
        self.listener.close()
        if self.tcp_listener is not None:
            self.sel.unregister(self.tcp_listener)
            self.tcp_listener.close()
            self.tcp_listener = None
        try:
            os.unlink(self.path)
        except OSError:
            pass
