"""Feed health and sharding, pure: per-instrument sequence tracking (gaps,
duplicates, gateway restarts), liveness from ticks and heartbeats, how fresh
a gateway stamp must be to be believed or traded on, and which instance
trades which instrument. The same rules as the C++ runtime
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


FRESH, FUTURE, TOO_OLD = 0, 1, 2


def judge_stamp(stamp_ns: int, now_ns: int, max_age_ns: int, max_skew_ns: int) -> int:
    """FRESH, FUTURE (stamped further ahead than max_clock_skew_ms) or
    TOO_OLD (sent longer ago than max_tick_age_ms): a refused tick neither
    moves the indicators nor keeps the feed alive, nor does a refused
    heartbeat. Ages include the skew between the gateway's and this host's
    clocks. (Python ints do not wrap: no saturation needed.)"""
    ahead = stamp_ns - now_ns
    if ahead > max_skew_ns:
        return FUTURE
    if ahead < -max_age_ns:
        return TOO_OLD
    return FRESH


def tradeable(causation_ts_ns: int, now_ns: int, max_signal_age_ns: int) -> bool:
    """Whether a signal may be made now from a tick stamped causation_ts_ns
    (max_signal_tick_age_ms, far tighter than max_tick_age_ms): the backlog
    of a paused process or a returning link moves the indicators but is not
    traded on. Stamped ahead within the skew counts as now."""
    return now_ns - causation_ts_ns <= max_signal_age_ns


class FeedMonitor:
    """Alive while a believed tick or heartbeat arrived within timeout_ns;
    dead before the first one. A feed whose every message is refused (a
    gateway clock far behind, a backlog) is dead too: on_message ignores
    them."""

    __slots__ = ("timeout_ns", "last_ns", "seen")

    def __init__(self, timeout_ns: int):
        self.timeout_ns = timeout_ns
        self.last_ns = 0
        self.seen = False

    def on_activity(self, now_ns: int):
        self.last_ns = now_ns
        self.seen = True

    def on_message(self, now_ns: int, verdict: int) -> bool:
        """A tick or heartbeat judged `verdict` (judge_stamp): only a FRESH
        one is activity. Returns whether it was."""
        if verdict != FRESH:
            return False
        self.on_activity(now_ns)
        return True

    def alive(self, now_ns: int) -> bool:
        return self.seen and now_ns - self.last_ns <= self.timeout_ns
