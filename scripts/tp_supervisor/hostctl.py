"""tpctl across hosts: a deployment file with [[hosts]] names every host's
supervisor (its [[hosts]] address and [supervisor] control_port, reached
with the shared control_secret: remote.py). Each command goes where the
file says the processes it names run; status asks every host at once, each
within a bounded time, and prints one table with a HOST column, a host that
does not answer shown as UNREACHABLE; a scale stops the group on every host
before any host starts its new set (spread.py for the journals)."""

import concurrent.futures

from . import remote
from .settings import MAX_INSTANCES, PLACED_PROGRAMS, ConfigError, host_of, shard_host
from .states import SCALABLE

# status: each host within this (connect, challenge, reply); all at once.
STATUS_TIMEOUT_S = 3.0
# A command replies once done: a stop may wait out supervisor.stop_grace_ms.
COMMAND_TIMEOUT_S = 300.0


class Target:
    """One host's supervisor as tpctl reaches it."""

    def __init__(self, name: str, address: str, port: int):
        self.name, self.address, self.port = name, address, port


def targets(settings, only=None) -> list:
    """Every host's supervisor (or only the host called `only`)."""
    if not settings.control_port:
        raise ConfigError("tpctl reaches the hosts' supervisors over tcp: set [supervisor] control_port and "
                          "control_secret in the deployment file (each host's supervisor listens there)")
    hosts = [h for h in settings.hosts if only is None or h.name == only]
    if not hosts:
        raise ConfigError(f"--host {only}: no such host in the deployment file "
                          f"(hosts: {', '.join(h.name for h in settings.hosts)})")
    return [Target(h.name, h.address, settings.control_port) for h in hosts]


def hosts_for(settings, name) -> list:
    """The names of the hosts that run what `name` designates (a program, a
    group, GROUP-K or GROUP:K, or "strategy"), in [[hosts]] order; a string
    when nothing is called so."""
    order = [h.name for h in settings.hosts]
    if name in PLACED_PROGRAMS:
        return [host_of(settings.hosts, name).name]
    group = settings.find_group(name)
    if group is not None:
        return [h for h in order if h in group.hosts]
    if name == SCALABLE:
        return [h for h in order if any(h in g.hosts for g in settings.groups)]
    for sep in (":", "-"):
        gname, found, index = name.rpartition(sep)
        group = settings.find_group(gname) if found else None
        if group is not None and index.isdigit():
            return [shard_host(group, int(index))]
    return (f"unknown program '{name}' (known: " + ", ".join(PLACED_PROGRAMS) + ", a group ("
            + ", ".join(g.name for g in settings.groups) + "), GROUP-K or GROUP:K, or strategy)")


def ask(target: Target, secret: bytes, req: dict, timeout: float):
    """The host's reply, or the exception saying why there is none
    (remote.Unreachable, remote.AuthFailed)."""
    try:
        return remote.request(target.address, target.port, secret, req, timeout)
    except (remote.Unreachable, remote.AuthFailed) as e:
        return e


def ask_all(tgts, secret: bytes, req: dict, timeout: float) -> dict:
    """host name -> reply or exception, every host asked at once: the slowest
    host bounds the wait, not their sum."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(tgts))) as pool:
        futures = {t.name: pool.submit(ask, t, secret, req, timeout) for t in tgts}
        return {name: f.result() for name, f in futures.items()}


def merged_status(settings, answers: dict) -> dict:
    """One status reply for the whole deployment: every host's processes
    tagged with its host, a row UNREACHABLE for a host that did not answer,
    each group's heading with its instances across hosts and the executor's
    figures for it, the trading state of the host that has it, and (asked
    with "stats") every host's stats by process name (names are the
    deployment's: no two hosts run the same one)."""
    procs, groups, trading, heads, stats = [], {}, None, [], {}
    for h in settings.hosts:
        if h.name not in answers:
            continue
        reply = answers[h.name]
        if isinstance(reply, Exception) or not reply.get("ok"):
            why = str(reply) if isinstance(reply, Exception) else reply.get("error", "refused")
            state = "UNREACHABLE" if isinstance(reply, remote.Unreachable) else "REFUSED"
            procs.append({"host": h.name, "name": "supervisor", "state": state, "pid": None,
                          "restarts": "-", "last_exit": why})
            heads.append(f"{h.name} {state}")
            continue
        heads.append(f"{h.name} (supervisor pid {reply.get('pid')}, run dir {reply.get('run_dir')})"
                     + (" shutting down" if reply.get("shutting_down") else ""))
        procs += [dict(p, host=h.name) for p in reply.get("processes", [])]
        for g in reply.get("groups") or []:
            seen = groups.setdefault(g["name"], dict(g, instances=0))
            seen["instances"] += g.get("instances", 0)   # each host counts its own
            if g.get("executor") is not None:
                seen["executor"] = g["executor"]
        if isinstance(reply.get("trading"), dict):
            trading = reply["trading"]
        if isinstance(reply.get("stats"), dict):
            stats.update(reply["stats"])
    out = {"ok": True, "processes": procs, "groups": list(groups.values()),
           "headline": "hosts: " + "; ".join(heads), "stats": stats}
    if trading is not None:
        out["trading"] = trading
    return out


def scale_plan(settings, group_name, n):
    """(group, its hosts) of a scale across hosts, or an error string. At
    least one instance per host of the group: a host left without one would
    keep its journals unadopted (spread.py)."""
    group = settings.find_group(group_name) if group_name is not None else (
        settings.groups[0] if len(settings.groups) == 1 else None)
    if group is None:
        return (f"unknown group {group_name!r} (groups: {', '.join(g.name for g in settings.groups)})"
                if group_name is not None else
                f"the deployment has {len(settings.groups)} strategy groups: name one (scale GROUP N)")
    if not 1 <= n <= MAX_INSTANCES:
        return f"instance count must be an integer in 1..{MAX_INSTANCES}"
    if n < len(group.hosts):
        return (f"{group.name} runs on hosts {', '.join(group.hosts)}: each keeps at least one instance (a "
                f"host's journals are adopted on its own disk), so N >= {len(group.hosts)}; to run fewer, "
                "list fewer hosts for the group in the file")
    return group, group.hosts


def scale(settings, tgts, secret: bytes, group_name, n: int, out, err) -> int:
    """Phase 1 on every host of the group (stop its instances), then, only
    once every one of them has, phase 2 (each starts its share of n).
    Returns tpctl's exit code: 0 done, 1 refused, 2 a host did not answer."""
    plan = scale_plan(settings, group_name, n)
    if isinstance(plan, str):
        print(f"tpctl: {plan}", file=err)
        return 1
    group, hosts = plan
    by_name = {t.name: t for t in tgts}
    missing = [h for h in hosts if h not in by_name]
    if missing:
        print(f"tpctl: scale {group.name} needs every host of the group ({', '.join(hosts)}), not --host",
              file=err)
        return 1
    tgts = [by_name[h] for h in hosts]
    stops = ask_all(tgts, secret, {"cmd": "scale", "name": group.name, "phase": "stop"}, COMMAND_TIMEOUT_S)
    failed = {h: r for h, r in stops.items() if isinstance(r, Exception) or not r.get("ok")}
    for h, r in stops.items():
        if h not in failed:
            print(f"{h}: {r.get('message')}", file=out)
    if failed:
        for h, r in failed.items():
            print(f"tpctl: {h}: {r if isinstance(r, Exception) else r.get('error')}", file=err)
        print(f"tpctl: scale {group.name} {n} stopped before starting anything: the instances of {group.name} "
              f"on the hosts that answered are stopped; run the scale again once every host answers",
              file=err)
        return 2 if any(isinstance(r, remote.Unreachable) for r in failed.values()) else 1
    rc = 0
    for t in tgts:   # one at a time: each reply says what that host started
        r = ask(t, secret, {"cmd": "scale", "name": group.name, "n": n, "phase": "start"}, COMMAND_TIMEOUT_S)
        if isinstance(r, Exception) or not r.get("ok"):
            print(f"tpctl: {t.name}: {r if isinstance(r, Exception) else r.get('error')}", file=err)
            rc = max(rc, 2 if isinstance(r, remote.Unreachable) else 1)
            continue
        print(f"{t.name}: {r.get('message')}", file=out)
        for before, after in r.get("renamed") or []:
            print(f"{t.name}: journal {before} renamed {after} (adopted on this host)", file=out)
        if r.get("left"):
            print(f"{t.name}: journals left unadopted (no instance here): {', '.join(r['left'])}", file=out)
    if rc == 0:
        print(f"{group.name} scaled to {n} over {', '.join(hosts)}", file=out)
    return rc
