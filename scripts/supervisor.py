#!/usr/bin/python3
"""Starts, watches, restarts and rescales the pipeline's programs.

Modelled on Circus: one watcher per program (strategy has N instances), a
start order, SIGTERM -> grace -> SIGKILL, exponential back-off and a flapping
guard; unlike supervisord, the strategy count changes at run time, one
process restarts without its group, and crash restarts are never closer than
supervisor.backoff_min_ms. Standard library only; single thread.

Start order (stop order is the reverse, one stage at a time):
  1. dead_letter      - first, so that nothing dead-lettered during start-up is lost
  2. dll_gateway      - the broker side is up before orders can arrive
  3. executor         - binds the signal PULL before strategies push to it
  4. strategy:0..N-1  - every consumer of ticks is connected...
  5. gateway          - ...before the first tick is published
The next stage starts when the processes of the current one are RUNNING (or
have already failed; a failing process does not hold up the others).

States:
  STARTING  spawned; becomes RUNNING when its stats file carries its own pid
            or after it has stayed alive for STARTUP_S (1 s), whichever is first
  RUNNING   up
  HUNG      alive, but its heartbeat (its stats file, rewritten every
            run.stats_interval_ms) has not changed for supervisor.hang_timeout_ms;
            judged only from the second heartbeat of that pid on (a program may
            write its first stats file before a long start-up step: the executor
            does, before its start-up reconciliation), so a long start-up is
            never HUNG. Back to RUNNING on the next heartbeat; with
            supervisor.restart_hung = true it is SIGKILLed (a stopped process
            cannot handle SIGTERM) and restarted like a crash (back-off, flapping)
  STOPPING  SIGTERM (then SIGCONT, so that a stopped process can exit cleanly)
            sent; SIGKILL after supervisor.stop_grace_ms
  BACKOFF   exited without being asked to; restarts after the back-off delay
            (backoff_min_ms doubling up to backoff_max_ms; the doubling is
            forgotten once a process has run healthy_after_ms)
  STOPPED   stopped on request (or never started)
  FATAL     flapping: it would need more than flap_max_restarts restarts within
            flap_window_s; left stopped (`start NAME` tries again), the rest run on

Control: a Unix stream socket ([supervisor].control, default
<run.dir>/supervisor.sock). One JSON request line, one JSON reply line:
  {"cmd": "status"}
  {"cmd": "stop"|"start"|"restart", "name": "executor"|"strategy"|"strategy:2"}
  {"cmd": "scale", "name": "strategy", "n": 3}
  {"cmd": "shutdown"}
Replies: {"ok": true, ...} or {"ok": false, "error": "..."}. Commands that
change processes reply when the change is done (stopped, or spawned again).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field

SCRIPTS_DIR = os.path.dirname(os.path.realpath(__file__))
REPO_DIR = os.path.dirname(SCRIPTS_DIR)

# Start order; strategy expands to strategy:0..N-1.
PROGRAMS = ["dead_letter", "dll_gateway", "executor", "strategy", "gateway"]
SCALABLE = "strategy"
STARTUP_S = 1.0    # alive this long (without a stats file) counts as RUNNING
TICK_S = 0.1       # longest sleep of the event loop
MAX_INSTANCES = 256

STARTING, RUNNING, STOPPING, BACKOFF, STOPPED, FATAL = (
    "STARTING", "RUNNING", "STOPPING", "BACKOFF", "STOPPED", "FATAL")
HUNG = "HUNG"

DEFAULT_INSTRUMENTS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]


# --------------------------------------------------------------------------
# Configuration: the same TOML file and --set overrides as the C++ programs
# (common/src/config.cpp), reduced to what the supervisor reads.

class ConfigError(Exception):
    pass


@dataclass
class Settings:
    run_dir: str = "run"
    instances: int = 2
    instruments: list = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
    bin_dir: str = ""
    control: str = ""
    backoff_min_ms: int = 250
    backoff_max_ms: int = 8000
    flap_window_s: int = 30
    flap_max_restarts: int = 5
    stop_grace_ms: int = 3000
    healthy_after_ms: int = 5000
    hang_timeout_ms: int = 5000   # no heartbeat this long: HUNG (0: not watched)
    restart_hung: bool = False    # SIGKILL and restart a HUNG process
    stats_interval_ms: int = 1000  # run.stats_interval_ms: the heartbeat period


SUPERVISOR_INTS = ["backoff_min_ms", "backoff_max_ms", "flap_window_s",
                   "flap_max_restarts", "stop_grace_ms", "healthy_after_ms"]
SUPERVISOR_BOOLS = ["restart_hung"]


def apply_override(root: dict, spec: str) -> None:
    """Stores `section.key=value` in `root`; value is TOML, or a bare string."""
    path, eq, value = spec.partition("=")
    if not eq or not path:
        raise ConfigError(f"override '{spec}' must look like section.key=value")
    parts = path.split(".")
    table = root
    for part in parts[:-1]:
        child = table.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {path}: {part} is not a table")
        table = child
    try:
        parsed = tomllib.loads("v = " + value)["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: take it as a string, as the C++ does
    table[parts[-1]] = parsed


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_settings(toml_text: str, overrides=(), origin: str = "<string>") -> Settings:
    """Settings from TOML text + overrides; raises ConfigError naming the key."""
    try:
        root = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: {e}") from None
    for spec in overrides:
        apply_override(root, spec)

    def table(name):
        t = root.get(name, {})
        if not isinstance(t, dict):
            raise ConfigError(f"{origin}: {name} must be a table")
        return t

    s = Settings()
    run = table("run")
    if "dir" in run:
        if not isinstance(run["dir"], str):
            raise ConfigError(f"{origin}: run.dir must be a string")
        s.run_dir = run["dir"]
    if "stats_interval_ms" in run:
        v = run["stats_interval_ms"]
        if not _is_int(v) or not 0 < v < 2**31:
            raise ConfigError(f"{origin}: run.stats_interval_ms must be an integer > 0")
        s.stats_interval_ms = v

    st = table("strategy")
    if "instances" in st:
        v = st["instances"]
        if not _is_int(v):
            raise ConfigError(f"{origin}: strategy.instances must be an integer")
        if not 1 <= v <= MAX_INSTANCES:
            raise ConfigError(f"{origin}: strategy.instances must be in 1..{MAX_INSTANCES}")
        s.instances = v

    if "instruments" in root:
        items = root["instruments"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{origin}: instruments must be a non-empty array of tables")
        symbols = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
                raise ConfigError(f"{origin}: instruments[{i}].symbol must be a string")
            symbols.append(item["symbol"])
        s.instruments = symbols


    sv = table("supervisor")
    known = {"bin_dir", "control", "hang_timeout_ms", *SUPERVISOR_INTS, *SUPERVISOR_BOOLS}
    for key in sv:
        if key not in known:
            raise ConfigError(f"{origin}: unknown key supervisor.{key}")
    for key in ("bin_dir", "control"):
        if key in sv:
            if not isinstance(sv[key], str):
                raise ConfigError(f"{origin}: supervisor.{key} must be a string")
            setattr(s, key, sv[key])
    for key in SUPERVISOR_INTS:
        if key in sv:
            v = sv[key]
            if not _is_int(v) or not -2**31 <= v < 2**31:
                raise ConfigError(f"{origin}: supervisor.{key} must be an integer")
            if v <= 0:
                raise ConfigError(f"{origin}: supervisor.{key} must be > 0")
            setattr(s, key, v)
    for key in SUPERVISOR_BOOLS:
        if key in sv:
            if not isinstance(sv[key], bool):
                raise ConfigError(f"{origin}: supervisor.{key} must be true or false")
            setattr(s, key, sv[key])
    if "hang_timeout_ms" in sv:
        v = sv["hang_timeout_ms"]
        if not _is_int(v) or not 0 <= v < 2**31:
            raise ConfigError(f"{origin}: supervisor.hang_timeout_ms must be an integer >= 0")
        s.hang_timeout_ms = v
    if s.backoff_max_ms < s.backoff_min_ms:
        raise ConfigError(f"{origin}: supervisor.backoff_max_ms must be >= backoff_min_ms")
    if s.hang_timeout_ms and s.hang_timeout_ms < 2 * s.stats_interval_ms:
        raise ConfigError(f"{origin}: supervisor.hang_timeout_ms must be 0 (off) or "
                          f">= 2 * run.stats_interval_ms ({2 * s.stats_interval_ms})")
    return s


def load_settings(path: str | None, overrides=()) -> Settings:
    if not path:
        return parse_settings("", overrides, "<defaults>")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError:
        raise ConfigError(f"{path}: cannot read the config file") from None
    return parse_settings(text, overrides, path)


def control_path(settings: Settings, run_dir: str) -> str:
    return settings.control or os.path.join(run_dir, "supervisor.sock")


# --------------------------------------------------------------------------
# Sharding: must equal common/include/common/sharding.hpp.

def fnv1a64(text: str) -> int:
    h = 14695981039346656037
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_of(instrument: str, shards: int) -> int:
    return 0 if shards == 0 else fnv1a64(instrument) % shards


def instruments_for_shard(instruments, shard: int, shards: int) -> list:
    return [s for s in instruments if shard_of(s, shards) == shard]


# --------------------------------------------------------------------------
# Restart policy: pure logic (times passed in, in seconds).

class RestartPolicy:
    """Back-off delays and the flapping guard for one process."""

    def __init__(self, backoff_min_ms, backoff_max_ms, healthy_after_ms,
                 flap_window_s, flap_max_restarts):
        self.backoff_min = backoff_min_ms / 1000.0
        self.backoff_max = backoff_max_ms / 1000.0
        self.healthy_after = healthy_after_ms / 1000.0
        self.flap_window = float(flap_window_s)
        self.flap_max = flap_max_restarts
        self.consecutive = 0                  # crashes since the last healthy run
        self.recent = collections.deque()     # times of crash restarts

    @classmethod
    def from_settings(cls, s: Settings) -> "RestartPolicy":
        return cls(s.backoff_min_ms, s.backoff_max_ms, s.healthy_after_ms,
                   s.flap_window_s, s.flap_max_restarts)

    def delay(self, consecutive: int) -> float:
        """Delay before restart number `consecutive` (1-based) of a crash run."""
        return min(self.backoff_min * (2 ** max(consecutive - 1, 0)), self.backoff_max)

    def on_crash(self, now: float, uptime: float):
        """A crash at `now` after `uptime` s: the restart delay, or None for FATAL."""
        if uptime >= self.healthy_after:
            self.consecutive = 0
        while self.recent and now - self.recent[0] > self.flap_window:
            self.recent.popleft()
        if len(self.recent) >= self.flap_max:
            return None
        self.recent.append(now)
        self.consecutive += 1
        return self.delay(self.consecutive)

    def reset(self) -> None:
        """A start or restart by request forgets the crash history."""
        self.consecutive = 0
        self.recent.clear()


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def read_stats(run_dir: str, name: str):
    """The parsed <run_dir>/<name>.stats.json, or None when missing/unreadable."""
    try:
        with open(os.path.join(run_dir, name + ".stats.json"), "rb") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def stats_signature(run_dir: str, name: str):
    """(mtime_ns, inode, size) of <run_dir>/<name>.stats.json, or None: one
    stat(2), cheap enough to poll every loop; the file is only parsed when
    this changes (the programs replace it atomically, so a write is a new inode)."""
    try:
        st = os.stat(os.path.join(run_dir, name + ".stats.json"))
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class Heartbeat:
    """Hang detection for one process: pure logic, times passed in (seconds,
    monotonic).

    A heartbeat is a write of the process's stats file that carries its pid
    and a stamp (ts_ns) not seen before. The watch is armed by the ARM-th
    heartbeat of a pid: a program may write its first stats file early, to say
    it is up, and then spend a long time in a start-up step (the executor's
    start-up reconciliation waits on dll_gateway); the second write means its
    periodic loop runs. After that, `timeout` s without a heartbeat is a hang
    (a timeout of 0 never expires).
    Ages are measured on the supervisor's own clock from when a write was
    seen, so the file's wall-clock times and clock steps do not matter, and a
    supervisor that was itself paused reads the writes it missed before it
    judges (the caller polls, then asks `expired`)."""

    ARM = 2

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.pid = None
        self.beats = 0        # heartbeats of `pid` seen
        self.last = None      # when the last heartbeat of `pid` was seen; None: none yet
        self.stamp = None     # that heartbeat's ts_ns
        self.sig = None       # stats_signature() when the file was last read

    def reset(self, pid) -> None:
        """A new process: not judged until it is armed."""
        self.pid, self.beats, self.last, self.stamp = pid, 0, None, None

    @property
    def armed(self) -> bool:
        return self.beats >= self.ARM

    def saw(self, now: float, pid, stamp) -> bool:
        """The stats file, read at `now`, says `pid` wrote it at `stamp`:
        True when that is a new heartbeat of the watched pid."""
        if pid is None or pid != self.pid or stamp is None or stamp == self.stamp:
            return False
        self.last, self.stamp = now, stamp
        self.beats += 1
        return True

    def age(self, now: float):
        """Seconds since the last heartbeat, None while not armed."""
        return max(now - self.last, 0.0) if self.armed else None

    def expired(self, now: float) -> bool:
        return self.timeout > 0 and self.armed and now - self.last >= self.timeout


# --------------------------------------------------------------------------
# Processes

_PR_SET_PDEATHSIG = 1


def _child_setup(supervisor_pid: int):
    """preexec_fn: die with the supervisor (Linux parent-death signal)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    except (OSError, AttributeError):
        prctl = None

    def setup():
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != supervisor_pid:  # the supervisor died before prctl
            os.kill(os.getpid(), signal.SIGKILL)
    return setup


class Proc:
    """One supervised process: a program, or one strategy instance."""

    def __init__(self, program: str, policy: RestartPolicy, index=None, shards=None,
                 hang_timeout_s: float = 0.0):
        self.program = program
        self.index = index
        self.shards = shards
        self.name = program if index is None else f"{program}:{index}"
        self.file_name = program if index is None else f"{program}-{index}"
        self.policy = policy
        self.state = STOPPED
        self.popen = None
        self.pid = None
        self.started_at = None      # monotonic
        self.restarts = 0
        self.spawns = 0
        self.last_exit = None
        self.next_start = None      # BACKOFF: monotonic time of the restart
        self.kill_at = None         # STOPPING: monotonic time of the SIGKILL
        self.hb = Heartbeat(hang_timeout_s)
        self.hung_killed = False    # HUNG: SIGKILL sent (supervisor.restart_hung)
        self.alert = None           # the "alert" of its latest stats file, if any

    @property
    def alive(self) -> bool:
        return self.popen is not None

    def to_json(self, now: float, instruments) -> dict:
        d = {"name": self.name, "program": self.program, "state": self.state,
             "pid": self.pid if self.alive else None,
             "uptime_s": round(now - self.started_at, 1) if self.alive else None,
             "restarts": self.restarts, "last_exit": self.last_exit}
        age = self.hb.age(now) if self.alive else None
        d["heartbeat_age_s"] = None if age is None else round(age, 1)
        if self.alert and self.alive:
            d["alert"] = self.alert
        if self.index is not None:
            d.update(shard=self.index, shards=self.shards,
                     instruments=instruments_for_shard(instruments, self.index, self.shards))
        if self.state == BACKOFF and self.next_start is not None:
            d["restart_in_s"] = round(max(self.next_start - now, 0.0), 2)
        return d


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""


class Supervisor:
    def __init__(self, settings: Settings, run_dir: str, bin_dir: str,
                 config_path=None, overrides=(), out=sys.stdout, err=sys.stderr):
        self.s = settings
        self.run_dir = run_dir
        self.bin_dir = bin_dir
        self.config_path = config_path
        self.overrides = list(overrides)
        self.out, self.err = out, err
        self.control = os.path.abspath(control_path(settings, run_dir))
        self.procs = []
        for program in PROGRAMS:
            if program == SCALABLE:
                self.procs += [self._new_instance(k, settings.instances)
                               for k in range(settings.instances)]
            else:
                self.procs.append(Proc(program, RestartPolicy.from_settings(settings),
                                       hang_timeout_s=settings.hang_timeout_ms / 1000.0))
        self.ops = collections.deque()   # [generator, client or None]; run one at a time
        self.shutting_down = False
        self.finished = False
        self.sel = selectors.DefaultSelector()
        self.listener = None
        self.wake_r = self.wake_w = None

    def _new_instance(self, k: int, n: int) -> Proc:
        return Proc(SCALABLE, RestartPolicy.from_settings(self.s), index=k, shards=n,
                    hang_timeout_s=self.s.hang_timeout_ms / 1000.0)

    def log(self, msg: str) -> None:
        print(f"supervisor {time.strftime('%H:%M:%S')} {msg}", file=self.err, flush=True)

    # -- process control ---------------------------------------------------

    def instances(self):
        return [p for p in self.procs if p.program == SCALABLE]

    def stages(self):
        """Processes grouped in start order."""
        return [[p for p in self.procs if p.program == prog] for prog in PROGRAMS]

    def command(self, p: Proc) -> list:
        cmd = [os.path.join(self.bin_dir, p.program)]
        if self.config_path:
            cmd += ["--config", self.config_path]
        for o in self.overrides:
            cmd += ["--set", o]
        cmd += ["--run-dir", self.run_dir]
        if p.index is not None:
            cmd += ["--shard", str(p.index), "--shards", str(p.shards)]
        return cmd

    def spawn(self, p: Proc, now: float) -> None:
        log_dir = os.path.join(self.run_dir, "logs")
        os.makedirs(log_dir, exist_ok=True)
        with open(os.path.join(log_dir, p.file_name + ".log"), "ab") as logf:
            try:
                p.popen = subprocess.Popen(
                    self.command(p), stdin=subprocess.DEVNULL, stdout=logf,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_child_setup(os.getpid()), close_fds=True)
            except (OSError, subprocess.SubprocessError) as e:
                p.popen = None
                self.log(f"{p.name}: cannot start: {e}")
                p.last_exit = f"cannot start: {getattr(e, 'strerror', None) or e}"
                self._crashed(p, now, 0.0)
                return
        if p.spawns:
            p.restarts += 1
        p.spawns += 1
        p.pid = p.popen.pid
        p.started_at = now
        p.state = STARTING
        p.next_start = p.kill_at = None
        p.hb.reset(p.pid)
        p.hung_killed = False

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
        try:
            os.killpg(p.popen.pid, sig)   # its own session: the group is its pid
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                os.kill(p.popen.pid, sig)
            except OSError:
                pass

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
            if p.popen is None:
                continue
            rc = p.popen.poll()
            if rc is None:
                continue
            p.popen = None
            p.last_exit = exit_reason(rc)
            uptime = now - p.started_at
            if p.hung_killed:
                p.last_exit += " (hung)"
                # Only the part up to the last heartbeat was a healthy run.
                uptime = p.hb.last - p.started_at
                p.hung_killed = False
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
        return p.hb.saw(now, data.get("pid"), stamp if _is_int(stamp) else sig)

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

    def op_scale(self, n: int):
        old = self.instances()
        if n == len(old) and all(p.shards == n for p in old):
            return {"ok": True, "message": f"strategy already runs {n} instances"}
        # Stop every instance first, so that no instrument is ever traded by
        # an old-sharding and a new-sharding instance at the same time.
        yield from self._stop_all(list(reversed(old)))
        first = self.procs.index(old[0])
        kept = old[:n]
        for p in kept:
            p.shards = n
        new = kept + [self._new_instance(k, n) for k in range(len(kept), n)]
        self.procs[first:first + len(old)] = new
        self._start_all(new)
        self.log(f"strategy scaled {len(old)} -> {n}")
        return {"ok": True, "message": f"strategy scaled {len(old)} -> {n}",
                "instances": n}

    def op_shutdown(self):
        self.shutting_down = True
        for stage in reversed(self.stages()):
            yield from self._stop_all(stage)
        self.finished = True
        return {"ok": True, "message": "all stopped"}

    def begin_shutdown(self, client=None, why="") -> None:
        if self.shutting_down:
            if client is not None:
                self._reply(client, {"ok": True, "message": "already shutting down"})
            return
        if why:
            self.log(f"shutting down ({why})")
        self.shutting_down = True
        # Queued requests will not run; the current one is abandoned.
        while self.ops:
            _, c = self.ops.popleft()
            if c is not None:
                self._reply(c, {"ok": False, "error": "supervisor is shutting down"})
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
                    self._reply(client, done.value)

    # -- control socket -------------------------------------------------------

    def resolve(self, name):
        """The processes `name` designates, or an error string."""
        if not isinstance(name, str) or not name:
            return "missing process name"
        if name == SCALABLE:
            return self.instances()
        for p in self.procs:
            if p.name == name:
                return [p]
        if name.startswith(SCALABLE + ":"):
            return (f"no instance {name} (strategy runs {len(self.instances())} "
                    f"instances: strategy:0..{len(self.instances()) - 1})")
        return (f"unknown program '{name}' (known: " + ", ".join(PROGRAMS) +
                ", or strategy:K)")

    def status(self) -> dict:
        now = time.monotonic()
        return {"ok": True, "pid": os.getpid(), "run_dir": self.run_dir,
                "bin_dir": self.bin_dir, "instances": len(self.instances()),
                "shutting_down": self.shutting_down,
                "processes": [p.to_json(now, self.s.instruments) for p in self.procs]}

    def handle_request(self, client: Client, line: bytes) -> None:
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._reply(client, {"ok": False, "error": "request must be one JSON object line"})
        cmd = req.get("cmd")
        if cmd == "status":
            return self._reply(client, self.status())
        if cmd == "shutdown":
            return self.begin_shutdown(client, "shutdown requested")
        if self.shutting_down:
            return self._reply(client, {"ok": False, "error": "supervisor is shutting down"})
        if cmd in ("stop", "start", "restart"):
            procs = self.resolve(req.get("name"))
            if isinstance(procs, str):
                return self._reply(client, {"ok": False, "error": procs})
            op = {"stop": self.op_stop, "start": self.op_start, "restart": self.op_restart}[cmd]
            self.log(f"{cmd} {req.get('name')} requested")
            self.ops.append([op(procs), client])
            return None
        if cmd == "scale":
            if req.get("name") != SCALABLE:
                return self._reply(client, {"ok": False, "error": f"only {SCALABLE} can be scaled"})
            n = req.get("n")
            if isinstance(n, str) and n.strip().lstrip("+").isdigit():
                n = int(n)
            if not _is_int(n) or not 1 <= n <= MAX_INSTANCES:
                return self._reply(client, {"ok": False, "error":
                                            f"instance count must be an integer in 1..{MAX_INSTANCES}"})
            self.log(f"scale strategy {n} requested")
            self.ops.append([self.op_scale(n), client])
            return None
        return self._reply(client, {"ok": False, "error": f"unknown command {cmd!r} "
                                    "(status, stop, start, restart, scale, shutdown)"})

    def _reply(self, client: Client, reply: dict) -> None:
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        try:
            client.sock.setblocking(True)
            client.sock.settimeout(2.0)
            client.sock.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        finally:
            client.sock.close()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, Client(sock))

    def _read(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        client.buf += data
        if b"\n" in client.buf or (not data and client.buf.strip()):
            self.sel.unregister(client.sock)  # one request per connection
            self.handle_request(client, client.buf.split(b"\n", 1)[0])
        elif not data or len(client.buf) > 65536:
            self.sel.unregister(client.sock)
            client.sock.close()

    def open_control(self) -> None:
        if len(self.control.encode()) >= 108:
            raise ConfigError(f"control socket path too long (max 107 bytes): {self.control}")
        os.makedirs(os.path.dirname(self.control), exist_ok=True)
        if os.path.exists(self.control):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.control)
                raise ConfigError(f"another supervisor is running at {self.control}")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(self.control)  # stale, from a supervisor that was killed
            finally:
                probe.close()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.control)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listener")

    # -- main loop ----------------------------------------------------------------

    def _on_signal(self, signum, _frame):
        self._pending_signal = signum

    def run(self, duration=None, status_line=False) -> int:
        missing = [p for p in PROGRAMS if not os.access(os.path.join(self.bin_dir, p), os.X_OK)]
        if missing:
            raise ConfigError(f"no executable {', '.join(missing)} in {self.bin_dir} "
                              "(build first: cmake --preset release && cmake --build --preset release, "
                              "or pass --bin-dir)")
        os.makedirs(self.run_dir, exist_ok=True)
        self.open_control()
        # Signals wake the selector through a self-pipe; handlers only record.
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        old_wakeup = signal.set_wakeup_fd(self.wake_w)
        self._pending_signal = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that it wakes us
        self.log(f"pid {os.getpid()}, run dir {self.run_dir}, control {self.control}")
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
                self.run_ops()
                if self.finished:
                    break
                if status_line and now >= next_status and not self.shutting_down:
                    print(self.status_line(now - started), file=self.out, flush=True)
                    next_status = now + 1.0
                for key, _ in self.sel.select(TICK_S):
                    if key.data == "listener":
                        self._accept()
                    elif key.data == "wake":
                        try:
                            while os.read(self.wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._read(key.data)
        finally:
            # Whatever happened, leave no process behind.
            for p in self.procs:
                if p.alive:
                    self._signal(p, signal.SIGKILL)
                    p.popen.wait()
                    p.popen = None
            for key in list(self.sel.get_map().values()):
                if isinstance(key.data, Client):
                    key.fileobj.close()
            signal.set_wakeup_fd(old_wakeup)
            self.listener.close()
            try:
                os.unlink(self.control)
            except OSError:
                pass
            os.close(self.wake_r)
            os.close(self.wake_w)
        self.log("stopped")
        return 0

    # -- reporting -------------------------------------------------------------------

    def _strategy_stats(self):
        names = sorted(f[:-len(".stats.json")] for f in _listdir(self.run_dir)
                       if f.startswith("strategy-") and f.endswith(".stats.json"))
        return {n: read_stats(self.run_dir, n) for n in names}

    def status_line(self, elapsed: float) -> str:
        gw = read_stats(self.run_dir, "gateway") or {}
        ex = read_stats(self.run_dir, "executor") or {}
        dl = read_stats(self.run_dir, "dead_letter") or {}
        signals = [s.get("signals_emitted") for s in self._strategy_stats().values()
                   if s and _num(s.get("signals_emitted"))]
        positions = ex.get("positions")
        open_pos = (sum(1 for v in positions.values()
                        if isinstance(v, dict) and v.get("position")) if isinstance(positions, dict) else None)
        states = collections.Counter(p.state for p in self.procs)
        bad = [f"{p.name}={p.state}" for p in self.procs if p.state != RUNNING]
        state_txt = f"{states[RUNNING]}/{len(self.procs)} running" + (f" ({', '.join(bad)})" if bad else "")
        return (f"[{elapsed:6.1f}s] ticks/s {_fmt(gw.get('ticks_per_s'), 0)}  "
                f"ticks {_fmt(gw.get('ticks_published'))}  "
                f"signals {_fmt(sum(signals) if signals else None)}  "
                f"orders {_fmt(ex.get('orders_sent'))}  fills {_fmt(ex.get('fills'))}  "
                f"open positions {_fmt(open_pos)}  dead letters {_fmt(dl.get('dead_letters'))}  "
                f"| {state_txt}")

    def summary(self) -> str:
        gw = read_stats(self.run_dir, "gateway") or {}
        ex = read_stats(self.run_dir, "executor") or {}
        dl = read_stats(self.run_dir, "dead_letter") or {}
        strat = self._strategy_stats()
        lines = [f"== summary ({self.run_dir}) ==",
                 f"{'process':<14}{'state':<10}{'restarts':>9}  last exit"]
        for p in self.procs:
            lines.append(f"{p.name:<14}{p.state:<10}{p.restarts:>9}  {p.last_exit or '-'}")
        sig_parts = [f"{n} {_fmt((s or {}).get('signals_emitted'))}" for n, s in strat.items()]
        sig_total = [s.get("signals_emitted") for s in strat.values() if s and _num(s.get("signals_emitted"))]
        lines += [
            f"ticks published:  {_fmt(gw.get('ticks_published'))}",
            f"signals emitted:  {_fmt(sum(sig_total) if sig_total else None)}"
            + (f" ({', '.join(sig_parts)})" if sig_parts else ""),
            f"orders sent:      {_fmt(ex.get('orders_sent'))}",
            f"fills:            {_fmt(ex.get('fills'))}"
            f" (partial {_fmt(ex.get('partial_fills'))}, broker rejects {_fmt(ex.get('broker_rejects'))})",
        ]
        positions = ex.get("positions")
        if isinstance(positions, dict) and positions:
            lines.append("positions:")
            for sym in sorted(positions):
                v = positions[sym] if isinstance(positions[sym], dict) else {}
                lines.append(f"  {sym:<10} position {_fmt(v.get('position'), 0):>10}  "
                             f"avg price {_fmt(v.get('avg_price'), 5):>10}  "
                             f"realised PnL {_fmt(v.get('realized_pnl'), 2):>10}")
        else:
            lines.append("positions:        n/a" if positions is None else "positions:        none")
        by_reason = dl.get("by_reason")
        if isinstance(by_reason, dict) and by_reason:
            reasons = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(by_reason.items()))
        else:
            reasons = "none" if isinstance(by_reason, dict) else "n/a"
        lines.append(f"dead letters:     {_fmt(dl.get('dead_letters'))} (by reason: {reasons})")
        lat = ex.get("latency_tick_to_fill_us")
        lat = lat if isinstance(lat, dict) else {}
        lines.append(f"tick->fill latency: p50 {_fmt(lat.get('p50'), 0)} us, p99 {_fmt(lat.get('p99'), 0)} us"
                     f" (n={_fmt(lat.get('count'))})")
        return "\n".join(lines)


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v, decimals=None) -> str:
    if not _num(v):
        return "n/a"
    if decimals is None:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"
    return f"{v:.{decimals}f}"


# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="supervisor.py", description="Run and supervise the trading pipeline.")
    ap.add_argument("--config", help="deployment TOML file (default: embedded defaults)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one config value (repeatable); passed on to every program")
    ap.add_argument("--run-dir", help="state/stats/logs directory (default: run.dir)")
    ap.add_argument("--bin-dir", help="where the program binaries are (default: supervisor.bin_dir, "
                    "else build/release/bin of this checkout)")
    ap.add_argument("--duration", type=float, help="run this many seconds, then stop cleanly")
    ap.add_argument("--status-line", action="store_true", help="print one status line a second")
    ap.add_argument("--summary", action="store_true", help="print a summary at the end")
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
        run_dir = os.path.abspath(args.run_dir or settings.run_dir)
        bin_dir = os.path.abspath(args.bin_dir or settings.bin_dir
                                  or os.path.join(REPO_DIR, "build", "release", "bin"))
        config = os.path.abspath(args.config) if args.config else None
        sup = Supervisor(settings, run_dir, bin_dir, config, args.overrides)
        rc = sup.run(duration=args.duration, status_line=args.status_line)
    except ConfigError as e:
        print(f"supervisor: {e}", file=sys.stderr)
        return 1
    if args.summary:
        print(sup.summary(), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
