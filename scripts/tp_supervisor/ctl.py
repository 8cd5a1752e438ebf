"""tpctl: the client of the control socket (see controller.py); scripts/tpctl
is its entry point."""

import argparse
import json
import socket
import sys

from .settings import ConfigError, control_path, load_settings

EXIT_OK, EXIT_ERROR, EXIT_NO_SUPERVISOR = 0, 1, 2


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
    """The status table: the programs, then each strategy group's heading
    followed by its processes."""
    procs = reply.get("processes", [])
    groups = list(reply.get("groups") or [])
    named = {g["name"] for g in groups}
    for p in procs:   # a reply without "groups": the groups its processes name
        if p.get("group") and p["group"] not in named:
            named.add(p["group"])
            groups.append({"name": p["group"], "kind": p.get("kind"),
                           "instances": sum(q.get("group") == p["group"] for q in procs)})
    header = ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "INSTRUMENTS")
    programs = [_row(p) for p in procs if not p.get("group")]
    members = {g["name"]: [_row(p) for p in procs if p.get("group") == g["name"]] for g in groups}
    rows = [header] + programs + [r for g in groups for r in members[g["name"]]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    summary = ", ".join(f"{g['name']} x{g.get('instances', 0)}" for g in groups if g.get("instances"))
    lines = [f"supervisor pid {reply.get('pid')}, run dir {reply.get('run_dir')}, "
             f"strategy groups: {summary or 'none'}"
             + (" (shutting down)" if reply.get("shutting_down") else "")]
    lines += [line(header)] + [line(r) for r in programs]
    for g in groups:
        lines += _group_lines(g)
        lines += [line(r) for r in members[g["name"]]]
    return "\n".join(lines)


def socket_path(args) -> str:
    if args.socket:
        return args.socket
    settings = load_settings(args.config)
    run_dir = args.run_dir or settings.run_dir
    return control_path(settings, run_dir)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="tpctl", description="Control a running supervisor.",
        epilog="commands: status | stop NAME | start NAME | restart NAME | "
               "scale GROUP N (or scale N with one group) | shutdown; "
               "NAME: a program, a group, GROUP:K or GROUP-K (one instance), strategy (every group)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--run-dir", help="the supervisor's run dir (socket DIR/supervisor.sock)")
    where.add_argument("--socket", help="control socket path")
    ap.add_argument("--config", help="deployment TOML ([supervisor].control, run.dir)")
    ap.add_argument("command", choices=["status", "stop", "start", "restart", "scale", "shutdown"])
    ap.add_argument("args", nargs="*")
    args = ap.parse_args(argv)

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

