"""The pipeline's wire format in Python (pyzmq + msgpack from Debian).

Written from docs/PROTOCOL.md alone, as a check that the page is enough to
write a client in another language; the tests use it against the C++ codec.
The message table (MESSAGES, OPTIONAL, FLOAT_FIELDS) is held to the C++
schema (proto/include/proto/messages.hpp) by tests/proto/test_schema.py.
A payload is a msgpack array [type, version, field...]; a reader takes the
fields it knows and ignores the rest.
"""

import math

SCHEMA_VERSION = 1

# type id -> (name, [required field names in wire order])
MESSAGES = {
    1: ("tick", ["instrument", "bid", "ask", "bid_volume", "ask_volume",
                 "source_ts_ns", "seq", "gateway_ts_ns"]),
    2: ("heartbeat", ["source", "seq", "ts_ns", "ticks_sent"]),
    3: ("signal", ["signal_id", "strategy", "instance", "instrument", "action",
                   "quantity", "trigger_price", "confidence", "created_ts_ns",
                   "expires_ts_ns", "causation_seq", "causation_ts_ns"]),
    4: ("order_request", ["client_order_id", "signal_id", "instrument", "side",
                          "quantity", "price_hint", "sent_ts_ns"]),
    5: ("order_query", ["client_order_id", "sent_ts_ns"]),
    6: ("order_reply", ["client_order_id", "order_id", "status", "filled_quantity",
                        "fill_price", "reason", "duplicate", "broker_ts_ns"]),
    7: ("order_event", ["order_id", "client_order_id", "signal_id", "instrument",
                        "side", "status", "quantity", "filled_quantity", "fill_price",
                        "reason", "created_ts_ns", "event_ts_ns", "causation_ts_ns"]),
    8: ("signal_ack", ["signal_id", "status", "reason", "ts_ns"]),
    9: ("dead_letter", ["source", "reason", "detail", "ts_ns", "original"]),
    10: ("position_query", ["instrument", "sent_ts_ns"]),
    11: ("position_reply", ["instrument", "known", "quantity", "reason", "ts_ns"]),
    12: ("strategy_position", ["strategy", "instrument", "quantity", "ts_ns"]),
    13: ("cancel_request", ["signal_id", "strategy", "instance", "reason", "created_ts_ns"]),
    14: ("order_cancel", ["client_order_id", "reason", "sent_ts_ns"]),
    15: ("execution_report", ["stream", "seq", "client_order_id", "order_id", "instrument",
                             "side", "status", "quantity", "last_quantity", "last_price",
                             "filled_quantity", "avg_price", "reason", "broker_ts_ns", "ts_ns",
                             "quote_seq", "quote_ts_ns"]),
    16: ("report_query", ["from_seq", "max_count", "sent_ts_ns"]),
    17: ("report_batch", ["stream", "last_seq", "count", "complete", "reports", "reason",
                          "ts_ns"]),
    18: ("open_orders_query", ["offset", "sent_ts_ns"]),
    19: ("portfolio_event", ["account_currency", "equity", "realized_pnl", "unrealized_pnl",
                             "daily_pnl", "day_start_ns", "complete", "state", "open_orders",
                             "ts_ns"]),
    20: ("instrument_pnl", ["instrument", "quote_currency", "position", "avg_price", "mark_price",
                            "realized_pnl", "unrealized_pnl", "rate_to_account",
                            "realized_account", "unrealized_account", "ts_ns"]),
    21: ("control_request", ["command", "reason", "sent_by", "sent_ts_ns"]),
    22: ("control_reply", ["ok", "state", "cause", "since_ns", "flatten_pending", "open_orders",
                          "detail", "ts_ns"]),
}
TYPE_IDS = {name: tid for tid, (name, _) in MESSAGES.items()}

# An order's terms, appended to a signal and to an order request; absent,
# they mean what an older sender meant: a market order, immediate-or-cancel.
TERMS = [("order_type", 0), ("limit_price", 0.0), ("time_in_force", 0), ("good_till_ns", 0)]
# Optional fields appended after the required ones, with their defaults, in
# wire order: a reader takes them when present.
OPTIONAL = {
    "signal": list(TERMS),
    "order_request": [("expires_ts_ns", 0), *TERMS],
    "signal_ack": [("cancel", False)],
    # Set on a letter its sender may send again: the sink writes one line per
    # (source, key) it remembers. Empty: no key.
    "dead_letter": [("key", "")],
}

SIDES = {1: "BUY", 2: "SELL"}
ORDER_STATUSES = {1: "NEW", 2: "ACCEPTED", 3: "PARTIALLY_FILLED", 4: "FILLED",
                  5: "REJECTED", 6: "CANCELED", 7: "UNKNOWN", 8: "EXPIRED"}
# After these the broker changes the order no more; PARTIALLY_FILLED is not
# one (the rest of a resting order still works).
FINAL_STATUSES = {4, 5, 6, 8}
ACK_STATUSES = {1: "ACCEPTED", 2: "DUPLICATE", 3: "REJECTED"}
ORDER_TYPES = {0: "MARKET", 1: "LIMIT"}
TIME_IN_FORCE = {0: "IOC", 1: "GTC", 2: "GTD"}
TRADING_STATES = {1: "ACTIVE", 2: "REDUCING", 3: "HALTED"}
CONTROL_COMMANDS = {1: "STATUS", 2: "HALT", 3: "REDUCE", 4: "FLATTEN", 5: "RESUME"}

FLOAT_FIELDS = {"bid", "ask", "bid_volume", "ask_volume", "quantity", "trigger_price",
                "confidence", "price_hint", "filled_quantity", "fill_price", "limit_price",
                "last_quantity", "last_price", "avg_price", "equity", "realized_pnl",
                "unrealized_pnl", "daily_pnl", "position", "mark_price", "rate_to_account",
                "realized_account", "unrealized_account"}
BOOL_FIELDS = {"duplicate", "known", "cancel", "complete", "ok", "flatten_pending"}
# Enum fields by name; `status` is an AckStatus in a signal_ack only.
ENUM_FIELDS = {"action": SIDES, "side": SIDES, "status": ORDER_STATUSES,
               "order_type": ORDER_TYPES, "time_in_force": TIME_IN_FORCE,
               "state": TRADING_STATES, "command": CONTROL_COMMANDS}


def enum_values(name, field):
    """The values an enum field of message `name` may take, or None."""
    if name == "signal_ack" and field == "status":
        return ACK_STATUSES
    return ENUM_FIELDS.get(field)


class ProtocolError(ValueError):
    pass


def encode(name, fields, extra=()):
    """Packs message `name` from a dict of its fields (plus appended extras).
    Optional fields missing from the dict are sent with their defaults."""
    import msgpack
    tid = TYPE_IDS[name]
    values = []
    for f in MESSAGES[tid][1]:
        values.append(_out(f, fields[f]))
    for f, default in OPTIONAL.get(name, ()):
        values.append(_out(f, fields.get(f, default)))
    return msgpack.packb([tid, SCHEMA_VERSION, *values, *extra], use_bin_type=True)


def _out(field, value):
    return float(value) if field in FLOAT_FIELDS else value


def decode(payload):
    """Returns (name, dict of fields); raises ProtocolError with the reason."""
    import msgpack
    try:
        if len(payload) > 128 * 1024:
            raise ValueError("payload above 128 KiB")
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001 - any unpack failure is "malformed"
        raise ProtocolError(f"malformed: {e}") from e
    return decode_value(obj)


def decode_value(obj):
    """decode() of an already unpacked envelope."""
    if not isinstance(obj, list) or len(obj) < 2:
        raise ProtocolError("not an envelope")
    tid, version = obj[0], obj[1]
    if tid not in MESSAGES:
        raise ProtocolError(f"unknown type {tid}")
    if version != SCHEMA_VERSION:
        raise ProtocolError(f"unknown version {version}")
    name, names = MESSAGES[tid]
    values = obj[2:]
    if len(values) < len(names):
        raise ProtocolError(f"{names[len(values)]} is missing")
    out = {f: _field(name, f, v) for f, v in zip(names, values)}
    for i, (f, default) in enumerate(OPTIONAL.get(name, ())):
        j = len(names) + i
        out[f] = _field(name, f, values[j]) if j < len(values) else default
    return name, out


def _field(name, f, v):
    if f in FLOAT_FIELDS:
        # msgpack-c writes whole-number doubles as integers.
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ProtocolError(f"{f} is not a number")
        v = float(v)
        if math.isnan(v) or math.isinf(v):
            raise ProtocolError(f"{f} is not finite")
    elif f in BOOL_FIELDS:
        if not isinstance(v, bool):
            raise ProtocolError(f"{f} is not a bool")
    elif enum_values(name, f) is not None:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ProtocolError(f"{f} is not an integer")
        if v not in enum_values(name, f):
            raise ProtocolError(f"{f} {v} is not a known value")
    elif f in dict(OPTIONAL.get(name, ())):
        if isinstance(dict(OPTIONAL[name])[f], str):
            if not isinstance(v, str):
                raise ProtocolError(f"{f} is not a string")
        elif not isinstance(v, int) or isinstance(v, bool):
            raise ProtocolError(f"{f} is not an integer")
    return v


def check_terms(order_type=0, limit_price=0.0, time_in_force=0, good_till_ns=0):
    """None when an order's terms are coherent, else why not (the rules of
    'The order model' on docs/PROTOCOL.md; the C++ refuses such a message
    with out_of_range and this text)."""
    if order_type == 1:  # LIMIT
        if not (math.isfinite(limit_price) and limit_price > 0):
            return "limit_price must be positive and finite for a LIMIT order"
    else:
        if limit_price != 0:
            return "limit_price must be 0 for a MARKET order"
        if time_in_force != 0:
            return "a MARKET order is IOC"
    if time_in_force == 2:  # GTD
        if good_till_ns <= 0:
            return "good_till_ns must be set for a GTD order"
    elif good_till_ns != 0:
        return "good_till_ns is for GTD orders only"
    return None


def terms_of(fields):
    """The terms of a decoded signal or order request, for check_terms(**)."""
    return {f: fields.get(f, default) for f, default in TERMS}


def report_id(report):
    """An execution report's id: '<stream>:<seq>'."""
    return f"{report['stream']}:{report['seq']}"


def pack_reports(reports):
    """(count, bytes) for a report_batch: each report (a dict of an
    execution_report's fields) encoded whole, back to back."""
    return len(reports), b"".join(encode("execution_report", r) for r in reports)


def unpack_reports(batch):
    """The execution reports (dicts) a decoded report_batch carries, in order;
    ProtocolError unless `reports` holds exactly `count` valid reports."""
    import msgpack
    data = batch["reports"]
    if isinstance(data, str):
        data = data.encode()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    out = []
    try:
        for obj in unpacker:
            name, fields = decode_value(obj)
            if name != "execution_report":
                raise ProtocolError(f"reports[{len(out)}] is a {name}")
            out.append(fields)
    except ProtocolError:
        raise
    except Exception as e:  # noqa: BLE001 - a cut report is "malformed"
        raise ProtocolError(f"malformed: reports: {e}") from e
    if unpacker.tell() != len(data):
        raise ProtocolError("malformed: reports ends inside a report")
    if len(out) != batch["count"]:
        raise ProtocolError(f"count is {batch['count']} but reports holds {len(out)}")
    return out
