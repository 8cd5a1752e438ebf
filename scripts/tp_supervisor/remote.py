"""The supervisor's control over tcp, for tpctl on another host.

The Unix socket (controller.py) is reached by whoever may open a file in the
run dir. Across hosts a tcp listener stands in for it, off by default
([supervisor] control_port), bound on this host's [[hosts]] address only,
and open to a client that proves it knows a shared secret (the file
[supervisor] control_secret, mode 0600, the same on every host):

  server -> {"challenge": "<64 hex digits, fresh per connection>", "host": "md"}
  client -> {"request": "<the request's JSON text>", "mac": HMAC(secret, "request", challenge, text)}
  server -> {"reply": "<the reply's JSON text>", "mac": HMAC(secret, "reply", challenge, text)}

HMAC-SHA256 over a label, the challenge and the text: a request cannot be
replayed on another connection (the challenge changes), altered, or sent
back as a reply; the client checks the reply's MAC, so a host in the middle
cannot forge a status or a scale's outcome either. A wrong MAC gets
{"error": "authentication failed"} and nothing is done. The traffic is not
encrypted: the status it carries (states, positions, PnL) is readable on the
wire, which docs/ARCHITECTURE.md ("Several machines") weighs against
bringing libzmq's CURVE into the standard-library supervisor. Standard
library only."""

import hashlib
import hmac
import json
import os
import secrets
import socket
import time

from .settings import ConfigError

MIN_SECRET_CHARS = 16
MAX_LINE = 1 << 20
# A host behind a cut link never answers the SYN: give up on it after this
# long, however long a command may then take to be done (a stop's grace).
CONNECT_TIMEOUT_S = 3.0


class Unreachable(Exception):
    """No supervisor answered at (address, port): `why` says what happened."""


class AuthFailed(Exception):
    """The supervisor refused our MAC, or its reply's MAC is wrong."""


def read_secret(path: str) -> bytes:
    """The shared secret in `path` (surrounding white space dropped); a file
    others may read, or a secret shorter than 16 characters, is refused."""
    if not path:
        raise ConfigError("supervisor.control_secret must be set for tcp control")
    try:
        if os.stat(path).st_mode & 0o077:
            raise ConfigError(f"supervisor.control_secret: {path} is readable by group or others (chmod 600 it)")
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise ConfigError(f"supervisor.control_secret: cannot read {path}: {e.strerror}") from None
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"supervisor.control_secret: {path} holds fewer than {MIN_SECRET_CHARS} characters "
                          "(make one with: head -c 32 /dev/urandom | base64)")
    return secret


def mac(secret: bytes, label: str, challenge: str, text: str) -> str:
    msg = f"tp-control {label}\n{challenge}\n".encode() + text.encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def new_challenge() -> str:
    return secrets.token_hex(32)


def hello(challenge: str, host) -> bytes:
    return json.dumps({"challenge": challenge, "host": host}).encode() + b"\n"


def open_request(secret: bytes, challenge: str, line: bytes) -> bytes:
    """The request line inside a client's sealed line; AuthFailed when its
    MAC is not the one the secret gives."""
    try:
        outer = json.loads(line)
        text, given = outer["request"], outer["mac"]
        if not isinstance(text, str) or not isinstance(given, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise AuthFailed("not a sealed request") from None
    if not hmac.compare_digest(mac(secret, "request", challenge, text), given):
        raise AuthFailed("wrong MAC")
    return text.encode()


def seal_reply(secret: bytes, challenge: str, reply: dict) -> bytes:
    text = json.dumps(reply)
    return json.dumps({"reply": text, "mac": mac(secret, "reply", challenge, text)}).encode() + b"\n"


def refusal() -> bytes:
    return json.dumps({"error": "authentication failed"}).encode() + b"\n"


def _read_line(sock, deadline: float, what: str) -> bytes:
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(what)
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_LINE:
            raise Unreachable(f"{what}: a line longer than {MAX_LINE} bytes")
    return buf.split(b"\n", 1)[0]


def request(address: str, port: int, secret: bytes, req: dict, timeout: float) -> dict:
    """One request to the supervisor at address:port, within `timeout`
    seconds in all (connect, challenge, reply): its verified reply.
    Unreachable when nothing answers in time (the connection itself within
    CONNECT_TIMEOUT_S), AuthFailed when the secrets differ."""
    deadline = time.monotonic() + timeout
    where = f"{address}:{port}"
    connect_s = min(timeout, CONNECT_TIMEOUT_S)
    try:
        sock = socket.create_connection((address, port), timeout=connect_s)
    except socket.timeout:
        raise Unreachable(f"{where}: no connection within {connect_s:g} s") from None
    except OSError as e:
        raise Unreachable(f"{where}: {e.strerror or e}") from None
    with sock:
        try:
            first = _read_line(sock, deadline, "the challenge")
            try:
                challenge = json.loads(first)["challenge"]
            except (ValueError, KeyError, TypeError):
                raise Unreachable(f"{where}: not a supervisor's control port (no challenge)") from None
            text = json.dumps(req)
            sock.sendall(json.dumps({"request": text, "mac": mac(secret, "request", challenge, text)}).encode()
                         + b"\n")
            line = _read_line(sock, deadline, "the reply")
        except socket.timeout:
            raise Unreachable(f"{where}: no answer within {timeout:g} s") from None
        except OSError as e:
            raise Unreachable(f"{where}: {e.strerror or e}") from None
    if not line.strip():
        raise Unreachable(f"{where}: the connection closed without a reply")
    try:
        outer = json.loads(line)
    except ValueError:
        raise AuthFailed(f"{where}: an unreadable reply") from None
    if "error" in outer and "reply" not in outer:
        raise AuthFailed(f"{where}: {outer['error']} (is control_secret the same file on both hosts?)")
    text = outer.get("reply")
    if not isinstance(text, str) or not hmac.compare_digest(mac(secret, "reply", challenge, text),
                                                            str(outer.get("mac"))):
        raise AuthFailed(f"{where}: the reply's MAC is wrong (another secret, or someone in the middle)")
    return json.loads(text)


def listen(address: str, port: int) -> socket.socket:
    """A non-blocking tcp listener on address:port (IPv6 when the address has
    a colon); ConfigError when the address or port cannot be had."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.create_server((address, port), family=family, backlog=16)
    except OSError as e:
        raise ConfigError(f"supervisor.control_port: cannot listen on {address}:{port}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock
