"""The wire as the Python runtime needs it, beside scripts/tp_proto.py (the
repository's Python codec, used here for the dead letters and the message
table): a tick check that reads msgpack's list in place on the hot path and
falls back to a full check naming the same reason as the C++ decoder
(proto/src/codec.cpp) when anything is off, the signal encoder (with the
order's terms), the CancelRequest encoder, and the small messages a strategy
reads (heartbeat, ack, order event, position)."""

from __future__ import annotations

import math
import os
import sys

import msgpack

_REPO_SCRIPTS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts"))
if os.path.isdir(_REPO_SCRIPTS) and _REPO_SCRIPTS not in sys.path:
    sys.path.append(_REPO_SCRIPTS)

import tp_proto  # noqa: E402

VERSION = tp_proto.SCHEMA_VERSION
T_TICK, T_HEARTBEAT, T_SIGNAL, T_ORDER_EVENT, T_ACK, T_DEAD_LETTER = 1, 2, 3, 7, 8, 9
T_STRATEGY_POSITION, T_CANCEL_REQUEST = 12, 13
MAX_PAYLOAD = 64 * 1024
MAX_ID = 128
MAX_TEXT = 1024
MAX_INSTRUMENT = 32
I64_MAX = 2**63 - 1
I64_MIN = -2**63
U64_MAX = 2**64 - 1
INF = math.inf

TICK_TOPIC_PREFIX = b"TICK."
HEARTBEAT_TOPIC = b"HB.gateway"
ORDER_TOPIC_PREFIX = b"ORDER."
ACK_TOPIC_PREFIX = b"ACK."
POS_TOPIC_PREFIX = b"POS."

unpackb = msgpack.unpackb
packb = msgpack.packb

# The wire's OrderType and TimeInForce numbers (proto/messages.hpp): zero is
# what a signal without the optional fields means, market IOC.
ORDER_TYPE_CODES = {"market": 0, "limit": 1}
TIME_IN_FORCE_CODES = {"ioc": 0, "gtc": 1, "gtd": 2}
MARKET, LIMIT = 0, 1
IOC, GTC, GTD = 0, 1, 2
MAX_STATUS = 8  # EXPIRED


class WireError(Exception):
    """reason (a docs/PROTOCOL.md code) and detail."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def tick_topic(sym: str) -> bytes:
    return TICK_TOPIC_PREFIX + sym.encode()


def order_topic(sym: str) -> bytes:
    return ORDER_TOPIC_PREFIX + sym.encode()


def ack_topic(group: str, shard: int) -> bytes:
    return f"ACK.{group}.{shard}".encode()


def position_topic(group: str) -> bytes:
    return POS_TOPIC_PREFIX + group.encode()


def unpack(payload: bytes):
    """The envelope's list; WireError for what the C++ refuses before fields."""
    if len(payload) > MAX_PAYLOAD:
        raise WireError("too_large", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        obj = unpackb(payload, raw=False, strict_map_key=False, max_array_len=64, max_map_len=64)
    except Exception as e:  # noqa: BLE001 - any unpack failure is "malformed"
        raise WireError("malformed", f"{type(e).__name__}: {e}") from None
    if type(obj) is not list:
        raise WireError("not_an_array", "payload is not a msgpack array")
    return obj


def envelope(obj, want_type, want_name, nfields):
    if len(obj) < 2:
        raise WireError("missing_field", "type is missing" if not obj else "version is missing")
    tid, ver = obj[0], obj[1]
    if type(tid) is not int or tid < 0:
        raise WireError("wrong_type", "type is not a unsigned integer")
    if type(ver) is not int or ver < 0:
        raise WireError("wrong_type", "version is not a unsigned integer")
    if tid != want_type:
        if tid in tp_proto.MESSAGES:
            raise WireError("wrong_message", f"expected {want_name}, got {tp_proto.MESSAGES[tid][0]}")
        raise WireError("unknown_type", f"type {tid}")
    if ver != VERSION:
        raise WireError("unknown_version", f"version {ver}")
    if len(obj) < 2 + nfields:
        raise WireError("missing_field", f"{_FIELDS[want_type][len(obj) - 2]} is missing")


_FIELDS = {tid: names for tid, (_, names) in tp_proto.MESSAGES.items()}


def _str(v, name, max_len):
    if type(v) is not str:
        raise WireError("wrong_type", f"{name} is not a string")
    if len(v.encode()) > max_len:
        raise WireError("out_of_range", f"{name} is longer than {max_len}")
    return v


def _f64(v, name):
    if type(v) is float or (type(v) is int):
        return float(v)
    raise WireError("wrong_type", f"{name} is not a number")


def _u64(v, name):
    if type(v) is not int:
        raise WireError("wrong_type", f"{name} is not a unsigned integer")
    if v < 0:
        raise WireError("out_of_range", f"{name} is negative")
    return v


def _i64(v, name):
    if type(v) is not int:
        raise WireError("wrong_type", f"{name} is not a integer")
    if v > I64_MAX:
        raise WireError("out_of_range", f"{name} exceeds int64")
    return v


def _instrument(v, name="instrument"):
    if not v:
        raise WireError("out_of_range", f"{name} is empty")
    if any(c <= " " or c > "~" or c == "." for c in v):
        raise WireError("out_of_range", f"{name} has a forbidden character")
    return v


def check_tick(obj):
    """The full check of a decoded tick list (the slow path): returns the
    fields (instrument, bid, ask, bid_volume, ask_volume, source_ts_ns, seq,
    gateway_ts_ns) or raises WireError with the C++ reason."""
    envelope(obj, T_TICK, "tick", 8)
    inst = _instrument(_str(obj[2], "instrument", MAX_INSTRUMENT))
    bid, ask = _f64(obj[3], "bid"), _f64(obj[4], "ask")
    bv, av = _f64(obj[5], "bid_volume"), _f64(obj[6], "ask_volume")
    sts = _i64(obj[7], "source_ts_ns")
    seq = _u64(obj[8], "seq")
    gts = _i64(obj[9], "gateway_ts_ns")
    if not 0 < bid < INF:
        raise WireError("out_of_range", "bid must be a positive finite price")
    if not 0 < ask < INF:
        raise WireError("out_of_range", "ask must be a positive finite price")
    if bid > ask:
        raise WireError("out_of_range", "crossed book: bid above ask")
    if not 0 <= bv < INF:
        raise WireError("out_of_range", "bid_volume must be finite and >= 0")
    if not 0 <= av < INF:
        raise WireError("out_of_range", "ask_volume must be finite and >= 0")
    if seq == 0:
        raise WireError("out_of_range", "seq starts at 1")
    return inst, bid, ask, bv, av, sts, seq, gts


def decode_heartbeat(payload):
    """(seq, ts_ns, ticks_sent)."""
    obj = unpack(payload)
    envelope(obj, T_HEARTBEAT, "heartbeat", 4)
    src = _str(obj[2], "source", MAX_ID)
    if not src:
        raise WireError("out_of_range", "source is empty")
    seq = _u64(obj[3], "seq")
    ts = _i64(obj[4], "ts_ns")
    return seq, ts, _u64(obj[5], "ticks_sent")


def decode_ack(payload):
    """(signal_id, status, reason, cancel): cancel (the optional appended
    field, False when absent) says it acks a CancelRequest for the signal,
    not the signal itself."""
    obj = unpack(payload)
    envelope(obj, T_ACK, "signal_ack", 4)
    sid = _str(obj[2], "signal_id", MAX_ID)
    status = _u64(obj[3], "status")
    if not 1 <= status <= 3:
        raise WireError("out_of_range", f"status has unknown value {status}")
    reason = _str(obj[4], "reason", MAX_TEXT)
    _i64(obj[5], "ts_ns")
    cancel = False
    if len(obj) > 6:
        cancel = obj[6]
        if type(cancel) is not bool:
            raise WireError("wrong_type", "cancel is not a boolean")
    if not sid:
        raise WireError("out_of_range", "signal_id is empty")
    return sid, status, reason, cancel


def decode_order_event(payload):
    """A dict of the OrderEvent's fields."""
    obj = unpack(payload)
    envelope(obj, T_ORDER_EVENT, "order_event", 13)
    e = {
        "order_id": _str(obj[2], "order_id", MAX_ID),
        "client_order_id": _str(obj[3], "client_order_id", MAX_ID),
        "signal_id": _str(obj[4], "signal_id", MAX_ID),
        "instrument": _instrument(_str(obj[5], "instrument", MAX_INSTRUMENT)),
        "side": _u64(obj[6], "side"),
        "status": _u64(obj[7], "status"),
        "quantity": _f64(obj[8], "quantity"),
        "filled_quantity": _f64(obj[9], "filled_quantity"),
        "fill_price": _f64(obj[10], "fill_price"),
        "reason": _str(obj[11], "reason", MAX_TEXT),
        "created_ts_ns": _i64(obj[12], "created_ts_ns"),
        "event_ts_ns": _i64(obj[13], "event_ts_ns"),
        "causation_ts_ns": _i64(obj[14], "causation_ts_ns"),
    }
    if e["side"] not in (1, 2):
        raise WireError("out_of_range", f"side has unknown value {e['side']}")
    if not 1 <= e["status"] <= MAX_STATUS:
        raise WireError("out_of_range", f"status has unknown value {e['status']}")
    for f in ("quantity", "filled_quantity", "fill_price"):
        if not 0 <= e[f] < INF:
            raise WireError("out_of_range", f"{f} must be finite and >= 0")
    return e


def decode_position(payload):
    """(strategy, instrument, quantity, ts_ns) of a StrategyPosition."""
    obj = unpack(payload)
    envelope(obj, T_STRATEGY_POSITION, "strategy_position", 4)
    group = _str(obj[2], "strategy", MAX_ID)
    inst = _instrument(_str(obj[3], "instrument", MAX_INSTRUMENT))
    qty = _f64(obj[4], "quantity")
    ts = _i64(obj[5], "ts_ns")
    if not group:
        raise WireError("out_of_range", "strategy is empty")
    if not -INF < qty < INF:
        raise WireError("out_of_range", "quantity must be finite")
    return group, inst, qty, ts


def check_terms(order_type, limit_price, time_in_force, good_till_ns):
    """None when an order's terms are sane, else why not, in the words of the
    C++ check_terms (proto/src/codec.cpp), which the executor applies: a
    LIMIT order has a positive finite limit price, a MARKET order none and is
    IOC, a GTD order a good-till time and no other order one."""
    if order_type not in (MARKET, LIMIT):
        return f"order_type has unknown value {order_type}"
    if time_in_force not in (IOC, GTC, GTD):
        return f"time_in_force has unknown value {time_in_force}"
    if order_type == LIMIT:
        if not 0 < limit_price < INF:
            return "limit_price must be positive and finite for a LIMIT order"
    else:
        if limit_price != 0:
            return "limit_price must be 0 for a MARKET order"
        if time_in_force != IOC:
            return "a MARKET order is IOC"
    if time_in_force == GTD:
        if good_till_ns <= 0:
            return "good_till_ns must be set for a GTD order"
    elif good_till_ns != 0:
        return "good_till_ns is for GTD orders only"
    return None


def encode_signal(signal_id, group, shard, instrument, action, quantity, trigger_price, confidence, created_ts_ns,
                  expires_ts_ns, causation_seq, causation_ts_ns, order_type=MARKET, limit_price=0.0,
                  time_in_force=IOC, good_till_ns=0) -> bytes:
    """A TradingSignal with its terms always appended, as the C++ encoder
    writes them (an older executor ignores them and trades market IOC)."""
    return packb([T_SIGNAL, VERSION, signal_id, group, shard, instrument, action, float(quantity),
                  float(trigger_price), float(confidence), created_ts_ns, expires_ts_ns, causation_seq,
                  causation_ts_ns, order_type, float(limit_price), time_in_force, good_till_ns], use_bin_type=True)


def encode_cancel(signal_id, group, shard, reason, created_ts_ns) -> bytes:
    """A CancelRequest (strategy PUSH -> executor, on the signals socket) for
    the order of `signal_id`; the reason is cut to the wire's limit."""
    return packb([T_CANCEL_REQUEST, VERSION, signal_id, group, shard, _cut(reason, MAX_TEXT), created_ts_ns],
                 use_bin_type=True)


def _cut(text: str, max_bytes: int) -> str:
    b = text.encode()
    return text if len(b) <= max_bytes else b[:max_bytes].decode(errors="ignore")


def encode_dead_letter(source, reason, detail, ts_ns, original) -> bytes:
    return tp_proto.encode("dead_letter", {
        "source": _cut(source, MAX_ID), "reason": _cut(reason, MAX_ID), "detail": _cut(detail, MAX_TEXT),
        "ts_ns": ts_ns, "original": bytes(original[:MAX_PAYLOAD])})
