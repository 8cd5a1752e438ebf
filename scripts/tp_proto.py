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

# type id -> (name, [field names in wire order])
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
}
TYPE_IDS = {name: tid for tid, (name, _) in MESSAGES.items()}
# Optional fields appended after the required ones, with their defaults, in
# wire order: a reader takes them when present.
OPTIONAL = {
    "order_request": [("expires_ts_ns", 0)],
}

SIDES = {1: "BUY", 2: "SELL"}
ORDER_STATUSES = {1: "NEW", 2: "ACCEPTED", 3: "PARTIALLY_FILLED", 4: "FILLED",
                  5: "REJECTED", 6: "CANCELED", 7: "UNKNOWN"}
ACK_STATUSES = {1: "ACCEPTED", 2: "DUPLICATE", 3: "REJECTED"}

FLOAT_FIELDS = {"bid", "ask", "bid_volume", "ask_volume", "quantity", "trigger_price",
                "confidence", "price_hint", "filled_quantity", "fill_price"}


class ProtocolError(ValueError):
    pass


def encode(name, fields, extra=()):
    """Packs message `name` from a dict of its fields (plus appended extras)."""
    import msgpack
    tid = TYPE_IDS[name]
    values = []
    for f in MESSAGES[tid][1]:
        v = fields[f]
        if f in FLOAT_FIELDS:
            v = float(v)
        values.append(v)
    for f, default in OPTIONAL.get(name, ()):
        values.append(fields.get(f, default))
    return msgpack.packb([tid, SCHEMA_VERSION, *values, *extra], use_bin_type=True)


def decode(payload):
    """Returns (name, dict of fields); raises ProtocolError with the reason."""
    import msgpack
    try:
        if len(payload) > 128 * 1024:
            raise ValueError("payload above 128 KiB")
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001 - any unpack failure is "malformed"
        raise ProtocolError(f"malformed: {e}") from e
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
    out = {}
    for f, v in zip(names, values):
        if f in FLOAT_FIELDS:
            # msgpack-c writes whole-number doubles as integers.
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ProtocolError(f"{f} is not a number")
            v = float(v)
            if math.isnan(v) or math.isinf(v):
                raise ProtocolError(f"{f} is not finite")
        out[f] = v
    for i, (f, default) in enumerate(OPTIONAL.get(name, ())):
        j = len(names) + i
        if j < len(values):
            v = values[j]
            if not isinstance(v, int) or isinstance(v, bool):
                raise ProtocolError(f"{f} is not an integer")
            out[f] = v
        else:
            out[f] = default
    return name, out
