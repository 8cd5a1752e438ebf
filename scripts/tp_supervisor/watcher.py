"""One supervised process (a program, or instance k of a strategy group): its state,
spawning it, signalling its process group and reaping it. The decisions
(when to restart, what is HUNG) are the arbiter's, with policy.py."""

import ctypes
import os
import signal
import subprocess

from .policy import Heartbeat, RestartPolicy
from .sharding import instruments_for_shard
from .states import BACKOFF, STARTING, STOPPED


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def exit_status(returncode: int) -> int:
    """An exit as a shell reports it: the code, or 128 + N when killed by
    signal N (Popen's -N)."""
    return returncode if returncode >= 0 else 128 - returncode


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
    """One supervised process: a program, or instance `index` of `shards` of
    a strategy group (program "strategy"), named "<group>-<index>" like its
    files (<group>-<index>.stats.json, .journal, logs/<group>-<index>.log)."""

    def __init__(self, program: str, policy: RestartPolicy, index=None, shards=None,
                 hang_timeout_s: float = 0.0, group=None, kind=None, instruments=None):
        self.program = program
        self.index = index
        self.shards = shards
        self.group = None if index is None else (group or program)
        self.kind = kind                 # the group's kind (built-in name, plugin, python)
        self.instruments = instruments   # the group's instruments (sharded by to_json)
        self.name = program if index is None else f"{self.group}-{index}"
        self.file_name = self.name
        self.policy = policy
        self.state = STOPPED
        self.popen = None
        self.pid = None
        self.started_at = None      # monotonic
        self.restarts = 0
        self.spawns = 0
        self.last_exit = None
        self.last_exit_code = None  # exit_status of its last exit; None before one
        self.metrics_slot = None    # a strategy process's slot: its metrics port (metrics.py)
        self.next_start = None      # BACKOFF: monotonic time of the restart
        self.kill_at = None         # STOPPING: monotonic time of the SIGKILL
        self.hb = Heartbeat(hang_timeout_s)
        self.hung_killed = False    # HUNG: SIGKILL sent (supervisor.restart_hung)
        self.alert = None           # the "alert" of its latest stats file, if any

    @property
    def alive(self) -> bool:
        return self.popen is not None

    def to_json(self, now: float, instruments=None) -> dict:
        """The status entry; a group's instance shows its shard of
        `instruments` (default: its group's)."""
        d = {"name": self.name, "program": self.program, "state": self.state,
             "pid": self.pid if self.alive else None,
             "uptime_s": round(now - self.started_at, 1) if self.alive else None,
             "restarts": self.restarts, "last_exit": self.last_exit}
        age = self.hb.age(now) if self.alive else None
        d["heartbeat_age_s"] = None if age is None else round(age, 1)
        if self.alert and self.alive:
            d["alert"] = self.alert
        if self.index is not None:
            if instruments is None:
                instruments = self.instruments or []
            d.update(group=self.group, kind=self.kind, shard=self.index, shards=self.shards,
                     instruments=instruments_for_shard(instruments, self.index, self.shards))
        if self.state == BACKOFF and self.next_start is not None:
            d["restart_in_s"] = round(max(self.next_start - now, 0.0), 2)
        return d

    def started(self, popen, now: float) -> None:
        """A spawn succeeded: a new pid, STARTING, its heartbeat not yet armed."""
        self.popen = popen
        if self.spawns:
            self.restarts += 1
        self.spawns += 1
        self.pid = popen.pid
        self.started_at = now
        self.state = STARTING
        self.next_start = self.kill_at = None
        self.hb.reset(self.pid)
        self.hung_killed = False

    def poll(self, now: float):
        """Reaps the process if it exited: its uptime (up to the last
        heartbeat if it was killed as HUNG); None while it runs (or none runs)."""
        if self.popen is None:
            return None
        rc = self.popen.poll()
        if rc is None:
            return None
        self.popen = None
        self.last_exit = exit_reason(rc)
        self.last_exit_code = exit_status(rc)
        uptime = now - self.started_at
        if self.hung_killed:
            self.last_exit += " (hung)"
            # Only the part up to the last heartbeat was a healthy run.
            uptime = self.hb.last - self.started_at
            self.hung_killed = False
        return uptime


def start_process(command, logf, env=None):
    """Popen of `command` in its own session (its process group is its pid),
    output appended to the open file `logf`, killed if the supervisor dies;
    `env` None inherits the supervisor's environment.
    Raises OSError or SubprocessError."""
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=logf, env=env,
        stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_child_setup(os.getpid()), close_fds=True)


def signal_group(pid: int, sig) -> None:
    """Sends `sig` to the process group `pid` (a process started by
    start_process), else to the process alone; a process gone is no error."""
    try:
        os.killpg(pid, sig)   # its own session: the group is its pid
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
