"""systemd units for one host of a deployment, from the same file and the
same command lines as the supervisor (settings.processes_on_host,
settings.command_line): scripts/tp_units.py writes them, docs/DEPLOY.md says
how to use them.

Per host:
  tp.target                      the host's share: `systemctl start tp.target`
  tp-<program>.service           gateway, executor, dll_gateway, dead_letter
  tp-strategy-<group>@.service   a group's shards; the instance name is the
                                 shard k (tp-strategy-trend@0.service), n is
                                 the group's instances in the file
  tp-strategy-<group>@<k>.service.d/metrics-port.conf
                                 with [metrics] port set: shard k's port
Every service is Type=notify (the programs say READY=1 once their loop runs,
common/systemd_notify.hpp) with the supervisor's hang timeout as WatchdogSec,
restarts on failure with the supervisor's back-off and flapping limit,
starts after the earlier stages of the supervisor's order on this host (and
stops before them), and is PartOf tp.target."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from .metrics import metrics_port
from .settings import Placement, Settings, command_line, processes_on_host

TARGET = "tp.target"
# RestartSteps= and RestartMaxDelaySec= (a growing delay) came in systemd 254;
# before, RestartSec is a fixed delay.
BACKOFF_STEPS_SINCE = 254
SHARD = "%i"  # a template's instance name: the shard k
# A shard's metrics port, set per instance by a drop-in (a template cannot
# add k to a number); 0, metrics off, for a shard without one.
METRICS_PORT_VAR = "TP_METRICS_PORT"


@dataclass
class UnitOptions:
    """What the deployment file does not say: where things are on the host."""
    config_path: str               # the deployment file, absolute
    bin_dir: str                   # the C++ programs
    run_dir: str                   # --run-dir of every process
    python: str = "/usr/bin/python3"   # python groups: python -m tp_strategy
    strategy_python: str = ""      # the directory holding tp_strategy (PYTHONPATH)
    overrides: tuple = ()          # --set, baked into every command line
    user: str = ""                 # User= and Group= (empty: root)
    memory_max: str = "128M"       # a C++ program (peak RSS <= 30 MB measured, README)
    python_memory_max: str = "256M"  # a python shard (the interpreter and its modules)
    nofile: int = 65536            # LimitNOFILE: a descriptor per connection
    tasks_max: int = 64            # TasksMax: threads (ZeroMQ's, the metrics server's)
    systemd_version: int = 252     # Debian 12's


def unit_name(p: Placement) -> str:
    """The service that runs placement `p` (a shard: its template's instance)."""
    if p.group is not None:
        return f"tp-strategy-{p.group}@{p.k}.service"
    return f"tp-{p.program}.service"


def template_name(group: str) -> str:
    return f"tp-strategy-{group}@.service"


def exec_quote(arg: str, variables: bool = True) -> str:
    """One ExecStart= (or Environment=, variables False) word as systemd
    reads it back: % doubled (specifiers), $ doubled where variables are
    expanded, quoted when it holds a space, a quote, a backslash or ;."""
    arg = arg.replace("%", "%%")
    if variables:
        arg = arg.replace("$", "$$")
    if arg and not re.search(r'[\s"\'\\;]', arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_start(settings: Settings, p: Placement, opts: UnitOptions) -> str:
    """The supervisor's command line for `p`; for a template, the shard
    argument is the instance name (%i). With [metrics] port set, each
    process's own port after it, as Arbiter.command adds it."""
    cmd = command_line(p, opts.bin_dir, opts.run_dir, opts.config_path, opts.overrides, opts.python)
    if p.group is None:
        if settings.metrics_port:
            cmd += ["--set", f"metrics.port={metrics_port(settings.metrics_port, p.program)}"]
        return " ".join(exec_quote(a) for a in cmd)
    i = cmd.index("--shard") + 1
    words = [SHARD if n == i else exec_quote(a) for n, a in enumerate(cmd)]
    if settings.metrics_port:
        words += ["--set", f"metrics.port=${{{METRICS_PORT_VAR}}}"]
    return " ".join(words)


def python_path(settings: Settings, group: str, opts: UnitOptions) -> str:
    """A python group's PYTHONPATH, as the supervisor's (Arbiter.environment):
    its python_path (a relative one from the deployment file's directory,
    the units' working directory), then tp_strategy's directory."""
    g = settings.find_group(group)
    path = []
    if g and g.python_path:
        path.append(os.path.normpath(os.path.join(os.path.dirname(opts.config_path), g.python_path)))
    if opts.strategy_python:
        path.append(opts.strategy_python)
    return os.pathsep.join(path)


def _ms(ms: int) -> str:
    return f"{ms}ms"


def service(settings: Settings, p: Placement, after: list, host: str | None, opts: UnitOptions) -> str:
    """The [Unit], [Service] and [Install] of placement `p` (a shard: its
    group's template), started after the units `after`."""
    s = settings
    where = f" on host {host}" if host else ""
    shard = p.group is not None
    python = p.kind == "python"
    what = f"strategy group {p.group}, shard {SHARD} of {p.n}" if shard else p.program
    unit = [
        "[Unit]",
        f"Description=Trading pipeline: {what}{where}",
        f"PartOf={TARGET}",
        "Wants=network-online.target",
        "After=" + " ".join(["network-online.target", *after]),
        # The supervisor's flapping rule: this many starts in the window,
        # then the unit stays failed (`systemctl reset-failed` clears it).
        f"StartLimitIntervalSec={s.flap_window_s}s",
        f"StartLimitBurst={s.flap_max_restarts}",
        "",
        "[Service]",
        "Type=notify",
        f"ExecStart={exec_start(s, p, opts)}",
        # Relative paths in the file (a csv, a plugin) are from the file's directory.
        f"WorkingDirectory={os.path.dirname(opts.config_path).replace('%', '%%')}",
        f"SyslogIdentifier={p.group + '-' + SHARD if shard else p.program}",
    ]
    if shard and s.metrics_port:
        unit.append(f"Environment={METRICS_PORT_VAR}=0")
    if python:
        unit.append("Environment=" + exec_quote("PYTHONPATH=" + python_path(s, p.group, opts), variables=False))
    if opts.user:
        unit += [f"User={opts.user}", f"Group={opts.user}"]
    unit += ["Restart=on-failure", f"RestartSec={_ms(s.backoff_min_ms)}"]
    if opts.systemd_version >= BACKOFF_STEPS_SINCE:
        # The supervisor's doubling from backoff_min_ms to backoff_max_ms.
        steps = max(1, (s.backoff_max_ms // max(1, s.backoff_min_ms)).bit_length() - 1)
        unit += [f"RestartSteps={steps}", f"RestartMaxDelaySec={_ms(s.backoff_max_ms)}"]
    if s.hang_timeout_ms > 0:
        # The supervisor's HUNG: no sign of the loop for this long.
        unit.append(f"WatchdogSec={_ms(s.hang_timeout_ms)}")
    unit += [
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={_ms(s.stop_grace_ms)}",
        f"MemoryMax={opts.python_memory_max if python else opts.memory_max}",
        f"LimitNOFILE={opts.nofile}",
        f"TasksMax={opts.tasks_max}",
        "",
        "[Install]",
        f"WantedBy={TARGET}",
    ]
    return "\n".join(unit) + "\n"


def units(settings: Settings, host: str | None, opts: UnitOptions) -> dict:
    """{file name: text} of every unit `host` needs (None: the whole
    deployment on one machine), and with [metrics] port set each shard's
    drop-in <unit>.d/metrics-port.conf. Raises ValueError for a host the file does
    not have, or a missing one when it has [[hosts]]."""
    names = [h.name for h in settings.hosts]
    if host is None and names:
        raise ValueError(f"the file has [[hosts]]: name one with --host ({', '.join(names)})")
    if host is not None and host not in names:
        raise ValueError(f"no host {host!r} in the file" + (f" (hosts: {', '.join(names)})" if names else
                                                             " (it has no [[hosts]]: leave --host out)"))
    placements = processes_on_host(settings, host)
    header = (f"# Generated by scripts/tp_units.py from {opts.config_path}"
              f"{' for host ' + host if host else ''}: regenerate it rather than edit it.\n")
    out = {}
    earlier = []   # the units of the stages before the current one
    stage, stage_units = None, []
    for p in placements:
        if p.program != stage:
            earlier += stage_units
            stage, stage_units = p.program, []
        name = unit_name(p)
        stage_units.append(name)
        file = template_name(p.group) if p.group is not None else name
        if file not in out:
            out[file] = header + service(settings, p, list(earlier), host, opts)
        if p.group is not None and settings.metrics_port:
            # The port the supervisor gives it: its slot is its place among
            # this host's shards in start order (metrics.py).
            slot = sum(1 for q in placements[:placements.index(p)] if q.group is not None)
            port = metrics_port(settings.metrics_port, p.program, slot)
            out[f"{name}.d/metrics-port.conf"] = header + f"[Service]\nEnvironment={METRICS_PORT_VAR}={port}\n"
    target = [
        "[Unit]",
        f"Description=Trading pipeline{' on host ' + host if host else ''}",
        # The processes of this host in the file; a shard added by hand
        # (`systemctl enable --now tp-strategy-G@K`) joins through [Install].
        "Wants=" + " ".join(unit_name(p) for p in placements),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    out[TARGET] = header + "\n".join(target) + "\n"
    return out


def local_systemd_version() -> int | None:
    """The major version `systemctl --version` reports here; None without systemd."""
    try:
        text = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"systemd (\d+)", text)
    return int(m.group(1)) if m else None
