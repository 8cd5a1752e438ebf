"""tpctl: the client of the supervisor's control socket (see controller.py)
and of the executor's (the trading commands: halt, reduce, flatten, resume,
trading); scripts/tpctl is its entry point."""

import argparse
import datetime
import getpass
import json
import os
import socket
import sys
import time

from . import hostctl, remote
from .settings import ConfigError, control_path, load_settings, read_root, read_text

EXIT_OK, EXIT_ERROR, EXIT_NO_SUPERVISOR = 0, 1, 2
# A trading command the executor did not answer: exit 2 as well.
EXIT_NO_EXECUTOR = 2

# tpctl's trading commands -> ControlCommand (docs/PROTOCOL.md, 21).
TRADING_COMMANDS = {"trading": 1, "halt": 2, "reduce": 3, "flatten": 4, "resume": 5}
# Lazy Pirate: a fresh REQ per attempt, each waiting this long for the reply.
CONTROL_ATTEMPTS = 3
CONTROL_TIMEOUT_S = 2.0
DEFAULT_ORDERS = "tcp://127.0.0.1:7104"
MAX_ID_LENGTH, MAX_TEXT_LENGTH = 128, 1024


class NoSupervisor(Exception):
    pass


def request(path: str, req: dict, timeout: float) -> dict:
    """Sends one request line and returns the reply; NoSupervisor if none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise NoSupervisor(path) from None
        sock.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        raise NoSupervisor(path) from None
    finally:
        sock.close()
    if not buf.strip():
        raise NoSupervisor(path)
    return json.loads(buf.split(b"\n", 1)[0])


def _uptime(seconds) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _row(p: dict) -> tuple:
    state = p["state"]
    if state == "BACKOFF" and p.get("restart_in_s") is not None:
        state += f" ({p['restart_in_s']:.1f}s)"
    elif state == "HUNG" and p.get("heartbeat_age_s") is not None:
        state += f" (no heartbeat {p['heartbeat_age_s']:.1f}s)"
    extra = ""
    if "shard" in p:
        extra = f"{p['shard']}/{p['shards']}: " + (",".join(p.get("instruments") or []) or "(none)")
    if p.get("alert"):
        extra = (extra + "  " if extra else "") + "ALERT: " + p["alert"]
    return (p["name"], state, str(p["pid"] or "-"), _uptime(p.get("uptime_s")),
            str(p["restarts"]), p.get("last_exit") or "-", extra)


def _number(v, decimals=None) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "n/a"
    if decimals is not None:
        return f"{v:.{decimals}f}"
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _group_lines(g: dict) -> list:
    """A group's heading (kind, instances, the executor's signals and fills
    for it) and its positions with their realised PnL, when the executor's
    stats have per-group figures."""
    kind = g.get("kind") or "not in this deployment"
    n = g.get("instances", 0)
    head = f"group {g['name']} ({kind}, {n} instance{'s' if n != 1 else ''})"
    fig = g.get("executor")
    if fig is None:
        return [head]
    head += (f": signals {_number(fig.get('signals'))}"
             + (f", rejected {_number(fig.get('rejected'))}" if "rejected" in fig else "")
             + f", fills {_number(fig.get('fills'))}")
    positions = fig.get("positions") if isinstance(fig.get("positions"), dict) else {}
    pnl = fig.get("realized_pnl") if isinstance(fig.get("realized_pnl"), dict) else {}
    held = [f"{sym} {_number(positions.get(sym), 0)} (PnL {_number(pnl.get(sym), 2)})"
            for sym in sorted(set(positions) | set(pnl))]
    return [head, "  positions: " + (", ".join(held) if held else "none")]


def format_status(reply: dict) -> str:
    """The status table: the programs, the executor's trading state (when
    its stats have one), then each strategy group's heading followed by its
    processes."""
    procs = reply.get("processes", [])
    groups = list(reply.get("groups") or [])
    named = {g["name"] for g in groups}
    for p in procs:   # a reply without "groups": the groups its processes name
        if p.get("group") and p["group"] not in named:
            named.add(p["group"])
            groups.append({"name": p["group"], "kind": p.get("kind"),
                           "instances": sum(q.get("group") == p["group"] for q in procs)})
    # Across hosts (hostctl.merged_status) every process says its host.
    hosted = any("host" in p for p in procs)
    header = ("HOST",) * hosted + ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "INSTRUMENTS")

    def row(p):
        return (str(p.get("host") or "-"),) * hosted + _row(p)
    programs = [row(p) for p in procs if not p.get("group")]
    members = {g["name"]: [row(p) for p in procs if p.get("group") == g["name"]] for g in groups}
    rows = [header] + programs + [r for g in groups for r in members[g["name"]]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    summary = ", ".join(f"{g['name']} x{g.get('instances', 0)}" for g in groups if g.get("instances"))
    headline = reply.get("headline") or f"supervisor pid {reply.get('pid')}, run dir {reply.get('run_dir')}"
    lines = [f"{headline}, strategy groups: {summary or 'none'}"
             + (" (shutting down)" if reply.get("shutting_down") else "")]
    if isinstance(reply.get("metrics"), dict):
        m = reply["metrics"]
        lines.append(f"metrics: {m.get('url')}, every process's in {m.get('targets_file')}")
    lines += [line(header)] + [line(r) for r in programs]
    if isinstance(reply.get("trading"), dict):
        lines.append(_trading_line(reply["trading"]))
    for g in groups:
        lines += _group_lines(g)
        lines += [line(r) for r in members[g["name"]]]
    return "\n".join(lines)


def _local_time(ns) -> str:
    """A wall-clock time in ns as local time (with its zone), "-" for none."""
    if not isinstance(ns, int) or isinstance(ns, bool) or ns <= 0:
        return "-"
    t = datetime.datetime.fromtimestamp(ns / 1e9).astimezone()
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} " + t.strftime("%Z")


def _trading_line(t: dict) -> str:
    """status's line on the executor's trading state (its stats' keys)."""
    line = f"trading: {t.get('state') or '?'}"
    if t.get("since_ns"):
        line += f" since {_local_time(t['since_ns'])}"
    if t.get("cause"):
        line += f" ({t['cause']})"
    if isinstance(t.get("open_orders"), int):
        line += f", open orders {t['open_orders']}"
    if t.get("flatten_pending"):
        line += ", flatten pending"
    return line


def format_trading(reply: dict) -> str:
    """A ControlReply (tp_proto.decode's fields, state as its number) for a
    person: state, cause, since (local time), open orders, flatten pending."""
    state = _proto().TRADING_STATES.get(reply.get("state"), str(reply.get("state")))
    lines = [f"state:           {state}",
             f"cause:           {reply.get('cause') or '-'}",
             f"since:           {_local_time(reply.get('since_ns'))}",
             f"open orders:     {reply.get('open_orders')}",
             f"flatten pending: {'yes' if reply.get('flatten_pending') else 'no'}"]
    return "\n".join(lines)


def _proto():
    """scripts/tp_proto.py (the wire format), beside this package."""
    try:
        import tp_proto
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import tp_proto
    return tp_proto


def derived_control_endpoint(orders: str) -> str:
    """common/endpoints.hpp's derived_control_endpoint: tcp://H:N ->
    tcp://H:(N+3), ipc://P -> ipc://P.control (inproc likewise)."""
    if orders.startswith("tcp://"):
        host, colon, port = orders.rpartition(":")
        if colon and len(host) >= 6 and port.isdigit() and int(port) + 3 <= 65535:
            return f"{host}:{int(port) + 3}"
        raise ConfigError(f"endpoints.control: cannot derive it from orders = '{orders}' (no numeric port): set it")
    return orders + ".control"


def read_key_file(path: str, what: str, secret: bool = False) -> str:
    """The Z85 key in `path` (comment lines start with #), read as the C++
    read_key_file and the Python strategy runtime read it; a secret key file
    others may read is refused."""
    if not path:
        raise ConfigError(f"security.{what} must be set when curve = true")
    try:
        if secret and os.stat(path).st_mode & 0o077:
            raise ConfigError(f"security.{what}: secret key file {path} is readable by group or others "
                              "(chmod 600 it)")
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    if len(line) != 40:
                        raise ConfigError(f"security.{what}: {path} does not hold a 40-character Z85 key")
                    return line
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"security.{what}: cannot read key file {path}") from None
    raise ConfigError(f"security.{what}: {path} holds no key")


def control_target(config: str | None, override: str | None = None):
    """(endpoint, curve keys or None) of the executor's control socket: the
    override, else [endpoints] control of the deployment file, else derived
    from its orders endpoint (the embedded default tcp://127.0.0.1:7104 ->
    7107). With [security] curve = true a tcp endpoint gets the client's keys:
    (server public, client public, client secret). ConfigError names the key."""
    origin = config or "<defaults>"
    root = read_root(read_text(config), (), origin) if config else {}

    def table(name):
        t = root.get(name, {})
        if not isinstance(t, dict):
            raise ConfigError(f"{origin}: {name} must be a table")
        return t

    endpoints, security = table("endpoints"), table("security")
    for key in ("control", "orders"):
        if not isinstance(endpoints.get(key, ""), str):
            raise ConfigError(f"{origin}: endpoints.{key} must be a string")
    endpoint = override or endpoints.get("control") or derived_control_endpoint(
        endpoints.get("orders") or DEFAULT_ORDERS)
    curve = security.get("curve", False)
    if not isinstance(curve, bool):
        raise ConfigError(f"{origin}: security.curve must be true or false")
    if not curve or not endpoint.startswith("tcp://"):
        return endpoint, None
    paths = {}
    for key in ("server_public_key", "client_public_key", "client_secret_key"):
        paths[key] = security.get(key, "")
        if not isinstance(paths[key], str):
            raise ConfigError(f"{origin}: security.{key} must be a string")
    return endpoint, (read_key_file(paths["server_public_key"], "server_public_key"),
                      read_key_file(paths["client_public_key"], "client_public_key"),
                      read_key_file(paths["client_secret_key"], "client_secret_key", secret=True))


def sent_by() -> str:
    """tpctl:<user>@<host>, cut to the protocol's 128 bytes."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    who = f"tpctl:{user}@{socket.gethostname()}"
    return who.encode()[:MAX_ID_LENGTH].decode(errors="ignore")


class NoAnswer(Exception):
    """No ControlReply came. `why`: "unreachable" (no connection was ever
    made), "refused" (connected, but no handshake completed: CURVE keys the
    executor does not accept; nothing reached it) or "busy" (the handshake
    done, the request sent, no answer in time: it may still be read, and
    applied, later)."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def control_request(endpoint: str, command: int, reason: str = "", keys=None,
                    attempts: int = CONTROL_ATTEMPTS, timeout_s: float = CONTROL_TIMEOUT_S):
    """Sends one ControlRequest and returns the decoded ControlReply's fields.
    Lazy Pirate: a REQ that got no answer within `timeout_s` is closed and a
    new one sends the same request again (a repeated command is harmless),
    `attempts` times in all; then raises NoAnswer, saying from the sockets'
    events whether a connection was made at all. Raises
    tp_proto.ProtocolError for an answer that is not a ControlReply."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message
    proto = _proto()
    payload = proto.encode("control_request", dict(command=command, reason=reason, sent_by=sent_by(),
                                                   sent_ts_ns=time.time_ns()))
    failed = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
              | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    seen = 0
    ctx = zmq.Context()
    try:
        for _ in range(attempts):
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            if keys:
                sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (k.encode() for k in keys)
            monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | failed)
            try:
                sock.connect(endpoint)
                sock.send(payload)
                if sock.poll(int(timeout_s * 1000), zmq.POLLIN):
                    frames = sock.recv_multipart()
                    name, reply = proto.decode(frames[-1])
                    if len(frames) != 1 or name != "control_reply":
                        raise proto.ProtocolError(f"expected one control_reply frame, got {len(frames)} "
                                                  f"frame(s), the last a {name}")
                    return reply
                while monitor.poll(0):
                    seen |= recv_monitor_message(monitor)["event"]
            finally:
                sock.disable_monitor()
                monitor.close(0)
                sock.close(0)
        if seen & zmq.EVENT_HANDSHAKE_SUCCEEDED:
            raise NoAnswer("busy")
        raise NoAnswer("refused" if seen & (failed | zmq.EVENT_CONNECTED) else "unreachable")
    finally:
        ctx.term()


# What tpctl says when no reply came, by NoAnswer.why.
NO_ANSWER = {
    "unreachable": "nothing accepted a connection there (is the executor running? the endpoint right?)",
    "refused": "a connection was made but its handshake never completed, so the request never reached "
               "the executor (CURVE: is tpctl's client key in security.authorized_clients, the server key "
               "right?)",
    # The request may sit unread in a busy executor's queue (it serves its
    # control socket between its waits on dll_gateway): it is then applied
    # late, which a person must know before acting on "not applied".
    "busy": "it is connected but did not answer; a busy executor may still apply it when it reads it: "
            "check with `tpctl trading`",
}


def trading_command(args) -> int:
    """halt, reduce, flatten, resume or trading: one ControlRequest to the
    executor; prints its reply. 0 applied, 1 refused (or a bad config), 2
    the executor did not answer."""
    reason = args.reason or ""
    if len(reason.encode()) > MAX_TEXT_LENGTH:
        print(f"tpctl: --reason is longer than {MAX_TEXT_LENGTH} bytes", file=sys.stderr)
        return EXIT_ERROR
    try:
        endpoint, keys = control_target(args.config, args.control)
    except ConfigError as e:
        print(f"tpctl: {e}", file=sys.stderr)
        return EXIT_ERROR
    proto = _proto()
    try:
        reply = control_request(endpoint, TRADING_COMMANDS[args.command], reason, keys,
                                attempts=CONTROL_ATTEMPTS, timeout_s=CONTROL_TIMEOUT_S)
    except NoAnswer as e:
        print(f"tpctl: not applied: the executor did not answer at {endpoint} "
              f"({CONTROL_ATTEMPTS} attempts of {CONTROL_TIMEOUT_S:g} s): {NO_ANSWER[e.why]}", file=sys.stderr)
        return EXIT_NO_EXECUTOR
    except proto.ProtocolError as e:
        print(f"tpctl: the executor at {endpoint} answered something unreadable ({e}): "
              "the command may or may not be applied; ask again with `tpctl trading`", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - a malformed endpoint, a CURVE key zmq refuses
        print(f"tpctl: cannot reach {endpoint}: {e}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        out = dict(reply, state=proto.TRADING_STATES.get(reply["state"], reply["state"]), endpoint=endpoint)
        print(json.dumps(out, sort_keys=True))
    else:
        print(format_trading(reply))
    if not reply["ok"]:
        print(f"tpctl: refused: {reply.get('detail') or 'no detail given'}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def across_hosts(args, settings, req: dict) -> int:
    """A supervisor command for a deployment over several hosts: to each
    host's supervisor over tcp (hostctl)."""
    try:
        targets = hostctl.targets(settings, args.host)
        secret = remote.read_secret(settings.control_secret)
    except ConfigError as e:
        print(f"tpctl: {e}", file=sys.stderr)
        return EXIT_ERROR
    cmd = req["cmd"]
    if cmd == "status":
        answers = hostctl.ask_all(targets, secret, req, hostctl.STATUS_TIMEOUT_S)
        print(format_status(hostctl.merged_status(settings, answers)))
        return max((_exit_of(r) for r in answers.values()), default=EXIT_OK)
    if cmd == "scale":
        return hostctl.scale(settings, targets, secret, req.get("name"), req["n"], sys.stdout, sys.stderr)
    if cmd in ("stop", "start", "restart"):
        where = hostctl.hosts_for(settings, req["name"])
        if isinstance(where, str):
            print(f"tpctl: {where}", file=sys.stderr)
            return EXIT_ERROR
        targets = [t for t in targets if t.name in where]
        if not targets:
            print(f"tpctl: {req['name']} runs on {', '.join(where)}, not on --host {args.host}", file=sys.stderr)
            return EXIT_ERROR
    answers = hostctl.ask_all(targets, secret, req, hostctl.COMMAND_TIMEOUT_S)
    for t in targets:
        r = answers[t.name]
        if _exit_of(r) == EXIT_OK:
            print(f"{t.name}: {r.get('message', 'ok')}")
        else:
            print(f"tpctl: {t.name}: {r if isinstance(r, Exception) else r.get('error', 'failed')}", file=sys.stderr)
    return max(_exit_of(r) for r in answers.values())


def _exit_of(reply) -> int:
    if isinstance(reply, remote.Unreachable):
        return EXIT_NO_SUPERVISOR
    if isinstance(reply, Exception) or not reply.get("ok"):
        return EXIT_ERROR
    return EXIT_OK


def socket_path(args) -> str:
    if args.socket:
        return args.socket
    settings = load_settings(args.config)
    run_dir = args.run_dir or settings.run_dir
    return control_path(settings, run_dir)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="tpctl", description="Control a running supervisor, and the executor's trading.",
        epilog="commands: status | top [--once] [--interval S] (a live view: states, rates, latency, "
               "positions, alerts; q or Ctrl-C quits) | stop NAME | start NAME | restart NAME | "
               "scale GROUP N (or scale N with one group) | shutdown; "
               "NAME: a program, a group, GROUP:K or GROUP-K (one instance), strategy (every group). "
               "Trading (to the executor's control socket, from --config or --control): "
               "halt [--reason TEXT] (cancel every order, refuse new ones) | reduce (only orders that "
               "shrink a position) | flatten (close every position, then reduce) | resume (back to "
               "ACTIVE) | trading (the state only); exit 0 applied, 1 refused, 2 no answer")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--run-dir", help="the supervisor's run dir (socket DIR/supervisor.sock)")
    where.add_argument("--socket", help="control socket path")
    ap.add_argument("--config", help="deployment TOML ([supervisor].control, run.dir; [endpoints] "
                                     "control/orders and [security] for the trading commands)")
    ap.add_argument("--host", help="with a --config that has [[hosts]]: only this host's supervisor "
                                   "(default: every host the command concerns)")
    ap.add_argument("--control", help="trading commands: the executor's control endpoint "
                                      "(default: the config's endpoints.control, else derived from orders)")
    ap.add_argument("--reason", help="halt, reduce, flatten, resume: why (kept as the state's cause)")
    ap.add_argument("--json", action="store_true", help="trading commands: print the reply as JSON")
    ap.add_argument("--once", action="store_true", help="top: print one frame as plain text and exit")
    ap.add_argument("--interval", type=float, metavar="S",
                    help="top: seconds between refreshes (default 1; with --once, between its two readings)")
    ap.add_argument("command", choices=["status", "top", "stop", "start", "restart", "scale", "shutdown",
                                        *TRADING_COMMANDS])
    ap.add_argument("args", nargs="*")
    args = ap.parse_args(argv)

    if args.command in TRADING_COMMANDS:
        if args.args:
            ap.error(f"usage: {args.command}" + (" [--reason TEXT]" if args.command != "trading" else ""))
        if args.run_dir or args.socket:
            ap.error(f"{args.command} talks to the executor, not the supervisor: name the deployment "
                     "with --config (or the endpoint with --control), not --run-dir/--socket")
        if args.reason is not None and args.command == "trading":
            ap.error("trading only reads the state: --reason is for halt, reduce, flatten, resume")
        if args.host is not None:
            ap.error(f"{args.command} goes to the executor's endpoint in --config, wherever it runs: no --host")
        return trading_command(args)
    for option in ("control", "reason"):
        if getattr(args, option) is not None:
            ap.error(f"--{option} is for the trading commands ({', '.join(TRADING_COMMANDS)})")
    if args.json:
        ap.error("--json is for the trading commands")
    if args.command != "top" and (args.once or args.interval is not None):
        ap.error("--once and --interval are for top")
    if args.command == "top":
        if args.args:
            ap.error("usage: top [--once] [--interval S]")
        interval = 1.0 if args.interval is None else args.interval
        if not 0.1 <= interval <= 3600:
            ap.error("--interval: seconds between 0.1 and 3600")
        from . import top  # here: top imports this module
        try:
            settings = load_settings(args.config) if args.config and not (args.run_dir or args.socket) else None
            if settings is not None and settings.hosts:
                targets = hostctl.targets(settings, args.host)
                read = top.hosts_reader(settings, targets, remote.read_secret(settings.control_secret))
                where = "on " + ", ".join(f"{t.name} ({t.address}:{t.port})" for t in targets)
            else:
                if args.host is not None:
                    ap.error("--host needs --config FILE with [[hosts]] (and no --run-dir/--socket)")
                path = socket_path(args)
                read, where = top.local_reader(path), f"at {path}"
        except ConfigError as e:
            print(f"tpctl: {e}", file=sys.stderr)
            return EXIT_ERROR
        return top.run(read, where, interval, args.once)

    wanted = {"status": (0,), "shutdown": (0,), "stop": (1,), "start": (1,), "restart": (1,),
              "scale": (1, 2)}
    if len(args.args) not in wanted[args.command]:
        usage = {"stop": "stop NAME", "start": "start NAME", "restart": "restart NAME",
                 "scale": "scale GROUP N (or scale N when there is one group)"}.get(args.command, args.command)
        ap.error(f"usage: {usage}")
    req = {"cmd": args.command}
    if args.command in ("stop", "start", "restart"):
        req["name"] = args.args[0]
    elif args.command == "scale":
        # `scale N`: the supervisor picks the deployment's only group.
        if len(args.args) == 2:
            req["name"] = args.args[0]
        count = args.args[-1]
        try:
            req["n"] = int(count)
        except ValueError:
            print(f"tpctl: instance count must be an integer, not {count!r}", file=sys.stderr)
            return EXIT_ERROR

    settings = None
    if args.config and not (args.run_dir or args.socket):
        try:
            settings = load_settings(args.config)
        except ConfigError as e:
            print(f"tpctl: {e}", file=sys.stderr)
            return EXIT_ERROR
    if settings is not None and settings.hosts:
        return across_hosts(args, settings, req)
    if args.host is not None:
        ap.error("--host needs --config FILE with [[hosts]] (and no --run-dir/--socket)")
    try:
        path = socket_path(args)
    except ConfigError as e:
        print(f"tpctl: {e}", file=sys.stderr)
        return EXIT_ERROR
    try:
        # Commands reply once done: a stop may wait out the SIGTERM grace.
        reply = request(path, req, timeout=10.0 if args.command == "status" else 300.0)
    except NoSupervisor:
        print(f"tpctl: no supervisor running at {path}", file=sys.stderr)
        return EXIT_NO_SUPERVISOR
    if not reply.get("ok"):
        print(f"tpctl: {reply.get('error', 'failed')}", file=sys.stderr)
        return EXIT_ERROR
    print(format_status(reply) if args.command == "status" else reply.get("message", "ok"))
    return EXIT_OK

