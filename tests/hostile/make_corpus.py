#!/usr/bin/python3
"""Writes the hostile-input corpus: corpus/*.bin (fixed bytes) and cases.json
(the manifest test_hostile.py injects). Edit this file, then run it; both
outputs are committed so that a reader (or a fuzzer's seed directory) needs
nothing but the files.

A case names its entry point, the frames to send and what must happen:
  "frames": each frame is "text:<ascii>", "hex:<bytes>", "file:<corpus file>",
            {"zeros": n} (n zero bytes), or {"msg": <type>, ...}: a message
            built at run time from a good template (timestamps, sequence
            numbers and ids depend on the moment and the program's state):
              "set":   fields to override; strings starting with "$" are
                       computed: $nan $inf $-inf $now $now-60s $now+60s
                       $seq (next good seq) $last_seq $last_seq-1 $uid
                       $seen_id (an id already accepted) $long:<n> ('A' x n)
                       $resting_id (a signal whose order rests at the broker)
                       $stream (the report stream the test plays)
                       $report_seq (the next report seq, taken: a good report)
                       $next_report_seq (the same, not taken: a bad one, which
                       must not use up a seq) $next_report_seq+<n>
                       $last_report_seq
              "raw":   field names whose value is sent as given (no float())
              "drop":  how many trailing fields to leave out
              "extra": values appended after the known fields
              "version"/"type": envelope overrides
              "cut":   bytes to cut from the end of the packed payload
  "payload": shorthand for frames = [entry point's topic] + [payload]
  "expect":  {"dead_letter": reason}   exactly one dead letter, this reason,
                                       from the entry point's program
             {"counter": key}          this stats counter moves, no dead letter
                                       (ZeroMQ cut the frame, or by design)
             {"served": true}          the message is good: it is served
             {"ack": "DUPLICATE"} / {"reply": "duplicate"}: served as a repeat
             {"cancel_ack": status, "ack_reason": prefix}: the executor acks a
                                       CancelRequest so (with a dead letter
                                       too when "dead_letter" is given)
             {"reply": "cancel_unknown" | "cancel_final" | "report_batch"}:
                                       dll_gateway answers a good request so,
                                       nothing is dead-lettered
  "ack": "REJECTED"   a refused signal is acked REJECTED with the dead
                      letter's reason (its sender can be named)
  "good": true        the message is valid though it moves a counter (a
                      report for an order the executor never placed)
"""

import json
import os

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

T0 = 1_780_000_000_000_000_000  # a fixed stamp for the static files


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


GOOD_TICK = pack([1, 1, "EURUSD", 1.0849, 1.0851, 1e6, 1e6, T0, 7, T0])
GOOD_SIGNAL = pack([3, 1, "every_nth.0.1.1", "every_nth", 0, "EURUSD", 1, 1000.0, 1.0851, 0.5,
                    T0, T0 + 5_000_000_000, 7, T0])
GOOD_ORDER = pack([4, 1, "C-every_nth.0.1.1", "every_nth.0.1.1", "EURUSD", 1, 1000.0, 1.0851, T0])
GOOD_ACK = pack([8, 1, "every_nth.0.1.1", 1, "", T0])
GOOD_DEAD_LETTER = pack([9, 1, "hostile", "test", "", T0, b"x"])
GOOD_CANCEL = pack([13, 1, "every_nth.0.1.1", "every_nth", 0, "", T0])
GOOD_ORDER_CANCEL = pack([14, 1, "C-every_nth.0.1.1", "", T0])
GOOD_REPORT = pack([15, 1, "S1", 3, "C-every_nth.0.1.1", "B-1", "EURUSD", 1, 2, 1000.0, 0.0, 0.0, 0.0, 0.0,
                    "", T0, T0, 0, 0])
GOOD_REPORT_QUERY = pack([16, 1, 1, 100, T0])
GOOD_OPEN_ORDERS_QUERY = pack([18, 1, 0, T0])

FILES = {
    # allocation bombs: headers announcing 4 GiB with nothing behind them
    "array32_bomb.bin": bytes.fromhex("ddffffffff"),
    "map32_bomb.bin": bytes.fromhex("dfffffffff"),
    "str32_bomb.bin": bytes.fromhex("dbffffffff"),
    "bin32_bomb.bin": bytes.fromhex("c6ffffffff"),
    "ext32_bomb.bin": bytes.fromhex("c9ffffffff01"),
    # the same inside a plausible envelope, after the type and version
    "envelope_str32_bomb.bin": bytes.fromhex("930101db7fffffff"),
    "envelope_array32_bomb.bin": bytes.fromhex("930101ddffffffff"),
    "envelope_map32_bomb.bin": bytes.fromhex("930101dfffffffff"),
    "envelope_bin32_bomb.bin": bytes.fromhex("930901c67fffffff"),
    # a container above the 64-element limit that does fit in the payload
    "array16_of_100.bin": bytes.fromhex("dc0064") + b"\xc0" * 100,
    # nesting far beyond the limit of 4
    "deep_arrays.bin": b"\x91" * 10000 + b"\xc0",
    "deep_maps.bin": b"\x81\x01" * 5000 + b"\xc0",
    # not msgpack / not the envelope
    "not_msgpack.bin": b"\xc1garbage",
    "text.bin": b"GET / HTTP/1.1\r\n\r\n",
    "not_an_array.bin": pack({"type": 1, "version": 1}),
    "bare_integer.bin": pack(42),
    "envelope_too_short.bin": pack([1]),
    "type_as_string.bin": pack(["tick", 1]),
    # envelope values
    "unknown_type.bin": pack([42, 1, "EURUSD"]),
    "type_zero.bin": pack([0, 1]),
    "tick_version_2.bin": pack([1, 2, "EURUSD", 1.0849, 1.0851, 1e6, 1e6, T0, 7, T0]),
    "signal_version_0.bin": pack([3, 0] + msgpack.unpackb(GOOD_SIGNAL)[2:]),
    "order_version_99.bin": pack([4, 99] + msgpack.unpackb(GOOD_ORDER)[2:]),
    "ack_version_2.bin": pack([8, 2] + msgpack.unpackb(GOOD_ACK)[2:]),
    "dead_letter_version_2.bin": pack([9, 2, "hostile", "test", "", T0, b"x"]),
    # truncated and trailing
    "tick_truncated.bin": GOOD_TICK[:-3],
    "tick_trailing_byte.bin": GOOD_TICK + b"\xc0",
    "signal_truncated.bin": GOOD_SIGNAL[:-5],
    "order_truncated.bin": GOOD_ORDER[:len(GOOD_ORDER) // 2],
    "ack_truncated.bin": GOOD_ACK[:-1],
    "dead_letter_truncated.bin": GOOD_DEAD_LETTER[:-1],
    # orders with a life: cancels, reports and the queries for them
    "cancel_truncated.bin": GOOD_CANCEL[:-3],
    "cancel_version_2.bin": pack([13, 2] + msgpack.unpackb(GOOD_CANCEL)[2:]),
    "order_cancel_truncated.bin": GOOD_ORDER_CANCEL[:len(GOOD_ORDER_CANCEL) // 2],
    "report_truncated.bin": GOOD_REPORT[:-2],
    "report_trailing_byte.bin": GOOD_REPORT + b"\xc0",
    "report_version_2.bin": pack([15, 2] + msgpack.unpackb(GOOD_REPORT)[2:]),
    "report_query_truncated.bin": GOOD_REPORT_QUERY[:-1],
    "open_orders_query_truncated.bin": GOOD_OPEN_ORDERS_QUERY[:-1],
}


def tick(**kw):
    return {"msg": "tick", **kw}


def signal(**kw):
    return {"msg": "signal", **kw}


def order(**kw):
    return {"msg": "order_request", **kw}


def ack(**kw):
    return {"msg": "signal_ack", **kw}


def cancel(**kw):
    return {"msg": "cancel_request", **kw}


def order_cancel(**kw):
    return {"msg": "order_cancel", **kw}


def report(**kw):
    return {"msg": "execution_report", **kw}


def report_query(**kw):
    return {"msg": "report_query", **kw}


def open_orders_query(**kw):
    return {"msg": "open_orders_query", **kw}


def control(**kw):
    return {"msg": "control_request", **kw}


LIMIT_GTC = {"order_type": 1, "limit_price": 1.0, "time_in_force": 1}


def dl(reason):
    return {"dead_letter": reason}


CASES = []


def case(entry, name, expect, payload=None, frames=None, **extra):
    c = {"entry": entry, "name": name}
    if frames is not None:
        c["frames"] = frames
    else:
        c["payload"] = payload
    c["expect"] = expect
    c.update(extra)
    CASES.append(c)


# ---- strategy: tick subscription (the test plays the gateway) ---------------
E = "strategy_ticks"
case(E, "empty_payload", dl("malformed"), "hex:")
case(E, "three_frames_two_empty", dl("bad_frames"), frames=["text:TICK.EURUSD", "hex:", "hex:"])
case(E, "one_frame", dl("bad_frames"), frames=["text:TICK.EURUSD"])
case(E, "three_frames", dl("bad_frames"), frames=["text:TICK.EURUSD", tick(), "text:x"])
case(E, "not_msgpack", dl("malformed"), "file:not_msgpack.bin")
case(E, "http_request", dl("malformed"), "file:text.bin")
case(E, "array32_bomb", dl("malformed"), "file:array32_bomb.bin")
case(E, "map32_bomb", dl("malformed"), "file:map32_bomb.bin")
case(E, "str32_bomb", dl("malformed"), "file:str32_bomb.bin")
case(E, "bin32_bomb", dl("malformed"), "file:bin32_bomb.bin")
case(E, "ext32_bomb", dl("malformed"), "file:ext32_bomb.bin")
case(E, "envelope_str32_bomb", dl("malformed"), "file:envelope_str32_bomb.bin")
case(E, "envelope_array32_bomb", dl("malformed"), "file:envelope_array32_bomb.bin")
case(E, "envelope_map32_bomb", dl("malformed"), "file:envelope_map32_bomb.bin")
case(E, "array_of_100", dl("malformed"), "file:array16_of_100.bin")
case(E, "deep_arrays", dl("malformed"), "file:deep_arrays.bin")
case(E, "deep_maps", dl("malformed"), "file:deep_maps.bin")
case(E, "truncated", dl("malformed"), "file:tick_truncated.bin")
case(E, "truncated_live", dl("malformed"), tick(cut=1))
case(E, "trailing_byte", dl("malformed"), "file:tick_trailing_byte.bin")
case(E, "not_an_array", dl("not_an_array"), "file:not_an_array.bin")
case(E, "bare_integer", dl("not_an_array"), "file:bare_integer.bin")
case(E, "envelope_too_short", dl("missing_field"), "file:envelope_too_short.bin")
case(E, "type_as_string", dl("wrong_type"), "file:type_as_string.bin")
case(E, "unknown_type", dl("unknown_type"), "file:unknown_type.bin")
case(E, "type_zero", dl("unknown_type"), "file:type_zero.bin")
case(E, "unknown_version", dl("unknown_version"), "file:tick_version_2.bin")
case(E, "heartbeat_on_tick_topic", dl("wrong_message"), {"msg": "heartbeat"})
case(E, "missing_gateway_ts", dl("missing_field"), tick(drop=1))
case(E, "missing_all_fields", dl("missing_field"), tick(drop=8))
case(E, "extra_fields_accepted", {"served": True},
     tick(extra=["a new optional field", 12345, {"nested": [1, 2]}, None, True]))
case(E, "bid_is_string", dl("wrong_type"), tick(set={"bid": "1.08"}))
case(E, "instrument_is_integer", dl("wrong_type"), tick(set={"instrument": 7}, raw=["instrument"]))
case(E, "seq_is_float", dl("wrong_type"), tick(set={"seq": 7.5}, raw=["seq"]))
case(E, "gateway_ts_is_nil", dl("wrong_type"), tick(set={"gateway_ts_ns": None}, raw=["gateway_ts_ns"]))
case(E, "bid_nan", dl("out_of_range"), tick(set={"bid": "$nan"}))
case(E, "ask_inf", dl("out_of_range"), tick(set={"ask": "$inf"}))
case(E, "bid_minus_inf", dl("out_of_range"), tick(set={"bid": "$-inf"}))
case(E, "bid_zero", dl("out_of_range"), tick(set={"bid": 0}))
case(E, "bid_negative", dl("out_of_range"), tick(set={"bid": -1.08}))
case(E, "ask_volume_negative", dl("out_of_range"), tick(set={"ask_volume": -5}))
case(E, "bid_volume_nan", dl("out_of_range"), tick(set={"bid_volume": "$nan"}))
case(E, "crossed_book", dl("out_of_range"), tick(set={"bid": 1.0900, "ask": 1.0800}))
case(E, "seq_zero", dl("out_of_range"), tick(set={"seq": 0}))
case(E, "seq_negative", dl("out_of_range"), tick(set={"seq": -1}))
case(E, "gateway_ts_above_int64", dl("out_of_range"),
     tick(set={"gateway_ts_ns": 2**64 - 1}, raw=["gateway_ts_ns"]))
case(E, "instrument_33_chars", dl("out_of_range"), tick(set={"instrument": "$long:33"}))
case(E, "instrument_10k_chars", dl("out_of_range"), tick(set={"instrument": "$long:10000"}))
case(E, "instrument_empty", dl("out_of_range"), tick(set={"instrument": ""}))
case(E, "instrument_with_space", dl("out_of_range"), tick(set={"instrument": "EUR USD"}))
case(E, "other_instrument_on_topic", dl("topic_mismatch"), tick(set={"instrument": "GBPUSD"}))
case(E, "unknown_instrument_prefix_topic", {"counter": "wrong_topic"},
     frames=["text:TICK.EURUSDX", tick(set={"instrument": "EURUSDX"})])
case(E, "stale_60s", dl("stale"), tick(set={"gateway_ts_ns": "$now-60s"}))
case(E, "stale_zero_ts", dl("stale"), tick(set={"gateway_ts_ns": 0}))
case(E, "stale_int64_min", dl("stale"), tick(set={"gateway_ts_ns": -2**63}))
case(E, "future_60s", dl("future_timestamp"), tick(set={"gateway_ts_ns": "$now+60s"}))
case(E, "future_int64_max", dl("future_timestamp"), tick(set={"gateway_ts_ns": 2**63 - 1}))
case(E, "duplicate_seq", dl("duplicate_seq"), tick(set={"seq": "$last_seq"}))
case(E, "out_of_order_seq", dl("out_of_order"), tick(set={"seq": "$last_seq-1"}))
case(E, "oversized_frame", {"counter": "connections_dropped"},
     frames=["text:TICK.EURUSD", {"zeros": 64 * 1024 + 1}])
case(E, "heartbeat_malformed", dl("malformed"), frames=["text:HB.gateway", "file:str32_bomb.bin"])
case(E, "heartbeat_missing_field", dl("missing_field"),
     frames=["text:HB.gateway", {"msg": "heartbeat", "drop": 1}])

# ---- strategy: ack back channel (the test plays the executor) ---------------
E = "strategy_acks"
case(E, "one_frame", dl("bad_frames"), frames=["text:ACK.strategy.0"])
case(E, "three_frames", dl("bad_frames"), frames=["text:ACK.strategy.0", ack(), "hex:"])
case(E, "empty_payload", dl("malformed"), "hex:")
case(E, "array32_bomb", dl("malformed"), "file:array32_bomb.bin")
case(E, "deep_arrays", dl("malformed"), "file:deep_arrays.bin")
case(E, "truncated", dl("malformed"), "file:ack_truncated.bin")
case(E, "unknown_type", dl("unknown_type"), "file:unknown_type.bin")
case(E, "unknown_version", dl("unknown_version"), "file:ack_version_2.bin")
case(E, "tick_on_ack_topic", dl("wrong_message"), tick())
case(E, "missing_ts", dl("missing_field"), ack(drop=1))
case(E, "extra_fields_accepted", {"served": True}, ack(extra=[1, "x", [1, 2, 3]]))
case(E, "signal_id_is_integer", dl("wrong_type"), ack(set={"signal_id": 5}, raw=["signal_id"]))
case(E, "status_unknown", dl("out_of_range"), ack(set={"status": 9}))
case(E, "signal_id_empty", dl("out_of_range"), ack(set={"signal_id": ""}))
case(E, "signal_id_too_long", dl("out_of_range"), ack(set={"signal_id": "$long:129"}))
case(E, "other_instance_topic", {"counter": "wrong_topic"}, frames=["text:ACK.strategy.01", ack()])
# the ack of a CancelRequest (cancel = true): one for no cancel of this
# instance is counted apart from the signals' acks
case(E, "cancel_ack_unmatched", {"counter": "cancel_acks_unmatched"}, ack(set={"cancel": True}))
case(E, "cancel_is_integer", dl("wrong_type"), ack(set={"cancel": 1}))
case(E, "cancel_is_nil", dl("wrong_type"), ack(set={"cancel": None}))
case(E, "cancel_ack_extra_fields_accepted", {"counter": "cancel_acks_unmatched"},
     ack(set={"cancel": True}, extra=["v2 field"]))
# order events on the same socket (ORDER.<instrument>): EXPIRED is a status now;
# one of this group's ("strategy.", the default group's name) is counted
OE = "text:ORDER.EURUSD"
case(E, "order_event_expired", {"counter": "order_updates"},
     frames=[OE, {"msg": "order_event", "set": {"signal_id": "strategy.9.hostile.1", "status": 8}}])
case(E, "order_event_status_unknown", dl("out_of_range"), frames=[OE, {"msg": "order_event", "set": {"status": 9}}])
case(E, "order_event_filled_negative", dl("out_of_range"),
     frames=[OE, {"msg": "order_event", "set": {"filled_quantity": -1}}])
case(E, "order_event_truncated", dl("malformed"), frames=[OE, {"msg": "order_event", "cut": 1}])
case(E, "order_event_missing_field", dl("missing_field"), frames=[OE, {"msg": "order_event", "drop": 1}])
case(E, "oversized_frame", {"counter": "connections_dropped"},
     frames=["text:ACK.strategy.0", {"zeros": 64 * 1024 + 1}])

# ---- executor: signal PULL (the test plays the strategy) --------------------
E = "executor_signals"
case(E, "empty_frame", dl("malformed"), "hex:")
case(E, "two_frames", dl("bad_frames"), frames=[signal(), signal()])
case(E, "not_msgpack", dl("malformed"), "file:not_msgpack.bin")
case(E, "str32_bomb", dl("malformed"), "file:str32_bomb.bin")
case(E, "map32_bomb", dl("malformed"), "file:map32_bomb.bin")
case(E, "bin32_bomb", dl("malformed"), "file:bin32_bomb.bin")
case(E, "envelope_array32_bomb", dl("malformed"), "file:envelope_array32_bomb.bin")
case(E, "deep_maps", dl("malformed"), "file:deep_maps.bin")
case(E, "truncated", dl("malformed"), "file:signal_truncated.bin")
case(E, "not_an_array", dl("not_an_array"), "file:not_an_array.bin")
case(E, "unknown_type", dl("unknown_type"), "file:unknown_type.bin")
case(E, "unknown_version", dl("unknown_version"), "file:signal_version_0.bin")
case(E, "order_request_instead", dl("wrong_message"), order())
case(E, "missing_causation_ts", dl("missing_field"), signal(drop=1))
case(E, "extra_fields_accepted", {"served": True}, signal(extra=["v2 field", 3.5, {"k": "v"}]))
case(E, "quantity_is_string", dl("wrong_type"), signal(set={"quantity": "1000"}))
case(E, "instance_is_negative", dl("out_of_range"), signal(set={"instance": -1}))
case(E, "quantity_zero", dl("out_of_range"), signal(set={"quantity": 0}))
case(E, "quantity_negative", dl("out_of_range"), signal(set={"quantity": -1000}))
case(E, "quantity_nan", dl("out_of_range"), signal(set={"quantity": "$nan"}))
case(E, "quantity_inf", dl("out_of_range"), signal(set={"quantity": "$inf"}))
case(E, "quantity_absurd", dl("risk_rejected"), signal(set={"quantity": 1e300}), ack="REJECTED")
case(E, "trigger_price_zero", dl("out_of_range"), signal(set={"trigger_price": 0}))
case(E, "trigger_price_nan", dl("out_of_range"), signal(set={"trigger_price": "$nan"}))
case(E, "confidence_above_one", dl("out_of_range"), signal(set={"confidence": 2}))
case(E, "action_unknown", dl("out_of_range"), signal(set={"action": 3}))
case(E, "unknown_instrument", dl("unknown_instrument"), signal(set={"instrument": "XAUXAG"}), ack="REJECTED")
case(E, "instrument_33_chars", dl("out_of_range"), signal(set={"instrument": "$long:33"}))
case(E, "signal_id_too_long", dl("out_of_range"), signal(set={"signal_id": "$long:129"}))
case(E, "expires_before_created", dl("out_of_range"),
     signal(set={"created_ts_ns": "$now", "expires_ts_ns": "$now-60s"}))
case(E, "expired", dl("expired"), signal(set={"created_ts_ns": "$now-60s", "expires_ts_ns": "$now-50s"}),
     ack="REJECTED")
case(E, "created_in_future", dl("future_timestamp"),
     signal(set={"created_ts_ns": "$now+60s", "expires_ts_ns": "$now+70s"}), ack="REJECTED")
case(E, "duplicate_signal_id", {"ack": "DUPLICATE"}, signal(set={"signal_id": "$seen_id"}))
# orders with a life: a signal's terms must be coherent (proto::check_terms);
# its sender can be named, so the refusal is acked as well
case(E, "limit_without_price", dl("out_of_range"), signal(set={"order_type": 1, "limit_price": 0}), ack="REJECTED")
case(E, "limit_price_negative", dl("out_of_range"), signal(set={**LIMIT_GTC, "limit_price": -1.0}),
     ack="REJECTED")
case(E, "limit_price_nan", dl("out_of_range"), signal(set={**LIMIT_GTC, "limit_price": "$nan"}), ack="REJECTED")
case(E, "market_with_limit_price", dl("out_of_range"), signal(set={"limit_price": 1.08}), ack="REJECTED")
case(E, "market_gtc", dl("out_of_range"), signal(set={"time_in_force": 1}), ack="REJECTED")
case(E, "gtd_without_good_till", dl("out_of_range"), signal(set={**LIMIT_GTC, "time_in_force": 2}),
     ack="REJECTED")
case(E, "good_till_on_gtc", dl("out_of_range"), signal(set={**LIMIT_GTC, "good_till_ns": "$now+60s"}),
     ack="REJECTED")
case(E, "order_type_unknown", dl("out_of_range"), signal(set={"order_type": 7}), ack="REJECTED")
case(E, "time_in_force_is_string", dl("wrong_type"), signal(set={**LIMIT_GTC, "time_in_force": "GTC"}),
     ack="REJECTED")
# a limit GTC order rests (no market data reaches the simulated broker here):
# the cancels below have an order to cancel
case(E, "limit_gtc_rests", {"served": True}, signal(set=LIMIT_GTC, extra=["v2 field"]))
# CancelRequests on the same socket: one that cannot be read is dead-lettered
# with the decode error's code (no ack: no sender to trust)
case(E, "cancel_signal_id_empty", dl("out_of_range"), cancel(set={"signal_id": ""}))
case(E, "cancel_strategy_empty", dl("out_of_range"), cancel(set={"strategy": ""}))
case(E, "cancel_signal_id_too_long", dl("out_of_range"), cancel(set={"signal_id": "$long:129"}))
case(E, "cancel_signal_id_is_integer", dl("wrong_type"), cancel(set={"signal_id": 5}, raw=["signal_id"]))
case(E, "cancel_instance_is_string", dl("wrong_type"), cancel(set={"instance": "0"}))
case(E, "cancel_instance_negative", dl("out_of_range"), cancel(set={"instance": -1}))
case(E, "cancel_reason_is_nil", dl("wrong_type"), cancel(set={"reason": None}))
case(E, "cancel_reason_1025_chars", dl("out_of_range"), cancel(set={"reason": "$long:1025"}))
case(E, "cancel_created_ts_is_float", dl("wrong_type"), cancel(set={"created_ts_ns": 1.5}, raw=["created_ts_ns"]))
case(E, "cancel_missing_created_ts", dl("missing_field"), cancel(drop=1))
case(E, "cancel_missing_all_fields", dl("missing_field"), cancel(drop=5))
case(E, "cancel_truncated", dl("malformed"), "file:cancel_truncated.bin")
case(E, "cancel_truncated_live", dl("malformed"), cancel(cut=1))
case(E, "cancel_unknown_version", dl("unknown_version"), "file:cancel_version_2.bin")
case(E, "cancel_two_frames", dl("bad_frames"), frames=[cancel(), cancel()])
case(E, "order_cancel_instead", dl("wrong_message"), order_cancel())
case(E, "execution_report_instead", dl("wrong_message"), report(set={"seq": 1}))
# a valid CancelRequest is acked (cancel = true); one the executor cannot
# honour is refused, and dead-lettered when it names no order of the sender
case(E, "cancel_unknown_signal", {"dead_letter": "cancel_refused", "cancel_ack": "REJECTED",
                                  "ack_reason": "unknown_order"}, cancel())
case(E, "cancel_not_owner", {"dead_letter": "cancel_refused", "cancel_ack": "REJECTED", "ack_reason": "not_owner"},
     cancel(set={"signal_id": "$resting_id", "strategy": "someone_else"}))
case(E, "cancel_extra_fields_accepted", {"cancel_ack": "ACCEPTED"},
     cancel(set={"signal_id": "$resting_id"}, extra=["v2 field", {"k": 1}]))
case(E, "cancel_repeated", {"cancel_ack": "DUPLICATE"}, cancel(set={"signal_id": "$resting_id"}))
case(E, "cancel_order_final", {"cancel_ack": "REJECTED", "ack_reason": "order_final"},
     cancel(set={"signal_id": "$seen_id"}))
case(E, "oversized_frame", {"counter": "connections_dropped"}, frames=[{"zeros": 64 * 1024 + 1}])

# ---- executor: report subscription (the test plays dll_gateway) -------------
# A bad report takes no seq ($next_report_seq is not used up): had it been
# applied, the next good report would be a duplicate and not served.
E = "executor_reports"
case(E, "one_frame", dl("bad_frames"), frames=["text:REPORT.EURUSD"])
case(E, "three_frames", dl("bad_frames"), frames=["text:REPORT.EURUSD", report(), "hex:"])
case(E, "empty_payload", dl("malformed"), "hex:")
case(E, "not_msgpack", dl("malformed"), "file:not_msgpack.bin")
case(E, "http_request", dl("malformed"), "file:text.bin")
case(E, "array32_bomb", dl("malformed"), "file:array32_bomb.bin")
case(E, "str32_bomb", dl("malformed"), "file:str32_bomb.bin")
case(E, "envelope_map32_bomb", dl("malformed"), "file:envelope_map32_bomb.bin")
case(E, "deep_arrays", dl("malformed"), "file:deep_arrays.bin")
case(E, "deep_maps", dl("malformed"), "file:deep_maps.bin")
case(E, "truncated", dl("malformed"), "file:report_truncated.bin")
case(E, "truncated_live", dl("malformed"), report(cut=1))
case(E, "trailing_byte", dl("malformed"), "file:report_trailing_byte.bin")
case(E, "not_an_array", dl("not_an_array"), "file:not_an_array.bin")
case(E, "unknown_type", dl("unknown_type"), "file:unknown_type.bin")
case(E, "unknown_version", dl("unknown_version"), "file:report_version_2.bin")
case(E, "tick_on_report_topic", dl("wrong_message"), tick())
case(E, "report_batch_on_report_topic", dl("wrong_message"), {"msg": "report_batch"})
case(E, "missing_quote_ts", dl("missing_field"), report(drop=1))
case(E, "missing_all_fields", dl("missing_field"), report(drop=17))
case(E, "seq_is_string", dl("wrong_type"), report(set={"seq": "7"}))
case(E, "seq_is_float", dl("wrong_type"), report(set={"seq": 7.5}, raw=["seq"]))
case(E, "filled_quantity_is_string", dl("wrong_type"), report(set={"filled_quantity": "0"}))
case(E, "stream_is_nil", dl("wrong_type"), report(set={"stream": None}))
case(E, "seq_negative", dl("out_of_range"), report(set={"seq": -1}))
case(E, "quantity_negative", dl("out_of_range"), report(set={"quantity": -1000}))
case(E, "last_quantity_negative", dl("out_of_range"), report(set={"last_quantity": -1}))
case(E, "filled_quantity_nan", dl("out_of_range"), report(set={"filled_quantity": "$nan"}))
case(E, "avg_price_inf", dl("out_of_range"), report(set={"avg_price": "$inf"}))
case(E, "status_unknown", dl("out_of_range"), report(set={"status": 9}))
case(E, "status_zero", dl("out_of_range"), report(set={"status": 0}))
case(E, "side_unknown", dl("out_of_range"), report(set={"side": 3}))
case(E, "client_order_id_empty", dl("out_of_range"), report(set={"client_order_id": ""}))
case(E, "instrument_empty", dl("out_of_range"), report(set={"instrument": ""}))
case(E, "stream_too_long", dl("out_of_range"), report(set={"stream": "$long:129"}))
case(E, "order_id_too_long", dl("out_of_range"), report(set={"order_id": "$long:129"}))
case(E, "reason_1025_chars", dl("out_of_range"), report(set={"reason": "$long:1025"}))
case(E, "instrument_with_dot", dl("out_of_range"), report(set={"instrument": "EUR.USD"}))
case(E, "extra_fields_accepted", {"served": True},
     report(set={"seq": "$report_seq"}, extra=["v2 field", 2.5, {"k": [1]}]))
# valid, but nothing to apply: counted, not dead-lettered
case(E, "unknown_order", {"counter": "reports_unknown_order"},
     report(set={"seq": "$report_seq", "client_order_id": "$uid"}), good=True)
case(E, "duplicate_seq", {"counter": "reports_duplicate"}, report(set={"seq": "$last_report_seq"}))
# ahead of the stream: the gap is fetched from dll_gateway, which does not
# have it; not applied, and the cursor does not jump (or every genuine report
# after it would be taken for a duplicate)
case(E, "seq_far_ahead", {"counter": "report_gaps"}, report(set={"seq": "$next_report_seq+1000"}))
# valid on the wire, refused by the order state machine (the order stays
# ACCEPTED): counted, recorded, not dead-lettered
case(E, "status_new", {"counter": "invalid_transitions"}, report(set={"seq": "$report_seq", "status": 1}),
     good=True)
case(E, "accepted_with_fill", {"counter": "invalid_transitions"},
     report(set={"seq": "$report_seq", "filled_quantity": 10, "avg_price": 1.0}), good=True)
case(E, "partially_filled_without_fill", {"counter": "invalid_transitions"},
     report(set={"seq": "$report_seq", "status": 3}), good=True)
case(E, "filled_above_quantity", {"counter": "invalid_transitions"},
     report(set={"seq": "$report_seq", "status": 3, "filled_quantity": 2000, "last_quantity": 2000,
                 "last_price": 1.0, "avg_price": 1.0}), good=True)
case(E, "seq_zero", {"counter": "reports_duplicate"}, report(set={"seq": 0}))

# ---- dll_gateway: order REP (the test plays the executor) -------------------
E = "dll_gateway_orders"
case(E, "empty_frame", dl("malformed"), "hex:")
case(E, "two_frames", dl("bad_frames"), frames=[order(), order()])
case(E, "array32_bomb", dl("malformed"), "file:array32_bomb.bin")
case(E, "str32_bomb", dl("malformed"), "file:str32_bomb.bin")
case(E, "envelope_str32_bomb", dl("malformed"), "file:envelope_str32_bomb.bin")
case(E, "deep_arrays", dl("malformed"), "file:deep_arrays.bin")
case(E, "truncated", dl("malformed"), "file:order_truncated.bin")
case(E, "not_an_array", dl("not_an_array"), "file:bare_integer.bin")
case(E, "unknown_type", dl("unknown_type"), "file:unknown_type.bin")
case(E, "unknown_version", dl("unknown_version"), "file:order_version_99.bin")
case(E, "signal_instead", dl("wrong_message"), signal())
case(E, "missing_sent_ts", dl("missing_field"), order(drop=1))
case(E, "query_missing_field", dl("missing_field"), {"msg": "order_query", "drop": 1})
case(E, "extra_fields_accepted", {"served": True}, order(extra=[{"tif": "IOC"}, 1]))
case(E, "side_is_string", dl("wrong_type"), order(set={"side": "BUY"}))
case(E, "side_unknown", dl("out_of_range"), order(set={"side": 0}))
case(E, "quantity_zero", dl("out_of_range"), order(set={"quantity": 0}))
case(E, "quantity_negative", dl("out_of_range"), order(set={"quantity": -5}))
case(E, "quantity_nan", dl("out_of_range"), order(set={"quantity": "$nan"}))
case(E, "quantity_absurd", dl("risk_rejected"), order(set={"quantity": 1e300}))
case(E, "price_hint_inf", dl("out_of_range"), order(set={"price_hint": "$inf"}))
case(E, "price_hint_negative", dl("out_of_range"), order(set={"price_hint": -1}))
case(E, "unknown_instrument", dl("unknown_instrument"), order(set={"instrument": "XAUXAG"}))
case(E, "instrument_33_chars", dl("out_of_range"), order(set={"instrument": "$long:33"}))
case(E, "client_order_id_too_long", dl("out_of_range"), order(set={"client_order_id": "$long:129"}))
case(E, "client_order_id_empty", dl("out_of_range"), order(set={"client_order_id": ""}))
case(E, "duplicate_client_order_id", {"reply": "duplicate"}, order(set={"client_order_id": "$seen_id"}))
# orders with a life: incoherent terms
case(E, "limit_without_price", dl("out_of_range"), order(set={"order_type": 1, "limit_price": 0}))
case(E, "limit_price_inf", dl("out_of_range"), order(set={**LIMIT_GTC, "limit_price": "$inf"}))
case(E, "market_with_limit_price", dl("out_of_range"), order(set={"limit_price": 1.08}))
case(E, "market_gtc", dl("out_of_range"), order(set={"time_in_force": 1}))
case(E, "gtd_without_good_till", dl("out_of_range"), order(set={**LIMIT_GTC, "time_in_force": 2}))
case(E, "good_till_on_ioc", dl("out_of_range"), order(set={"order_type": 1, "limit_price": 1.0,
                                                            "good_till_ns": "$now+60s"}))
case(E, "order_type_unknown", dl("out_of_range"), order(set={"order_type": 2}))
case(E, "time_in_force_is_float", dl("wrong_type"), order(set={**LIMIT_GTC, "time_in_force": 1.0},
                                                           raw=["time_in_force"]))
case(E, "limit_gtc_rests", {"served": True}, order(set=LIMIT_GTC, extra=["v2 field"]))
# OrderCancel: one that cannot be read is answered REJECTED and dead-lettered
case(E, "cancel_truncated", dl("malformed"), "file:order_cancel_truncated.bin")
case(E, "cancel_truncated_live", dl("malformed"), order_cancel(cut=1))
case(E, "cancel_id_is_integer", dl("wrong_type"), order_cancel(set={"client_order_id": 5}, raw=["client_order_id"]))
case(E, "cancel_id_empty", dl("out_of_range"), order_cancel(set={"client_order_id": ""}))
case(E, "cancel_id_too_long", dl("out_of_range"), order_cancel(set={"client_order_id": "$long:129"}))
case(E, "cancel_sent_ts_is_string", dl("wrong_type"), order_cancel(set={"sent_ts_ns": "now"}))
case(E, "cancel_missing_sent_ts", dl("missing_field"), order_cancel(drop=1))
case(E, "cancel_reason_1025_chars", dl("out_of_range"), order_cancel(set={"reason": "$long:1025"}))
case(E, "cancel_two_frames", dl("bad_frames"), frames=[order_cancel(), order_cancel()])
# a valid one is answered with the order's state, nothing dead-lettered
case(E, "cancel_unknown_order", {"reply": "cancel_unknown"}, order_cancel())
case(E, "cancel_extra_fields_accepted", {"reply": "cancel_unknown"}, order_cancel(extra=[{"v": 2}, 1]))
case(E, "cancel_resting_order", {"reply": "cancel_done"}, order_cancel(set={"client_order_id": "$resting_id"}))
case(E, "cancel_repeated", {"reply": "cancel_duplicate"}, order_cancel(set={"client_order_id": "$resting_id"}))
case(E, "cancel_final_order", {"reply": "cancel_final"}, order_cancel(set={"client_order_id": "$seen_id"}))
# ReportQuery and OpenOrdersQuery
case(E, "report_query_truncated", dl("malformed"), "file:report_query_truncated.bin")
case(E, "report_query_from_seq_is_string", dl("wrong_type"), report_query(set={"from_seq": "1"}))
case(E, "report_query_from_seq_negative", dl("out_of_range"), report_query(set={"from_seq": -1}))
case(E, "report_query_max_count_is_float", dl("wrong_type"), report_query(set={"max_count": 10.5},
                                                                          raw=["max_count"]))
case(E, "report_query_max_count_above_uint32", dl("out_of_range"), report_query(set={"max_count": 2**32}))
case(E, "report_query_missing_field", dl("missing_field"), report_query(drop=1))
case(E, "report_query_max_count_huge", {"reply": "report_batch"}, report_query(set={"max_count": 2**32 - 1}))
case(E, "report_query_from_seq_zero", {"reply": "report_batch"}, report_query(set={"from_seq": 0}))
case(E, "report_query_from_seq_max", {"reply": "report_batch"}, report_query(set={"from_seq": 2**64 - 1}))
case(E, "report_query_extra_fields_accepted", {"reply": "report_batch"}, report_query(extra=[1, "x"]))
case(E, "open_orders_truncated", dl("malformed"), "file:open_orders_query_truncated.bin")
case(E, "open_orders_offset_is_string", dl("wrong_type"), open_orders_query(set={"offset": "0"}))
case(E, "open_orders_offset_negative", dl("out_of_range"), open_orders_query(set={"offset": -1}))
case(E, "open_orders_missing_field", dl("missing_field"), open_orders_query(drop=1))
case(E, "open_orders_offset_huge", {"reply": "report_batch"}, open_orders_query(set={"offset": 2**32 - 1}))
case(E, "open_orders_extra_fields_accepted", {"reply": "report_batch"}, open_orders_query(extra=[None]))
# messages of the new kinds that are not requests
case(E, "execution_report_instead", dl("wrong_message"), report(set={"seq": 1}))
case(E, "cancel_request_instead", dl("wrong_message"), cancel())
case(E, "oversized_frame", {"counter": "connections_dropped"}, frames=[{"zeros": 64 * 1024 + 1}])

# ---- dll_gateway: tick subscription (market data for the simulated broker) --
E = "dll_gateway_ticks"
case(E, "one_frame", dl("bad_frames"), frames=["text:TICK.EURUSD"])
case(E, "empty_payload", dl("malformed"), "hex:")
case(E, "map32_bomb", dl("malformed"), "file:map32_bomb.bin")
case(E, "deep_arrays", dl("malformed"), "file:deep_arrays.bin")
case(E, "unknown_version", dl("unknown_version"), "file:tick_version_2.bin")
case(E, "crossed_book", dl("out_of_range"), tick(set={"bid": 1.0900, "ask": 1.0800}))
case(E, "bid_nan", dl("out_of_range"), tick(set={"bid": "$nan"}))
case(E, "other_instrument_on_topic", dl("topic_mismatch"), tick(set={"instrument": "GBPUSD"}))
case(E, "unknown_instrument", dl("unknown_instrument"),
     frames=["text:TICK.XAUXAG", tick(set={"instrument": "XAUXAG"})])
case(E, "extra_fields_accepted", {"served": True}, tick(extra=[1, 2, 3]))
case(E, "oversized_frame", {"counter": "connections_dropped"},
     frames=["text:TICK.EURUSD", {"zeros": 64 * 1024 + 1}])

# ---- dead-letter sink: PULL (the test plays any program) --------------------
# ---- executor: control socket (the test plays tpctl, a REQ) ------------------
# Every request is answered, a bad one with ok = false and the decode error
# (the operator's REQ is never left waiting), and dead-lettered; none changes
# the trading state.
E = "executor_control"
case(E, "empty_frame", dl("malformed"), "hex:")
case(E, "two_frames", dl("bad_frames"), frames=[control(), control()])
case(E, "not_msgpack", dl("malformed"), "file:not_msgpack.bin")
case(E, "http_request", dl("malformed"), "file:text.bin")
case(E, "str32_bomb", dl("malformed"), "file:str32_bomb.bin")
case(E, "map32_bomb", dl("malformed"), "file:map32_bomb.bin")
case(E, "envelope_array32_bomb", dl("malformed"), "file:envelope_array32_bomb.bin")
case(E, "deep_arrays", dl("malformed"), "file:deep_arrays.bin")
case(E, "truncated_live", dl("malformed"), control(cut=1))
case(E, "not_an_array", dl("not_an_array"), "file:not_an_array.bin")
case(E, "unknown_type", dl("unknown_type"), "file:unknown_type.bin")
case(E, "unknown_version", dl("unknown_version"), control(version=2))
case(E, "signal_instead", dl("wrong_message"), signal())
case(E, "control_reply_instead", dl("wrong_message"),
     {"msg": "control_reply", "set": {"state": 3, "cause": "forged"}})
case(E, "missing_sent_ts", dl("missing_field"), control(drop=1))
case(E, "command_is_string", dl("wrong_type"), control(set={"command": "HALT"}))
case(E, "command_is_nil", dl("wrong_type"), control(set={"command": None}, raw=["command"]))
case(E, "command_zero", dl("out_of_range"), control(set={"command": 0}))
case(E, "command_unknown", dl("out_of_range"), control(set={"command": 6}))
case(E, "command_negative", dl("out_of_range"), control(set={"command": -2}))
case(E, "reason_too_long", dl("out_of_range"), control(set={"command": 2, "reason": "$long:1025"}))
case(E, "sent_by_too_long", dl("out_of_range"), control(set={"command": 2, "sent_by": "$long:129"}))
case(E, "extra_fields_accepted", {"served": True}, control(extra=["v2 field", 3.5, {"k": "v"}]))

E = "dead_letter_sink"
case(E, "empty_frame", dl("malformed"), "hex:")
case(E, "two_frames", dl("bad_frames"), frames=[{"msg": "dead_letter"}, {"msg": "dead_letter"}])
case(E, "bin32_bomb", dl("malformed"), "file:bin32_bomb.bin")
case(E, "envelope_bin32_bomb", dl("malformed"), "file:envelope_bin32_bomb.bin")
case(E, "deep_maps", dl("malformed"), "file:deep_maps.bin")
case(E, "truncated", dl("malformed"), "file:dead_letter_truncated.bin")
case(E, "unknown_version", dl("unknown_version"), "file:dead_letter_version_2.bin")
case(E, "tick_instead", dl("wrong_message"), tick())
case(E, "missing_original", dl("missing_field"), {"msg": "dead_letter", "drop": 1})
case(E, "source_empty", dl("out_of_range"), {"msg": "dead_letter", "set": {"source": ""}})
case(E, "key_too_long", dl("out_of_range"), {"msg": "dead_letter", "set": {"key": "$long:129"}})
case(E, "key_not_a_string", dl("wrong_type"), {"msg": "dead_letter", "set": {"key": 7}})
case(E, "keyed_accepted", {"served": True}, {"msg": "dead_letter", "set": {"key": "$uid"}})
case(E, "extra_fields_accepted", {"served": True}, {"msg": "dead_letter", "extra": ["more", 1]})
case(E, "large_but_legal", {"served": True},
     {"msg": "dead_letter", "set": {"original": {"bin_zeros": 100 * 1024}}, "raw": ["original"]})
case(E, "oversized_frame", {"counter": "connections_dropped"}, frames=[{"zeros": 128 * 1024 + 1}])


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for name, data in FILES.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)
    names = set()
    for c in CASES:
        key = (c["entry"], c["name"])
        assert key not in names, key
        names.add(key)
        for fr in c.get("frames", [c.get("payload")]):
            if isinstance(fr, str) and fr.startswith("file:"):
                assert fr[5:] in FILES, fr
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump({"comment": "generated by make_corpus.py; see its docstring for the format",
                   "cases": CASES}, f, indent=1)
        f.write("\n")
    print(f"{len(FILES)} files, {len(CASES)} cases")


if __name__ == "__main__":
    main()
