"""Restart policy and hang detection: pure logic (times passed in, in
seconds; nothing here starts, signals or reads anything)."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings


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
