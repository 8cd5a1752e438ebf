"""The Python strategy API, a mirror of the C++ one
(strategy/sdk/include/tp/strategy.hpp): what a user's strategy implements
(Strategy) and what it sees (Tick, FeedEvent, OrderUpdate, Params, and
self.ctx, the runtime's Context: emit, cancel, position, timers, log...).

Every callback runs on the runtime's one loop thread, one at a time; a
strategy needs no locks and must not block. An exception raised from a
callback is caught, logged and dead-lettered (strategy_error) and does not
end the process, except from on_start, where it refuses the start."""

from __future__ import annotations

BUY, SELL = 1, 2
SIDE_NAMES = {BUY: "BUY", SELL: "SELL"}

# OrderUpdate.status: the wire's OrderStatus numbers.
NEW, ACCEPTED, PARTIALLY_FILLED, FILLED, REJECTED, CANCELED, UNKNOWN, EXPIRED = 1, 2, 3, 4, 5, 6, 7, 8
STATUS_NAMES = {NEW: "NEW", ACCEPTED: "ACCEPTED", PARTIALLY_FILLED: "PARTIALLY_FILLED", FILLED: "FILLED",
                REJECTED: "REJECTED", CANCELED: "CANCELED", UNKNOWN: "UNKNOWN", EXPIRED: "EXPIRED"}
# After these the broker changes the order no more (proto::is_final). Not
# PARTIALLY_FILLED: the rest of a resting order still works; an IOC order's
# unfilled rest ends CANCELED with filled_quantity > 0.
FINAL_STATUSES = frozenset((FILLED, REJECTED, CANCELED, EXPIRED))


def is_final(status) -> bool:
    return status in FINAL_STATUSES


# emit()'s order terms (None there: the group's order_type / time_in_force).
MARKET, LIMIT = "market", "limit"
IOC, GTC, GTD = "ioc", "gtc", "gtd"
ORDER_TYPES = (MARKET, LIMIT)
TIMES_IN_FORCE = (IOC, GTC, GTD)

# FeedEvent.kind
DEAD, ALIVE, RESTARTED, GAP = "dead", "alive", "restarted", "gap"

DEBUG, INFO, WARN, ERROR = "debug", "info", "warn", "error"


class Tick:
    """One quote as the gateway published it. The runtime reuses one Tick
    object per instrument: copy what you keep beyond on_tick."""

    __slots__ = ("instrument", "bid", "ask", "bid_volume", "ask_volume", "source_ts_ns", "gateway_ts_ns", "seq")

    def __init__(self, instrument="", bid=0.0, ask=0.0, bid_volume=0.0, ask_volume=0.0, source_ts_ns=0,
                 gateway_ts_ns=0, seq=0):
        self.instrument = instrument
        self.bid = bid
        self.ask = ask
        self.bid_volume = bid_volume
        self.ask_volume = ask_volume
        self.source_ts_ns = source_ts_ns
        self.gateway_ts_ns = gateway_ts_ns
        self.seq = seq

    def mid(self) -> float:
        # Halved first: bid + ask overflows for prices near the largest double.
        return self.bid / 2.0 + self.ask / 2.0

    def __repr__(self):
        return (f"Tick({self.instrument} {self.bid}/{self.ask} seq={self.seq} "
                f"gateway_ts_ns={self.gateway_ts_ns})")


class FeedEvent:
    """kind: DEAD (no believed tick nor heartbeat, i.e. stamped within
    max_tick_age_ms, for strategy.feed_timeout_ms: emit() refuses until
    ALIVE), ALIVE, RESTARTED (the gateway restarted; instrument empty when
    its heartbeats told, else the instrument whose seq went back to 1), GAP
    (`missed` ticks of `instrument` were lost)."""

    __slots__ = ("kind", "instrument", "missed")

    def __init__(self, kind, instrument="", missed=0):
        self.kind, self.instrument, self.missed = kind, instrument, missed

    def __repr__(self):
        return f"FeedEvent({self.kind}, {self.instrument!r}, missed={self.missed})"


class OrderUpdate:
    """What became of a signal this group emitted: an ORDER event of the
    executor, or its refusal of the signal (refused=True, no order; `reason`
    says why). `final` (FILLED, REJECTED, CANCELED, EXPIRED): the order will
    not change again; filled_quantity is cumulative, and a CANCELED or
    EXPIRED order keeps what it filled before."""

    __slots__ = ("signal_id", "instrument", "order_id", "side", "status", "quantity", "filled_quantity",
                 "fill_price", "reason", "event_ts_ns", "refused")

    def __init__(self, signal_id="", instrument="", order_id="", side=BUY, status=NEW, quantity=0.0,
                 filled_quantity=0.0, fill_price=0.0, reason="", event_ts_ns=0, refused=False):
        self.signal_id, self.instrument, self.order_id, self.side = signal_id, instrument, order_id, side
        self.status, self.quantity, self.filled_quantity = status, quantity, filled_quantity
        self.fill_price, self.reason, self.event_ts_ns, self.refused = fill_price, reason, event_ts_ns, refused

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def __repr__(self):
        return (f"OrderUpdate({self.signal_id} {self.instrument} {SIDE_NAMES.get(self.side, self.side)} "
                f"{self.status_name} {self.filled_quantity}/{self.quantity}@{self.fill_price}"
                f"{' refused ' + self.reason if self.refused else ''})")


class ParamError(ValueError):
    """A parameter missing, of the wrong type, or left unread: the runtime
    refuses to start with its message."""


class Params:
    """The group's parameters ([strategy.groups.params]), as text; each
    getter converts and checks. A key no getter asked for by the end of
    on_start is refused (a typo is an error, not a silent default)."""

    def __init__(self, values=None, where="params"):
        self._values = dict(values or {})
        self._where = where
        self._read = set()

    def _find(self, key):
        self._read.add(key)
        return self._values.get(key)

    def _fail(self, key, what, got):
        raise ParamError(f'{self._where}.{key} must be {what} (got "{got}")')

    def has(self, key) -> bool:
        return key in self._values

    def _convert(self, key, fallback, convert, what):
        v = self._find(key)
        if v is None:
            return fallback
        # What the C++ getters refuse, Python's float() and int() would take.
        if v != v.strip() or "_" in v:
            self._fail(key, what, v)
        try:
            return convert(v)
        except ValueError:
            self._fail(key, what, v)

    def number(self, key, fallback: float) -> float:
        return self._convert(key, fallback, float, "a number")

    def integer(self, key, fallback: int) -> int:
        return self._convert(key, fallback, int, "an integer")

    def text(self, key, fallback: str) -> str:
        v = self._find(key)
        return fallback if v is None else v

    def flag(self, key, fallback: bool) -> bool:
        v = self._find(key)
        if v is None:
            return fallback
        if v in ("true", "false"):
            return v == "true"
        self._fail(key, "true or false", v)

    def require(self, ok, key, what):
        """A check of the strategy's own: raises ParamError naming the key."""
        if not ok:
            self._fail(key, what, self._values.get(key, "(default)"))

    def unread(self) -> list:
        return sorted(k for k in self._values if k not in self._read)

    @property
    def where(self):
        return self._where

    def all(self) -> dict:
        return dict(self._values)


class Strategy:
    """Subclass this. One object per instance (shard), serving all of its
    instruments: keep per-instrument state in a dict keyed by instrument.
    self.ctx is the runtime's Context, valid from on_start until on_stop
    returns."""

    ctx = None

    def on_start(self):
        """Read parameters here (self.ctx.params); raise to refuse to start."""

    def on_tick(self, tick: Tick):
        raise NotImplementedError

    def on_feed(self, event: FeedEvent):
        pass

    def on_order(self, update: OrderUpdate):
        pass

    def on_stop(self):
        pass
