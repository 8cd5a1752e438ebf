"""The arbiter: the supervisor's single-threaded loop.

Start order (stop order is the reverse, one stage at a time):
  1. dead_letter      - first, so that nothing dead-lettered during start-up is lost
  2. dll_gateway      - the broker side is up before orders can arrive
  3. executor         - binds the signal PULL before strategies push to it
  4. the strategy groups, each G as G-0..G-(n-1), in config order
                      - every consumer of ticks is connected...
  5. gateway          - ...before the first tick is published
The next stage starts when the processes of the current one are RUNNING (or
have already failed; a failing process does not hold up the others).

A group of a built-in kind or a plugin runs the `strategy` binary, a python
group `python3 -m tp_strategy` (strategy/python, the group's python_path
first on PYTHONPATH); both as `--group G --shard k --shards n`.

Requests from the controller run as operations (generators that yield while
they wait), one at a time; scaling a group stops every instance of that group
before starting its new set (the other groups run on)."""

import collections
import dataclasses
import os
import selectors
import signal
import subprocess
import sys
import time

from . import layout, metrics, report, spread
from .controller import Controller
from .policy import RestartPolicy
from .settings import (ConfigError, Placement, Settings, command_line, control_path, is_int,
                       processes_on_host, shard_host)
from .states import (BACKOFF, FATAL, HUNG, PROGRAMS, RUNNING, SCALABLE,
                     STARTING, STARTUP_S, STOPPED, STOPPING, TICK_S)
from .stats import read_stats, stats_signature
from .watcher import Proc, signal_group, start_process


class Arbiter:
    """Runs the watchers (one Proc per process, in start order), the
    operations queued by the controller and the timers (back-off restarts,
    SIGKILL after the stop grace, STARTING -> RUNNING, the heartbeat watch),
    in one thread around one selector."""

    def __init__(self, settings: Settings, run_dir: str, bin_dir: str,
                 config_path=None, overrides=(), out=sys.stdout, err=sys.stderr,
                 python_dir=layout.strategy_python_dir(), host=None):
        self.s = settings
        self.host = host   # with [[hosts]]: the host whose share this supervisor runs
        self.run_dir = run_dir
        self.bin_dir = bin_dir
        self.config_path = config_path
        self.overrides = list(overrides)
        self.out, self.err = out, err
        self.python_dir = python_dir   # the tp_strategy runtime, for python groups
        self.control = os.path.abspath(control_path(settings, run_dir))
        # The groups as configured; their instance counts change with `scale`.
        self.groups = {g.name: dataclasses.replace(g) for g in settings.groups}
        self.procs = []
        slots = set()
        for place in processes_on_host(settings, host):
            if place.group is not None:
                self.procs.append(self._new_instance(self.groups[place.group], place.k, place.n, slots))
            else:
                self.procs.append(Proc(place.program, RestartPolicy.from_settings(settings),
                                       hang_timeout_s=settings.hang_timeout_ms / 1000.0))
        self.lives = {}   # a strategy's counters per past pid (report.remember_life)
        self.ops = collections.deque()   # [generator, client or None]; run one at a time
        self.shutting_down = False
        self.finished = False
        self.sel = selectors.DefaultSelector()
        self.controller = Controller(self, self.control, self.sel)
        self.wake_r = self.wake_w = None
        self.metrics = None             # metrics.MetricsServer while metrics.port is set
        self.metrics_shown = None       # (state signature, monotonic time) last published

    def _new_instance(self, group, k: int, n: int, slots: set) -> Proc:
        """Instance k of n of `group`, in the lowest metrics slot not in
        `slots` (which it then joins)."""
        p = Proc(SCALABLE, RestartPolicy.from_settings(self.s), index=k, shards=n,
                 hang_timeout_s=self.s.hang_timeout_ms / 1000.0, group=group.name,
                 kind=group.kind, instruments=group.instruments)
        p.metrics_slot = metrics.lowest_free_slot(slots)
        slots.add(p.metrics_slot)
        return p

    def log(self, msg: str) -> None:
        print(f"supervisor {time.strftime('%H:%M:%S')} {msg}", file=self.err, flush=True)

    # -- process control ---------------------------------------------------

    def instances(self, group=None):
        """The strategy processes: of every group, or of the group named `group`."""
        return [p for p in self.procs if p.program == SCALABLE and (group is None or p.group == group)]

    def stages(self):
        """Processes grouped in start order."""
        return [[p for p in self.procs if p.program == prog] for prog in PROGRAMS]

    def command(self, p: Proc) -> list:
        # settings.command_line: the systemd unit generator writes the same.
        placement = Placement(p.program, p.name, p.group, p.index or 0, p.shards or 1, p.kind)
        cmd = command_line(placement, self.bin_dir, self.run_dir, self.config_path, self.overrides)
        if self.s.metrics_port:
            # After the operator's --set metrics.port=P (the supervisor's own),
            # so that this one wins.
            cmd += ["--set", f"metrics.port={self.metrics_port(p)}"]
        return cmd

    # -- metrics ------------------------------------------------------------------

    def metrics_port(self, p: Proc) -> int:
        return metrics.metrics_port(self.s.metrics_port, p.program, p.metrics_slot)

    def metrics_problems(self, procs) -> list:
        """Why some of `procs` could not serve their metrics: a port beyond
        65535 or one another program listens on; [] when all can."""
        return [f"{p.name}: {why}" for p in procs
                if (why := metrics.port_problem(self.s.metrics_host, self.metrics_port(p)))]

    def start_metrics(self) -> None:
        """With metrics.port set: serves the supervisor's metrics, checks that
        every process's port is free and writes the targets file. A port
        clash is a start-up error (ConfigError), before any process starts."""
        if not self.s.metrics_port:
            return
        problems = self.metrics_problems(self.procs)
        if problems:
            raise ConfigError(f"metrics.port {self.s.metrics_port}: " + "; ".join(problems))
        try:
            self.metrics = metrics.MetricsServer(self.s.metrics_host, self.s.metrics_port)
        except OSError as e:
            raise ConfigError(str(e)) from None
        self.write_targets()
        self.log(f"metrics on {metrics.address(self.s.metrics_host, self.s.metrics_port)}, "
                 f"targets in {os.path.join(self.run_dir, metrics.TARGETS_FILE)}")

    def write_targets(self) -> None:
        metrics.write_targets(self.run_dir, metrics.targets(self.s.metrics_host, self.s.metrics_port,
                                                            self.procs))

    def publish_metrics(self, now: float) -> None:
        """Hands the server a new text when a state changed, else once a
        second (the restarts and exits are part of the signature too)."""
        if self.metrics is None:
            return
        sig = metrics.state_signature(self.procs)
        if self.metrics_shown and self.metrics_shown[0] == sig and now - self.metrics_shown[1] < 1.0:
            return
        groups = {g: len(self.instances(g)) for g in self.groups}
        self.metrics.publish(metrics.render(self.procs, groups), time.time_ns())
        self.metrics_shown = (sig, now)

    def environment(self, p: Proc):
        """A python group's environment: PYTHONPATH = its python_path (if
        any; a relative one from the working directory, else from the config
        file's, as tp_strategy resolves it), the runtime's directory
        (strategy/python of a checkout, lib/trading-pipeline installed), then
        the inherited one; None (inherit) for every other process."""
        if p.kind != "python":
            return None
        group = self.groups.get(p.group)
        path = []
        if group and group.python_path:
            where = group.python_path
            if not os.path.isabs(where) and not os.path.isdir(where) and self.config_path:
                where = os.path.join(os.path.dirname(self.config_path), where)
            path.append(os.path.abspath(where))
        path.append(self.python_dir)
        if os.environ.get("PYTHONPATH"):
            path.append(os.environ["PYTHONPATH"])
        return dict(os.environ, PYTHONPATH=os.pathsep.join(path))

    def spawn(self, p: Proc, now: float) -> None:
        log_dir = os.path.join(self.run_dir, "logs")
        os.makedirs(log_dir, exist_ok=True)
        with open(os.path.join(log_dir, p.file_name + ".log"), "ab") as logf:
            try:
                popen = start_process(self.command(p), logf, self.environment(p))
            except (OSError, subprocess.SubprocessError) as e:
                p.popen = None
                self.log(f"{p.name}: cannot start: {e}")
                p.last_exit = f"cannot start: {getattr(e, 'strerror', None) or e}"
                self._crashed(p, now, 0.0)
                return
        p.started(popen, now)

    def request_stop(self, p: Proc, now: float) -> None:
        if p.alive:
            if p.state != STOPPING:
                self._signal(p, signal.SIGTERM)
                # A stopped (SIGSTOP, hung in a debugger) process never
                # handles SIGTERM; SIGCONT lets it exit cleanly, and one that
                # stays stuck still gets the SIGKILL after the grace.
                self._signal(p, signal.SIGCONT)
                p.state = STOPPING
                p.kill_at = now + self.s.stop_grace_ms / 1000.0
        else:
            p.state = STOPPED
            p.next_start = None

    def _signal(self, p: Proc, sig) -> None:
        signal_group(p.popen.pid, sig)

    def _crashed(self, p: Proc, now: float, uptime: float) -> None:
        if self.shutting_down:
            p.state = STOPPED
            return
        delay = p.policy.on_crash(now, uptime)
        if delay is None:
            p.state = FATAL
            p.next_start = None
            self.log(f"{p.name}: FATAL: exited {len(p.policy.recent) + 1} times within "
                     f"{self.s.flap_window_s} s ({p.last_exit}); left stopped, "
                     f"use 'tpctl start {p.name}' to try again")
        else:
            p.state = BACKOFF
            p.next_start = now + delay
            self.log(f"{p.name}: {p.last_exit}; restarting in {delay:.2f} s")

    def reap(self, now: float) -> None:
        for p in self.procs:
            uptime = p.poll(now)
            if uptime is None:
                continue
            if p.group is not None:
                report.remember_life(self.lives, self.run_dir, p.file_name, p.pid)
            if p.state == STOPPING:
                p.state = STOPPED
                p.kill_at = None
            else:
                self._crashed(p, now, uptime)

    def timers(self, now: float) -> None:
        for p in self.procs:
            if p.state == STOPPING and p.kill_at is not None and now >= p.kill_at:
                self.log(f"{p.name}: still running {self.s.stop_grace_ms} ms after SIGTERM; SIGKILL")
                self._signal(p, signal.SIGKILL)
                p.kill_at = None
            elif p.state == BACKOFF and now >= p.next_start and not self.shutting_down:
                self.spawn(p, now)
            elif p.state == STARTING:
                # Polled first: this heartbeat also counts towards arming the watch.
                if self.poll_heartbeat(p, now) or now - p.started_at >= STARTUP_S:
                    p.state = RUNNING
            elif p.state in (RUNNING, HUNG) and p.alive:
                self.watch(p, now)

    def poll_heartbeat(self, p: Proc, now: float) -> bool:
        """True when p's stats file shows a new heartbeat of p's pid (parsed
        only when its signature changed since the last look)."""
        sig = stats_signature(self.run_dir, p.file_name)
        if sig is None or sig == p.hb.sig:
            return False
        p.hb.sig = sig
        data = read_stats(self.run_dir, p.file_name)
        if data is None:
            return False
        stamp = data.get("ts_ns")
        # A program that needs an operator says so in its stats ("alert"):
        # shown by status beside its state.
        alert = data.get("alert")
        p.alert = alert if isinstance(alert, str) and alert and data.get("pid") == p.pid else None
        return p.hb.saw(now, data.get("pid"), stamp if is_int(stamp) else sig)

    def watch(self, p: Proc, now: float) -> None:
        """RUNNING <-> HUNG from the heartbeat; SIGKILL if restart_hung."""
        silent = p.hb.age(now)
        beat = self.poll_heartbeat(p, now)
        if p.state == HUNG:
            if beat and not p.hung_killed:
                p.state = RUNNING
                self.log(f"{p.name}: heartbeat again after {silent:.1f} s; RUNNING (pid {p.pid})")
            return
        if not p.hb.expired(now):
            return
        p.state = HUNG
        if self.s.restart_hung:
            self.log(f"{p.name}: HUNG: no heartbeat from pid {p.pid} for {silent:.1f} s; "
                     f"SIGKILL and restart (supervisor.restart_hung)")
            self._signal(p, signal.SIGKILL)
            p.hung_killed = True
        else:
            self.log(f"{p.name}: HUNG: no heartbeat from pid {p.pid} for {silent:.1f} s; "
                     f"left alone (supervisor.restart_hung = false)")

    # -- operations: generators that yield while they wait -------------------

    def op_boot(self):
        for stage in self.stages():
            for p in stage:
                self.spawn(p, time.monotonic())
            while any(p.state == STARTING for p in stage):
                yield
        self.log(f"started {len(self.procs)} processes from {self.bin_dir}")
        return None

    def _stop_all(self, procs):
        now = time.monotonic()
        for p in procs:
            self.request_stop(p, now)
        while any(p.alive for p in procs):
            yield

    def _start_all(self, procs):
        now = time.monotonic()
        for p in procs:
            p.policy.reset()
            if not p.alive:
                self.spawn(p, now)

    def op_stop(self, procs):
        yield from self._stop_all(list(reversed(procs)))
        return {"ok": True, "message": "stopped " + ", ".join(p.name for p in procs)}

    def op_start(self, procs):
        # A process still stopping is let go first; a live one is left alone.
        yield from self._stop_all([p for p in procs if p.state == STOPPING])
        self._start_all(procs)
        return {"ok": True, "message": "started " + ", ".join(
            f"{p.name} (pid {p.pid})" for p in procs)}

    def op_restart(self, procs):
        before = {p.name: p.pid if p.alive else None for p in procs}
        yield from self._stop_all(list(reversed(procs)))
        self._start_all(procs)
        return {"ok": True, "message": "restarted " + ", ".join(
            f"{p.name} (pid {before[p.name] or '-'} -> {p.pid})" for p in procs)}

    def op_scale(self, group: str, n: int):
        hosts = self.groups[group].hosts
        if self.host is not None and hosts != [self.host]:
            return {"ok": False, "error": f"{group} runs on hosts {', '.join(hosts)}: scale it with "
                                          f"`tpctl --config FILE scale {group} {n}`, which stops it on every "
                                          "host before any starts its new set"}
        old = self.instances(group)
        if n == len(old) and all(p.shards == n for p in old):
            return {"ok": True, "message": f"{group} already runs {n} instances",
                    "group": group, "instances": n}
        # Stop every instance of the group first, so that no instrument is
        # ever traded by an old-sharding and a new-sharding instance of it at
        # the same time. The departed instances' journals stay for adoption
        # by the new set (instance k of n adopts <group>-j.journal, j % n == k).
        kept = old[:n]
        slots = {p.metrics_slot for p in self.instances() if p not in old[n:]}
        g = self.groups[group]
        added = [self._new_instance(g, k, n, slots) for k in range(len(kept), n)]
        problems = self.metrics_problems(added) if self.s.metrics_port else []
        if problems:
            return {"ok": False, "error": f"cannot scale {group} to {n}: metrics port: " + "; ".join(problems)}
        yield from self._stop_all(list(reversed(old)))
        first = self.procs.index(old[0])
        for p in kept:
            p.shards = n
        g.instances = n
        new = kept + added
        self.procs[first:first + len(old)] = new
        if self.s.metrics_port:
            self.write_targets()
        self._start_all(new)
        self.log(f"{group} scaled {len(old)} -> {n}")
        return {"ok": True, "message": f"{group} scaled {len(old)} -> {n}",
                "group": group, "instances": n}

    # -- a scale across hosts: tpctl runs phase 1 on every host of the group,
    # then phase 2 (README "Several machines") ----------------------------------

    def op_scale_stop(self, group: str):
        """Phase 1: this host's instances of `group` stop (left STOPPED until
        phase 2 replaces them), so that no instrument is traded by an old and
        a new instance at once, whichever host either is on."""
        old = self.instances(group)
        yield from self._stop_all(list(reversed(old)))
        names = [p.name for p in old]
        return {"ok": True, "host": self.host, "group": group, "stopped": names,
                "message": f"stopped {', '.join(names) or 'no instance'} of {group}"}

    def op_scale_start(self, group: str, n: int):
        """Phase 2: this host's share of n instances of `group` (instance k
        where hosts[k % len(hosts)] is this host), after moving the local
        journals that no local instance would read to names one will adopt
        (spread.py)."""
        old = self.instances(group)
        g = self.groups[group]
        local = [k for k in range(n) if self.host is None or shard_host(g, k) == self.host]
        kept = {p.index: p for p in old if p.index in local}
        slots = {p.metrics_slot for p in self.instances() if p.group != group or p.index in kept}
        added = {k: self._new_instance(g, k, n, slots) for k in local if k not in kept}
        problems = self.metrics_problems(added.values()) if self.s.metrics_port else []
        if problems:
            return {"ok": False, "error": f"cannot start {group}'s share of {n} here: metrics port: "
                                          + "; ".join(problems)}
        yield from self._stop_all(list(reversed(old)))   # phase 1 missed here: stop first all the same
        renamed, left = spread.rehome(self.run_dir, group, n, local)
        for before, after in renamed:
            self.log(f"{group}: {before} renamed {after}, for an instance of this host to adopt")
        if left:
            self.log(f"{group}: no instance of it runs on this host: {', '.join(left)} left unadopted here")
        new = [kept.get(k) or added[k] for k in local]
        for p in new:
            p.shards = n
        g.instances = n
        self._replace_instances(group, new)
        if self.s.metrics_port:
            self.write_targets()
        self._start_all(new)
        names = [p.name for p in new]
        self.log(f"{group} scaled to {n}: this host runs {', '.join(names) or 'none of them'}")
        return {"ok": True, "host": self.host, "group": group, "instances": n, "started": names,
                "renamed": renamed, "left": left,
                "message": f"{group}: started {', '.join(names) or 'no instance'} of {n}"}

    def _replace_instances(self, group: str, new) -> None:
        """`new` in place of the group's instances in self.procs, where its
        group comes in the start order (after the groups before it)."""
        order = list(self.groups)

        def rank(p):
            return (PROGRAMS.index(p.program), order.index(p.group) if p.group in order else -1)
        others = [p for p in self.procs if not (p.program == SCALABLE and p.group == group)]
        at = next((i for i, p in enumerate(others) if rank(p) > (PROGRAMS.index(SCALABLE), order.index(group))),
                  len(others))
        self.procs[:] = others[:at] + list(new) + others[at:]

    def op_shutdown(self):
        self.shutting_down = True
        for stage in reversed(self.stages()):
            yield from self._stop_all(stage)
        self.finished = True
        return {"ok": True, "message": "all stopped"}

    def begin_shutdown(self, client=None, why="") -> None:
        if self.shutting_down:
            if client is not None:
                self.controller.reply(client, {"ok": True, "message": "already shutting down"})
            return
        if why:
            self.log(f"shutting down ({why})")
        self.shutting_down = True
        # Queued requests will not run; the current one is abandoned.
        while self.ops:
            _, c = self.ops.popleft()
            if c is not None:
                self.controller.reply(c, {"ok": False, "error": "supervisor is shutting down"})
        self.ops.append([self.op_shutdown(), client])

    def run_ops(self) -> None:
        while self.ops:
            gen, client = self.ops[0]
            try:
                next(gen)
                return          # waiting
            except StopIteration as done:
                self.ops.popleft()
                if client is not None and done.value is not None:
                    self.controller.reply(client, done.value)

    def missing_programs(self) -> list:
        """The binaries this deployment needs that bin_dir lacks (a
        deployment of python groups only needs no strategy binary)."""
        needed = {p.program for p in self.procs if p.kind != "python"}
        return [p for p in PROGRAMS if p in needed and not os.access(os.path.join(self.bin_dir, p), os.X_OK)]

    def stop_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None

    def _on_signal(self, signum, _frame):
        self._pending_signal = signum

    def run(self, duration=None, status_line=False) -> int:
        missing = self.missing_programs()
        if missing:
            raise ConfigError(f"no executable {', '.join(missing)} in {self.bin_dir} "
                              "(build first: cmake --preset release && cmake --build --preset release, "
                              "or pass --bin-dir)")
        os.makedirs(self.run_dir, exist_ok=True)
        self.start_metrics()
        try:
            self.controller.open()
        except BaseException:
            self.stop_metrics()
            raise
        # Signals wake the selector through a self-pipe; handlers only record.
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        old_wakeup = signal.set_wakeup_fd(self.wake_w)
        self._pending_signal = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that it wakes us
        tcp = self.controller.tcp_listener
        self.log(f"pid {os.getpid()}, " + (f"host {self.host}, " if self.host else "")
                 + f"run dir {self.run_dir}, control {self.control}"
                 + (" and tcp %s:%d" % tcp.getsockname()[:2] if tcp else ""))
        started = time.monotonic()
        next_status = started + 1.0
        self.ops.append([self.op_boot(), None])
        try:
            while not self.finished:
                now = time.monotonic()
                if self._pending_signal is not None:
                    self.begin_shutdown(why=signal.Signals(self._pending_signal).name)
                    self._pending_signal = None
                if duration is not None and now - started >= duration:
                    self.begin_shutdown(why=f"--duration {duration:g} s elapsed")
                self.reap(now)
                self.timers(now)
                self.controller.expire(now)
                self.run_ops()
                self.publish_metrics(now)
                if self.finished:
                    break
                if status_line and now >= next_status and not self.shutting_down:
                    print(self.status_line(now - started), file=self.out, flush=True)
                    next_status = now + 1.0
                for key, _ in self.sel.select(TICK_S):
                    if key.data == "listener":
                        self.controller.accept()
                    elif key.data == "wake":
                        try:
                            while os.read(self.wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self.controller.read(key.data)
        finally:
            # Whatever happened, leave no process behind.
            for p in self.procs:
                if p.alive:
                    self._signal(p, signal.SIGKILL)
                    p.popen.wait()
                    p.popen = None
            self.controller.close()
            self.stop_metrics()
            signal.set_wakeup_fd(old_wakeup)
            os.close(self.wake_r)
            os.close(self.wake_w)
        self.log("stopped")
        return 0

    # -- for the controller, the CLI and the tests ---------------------------------

    def resolve(self, name):
        """The processes `name` designates, or an error string."""
        return self.controller.resolve(name)

    def status(self) -> dict:
        return report.status(self)

    def status_line(self, elapsed: float) -> str:
        return report.status_line(self, elapsed)

    def summary(self) -> str:
        return report.summary(self)


Supervisor = Arbiter   # the name it has always had
