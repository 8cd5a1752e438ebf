"""Feed health and sharding, pure: per-instrument sequence tracking (gaps,
duplicates, gateway restarts), liveness from ticks and heartbeats, and which
instance trades which instrument. The same rules as the C++ runtime
(strategy/include/strategy/feed.hpp, common/include/common/sharding.hpp)."""

ACCEPT, STALE, RESTART = 0, 1, 2


class SeqTracker:
    """Follows one instrument's tick seqs. The first tick seen is accepted
    without a gap (joining a running feed is not a loss); seq 1 after a
    higher seq, or any seq after expect_restart(), starts a new series."""

    __slots__ = ("seen", "last", "gaps", "out_of_order", "restarts", "restart_pending")

    def __init__(self):
        self.seen = False
        self.last = 0
        self.gaps = 0            # missed ticks, not gap events
        self.out_of_order = 0
        self.restarts = 0
        self.restart_pending = False

    def expect_restart(self):
        """The gateway restarted (its heartbeats said so): whatever seq comes
        next starts a new series (its first ticks may be lost while the
        subscription reconnects, so seq == 1 alone would miss most restarts)."""
        self.restart_pending = self.seen

    def on_seq(self, seq: int) -> int:
        if not self.seen:
            self.seen = True
            self.last = seq
            return ACCEPT
        if self.restart_pending or (seq == 1 and self.last > 1):
            self.restart_pending = False
            self.restarts += 1
            self.last = seq
            return RESTART
        if seq <= self.last:
            self.out_of_order += 1
            return STALE
        self.gaps += seq - self.last - 1
        self.last = seq
        return ACCEPT


class FeedMonitor:
    """Alive while a tick or heartbeat arrived within timeout_ns; dead before
    the first one."""

    __slots__ = ("timeout_ns", "last_ns", "seen")

    def __init__(self, timeout_ns: int):
        self.timeout_ns = timeout_ns
        self.last_ns = 0
        self.seen = False

    def on_activity(self, now_ns: int):
        self.last_ns = now_ns
        self.seen = True

    def alive(self, now_ns: int) -> bool:
        return self.seen and now_ns - self.last_ns <= self.timeout_ns
