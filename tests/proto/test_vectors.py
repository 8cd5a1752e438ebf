"""C++ <-> Python wire compatibility: the C++ codec's bytes decoded by a
Python peer written from docs/PROTOCOL.md, and the Python peer's bytes
(with an extra appended field, as a newer writer would send) decoded by C++;
and what both must refuse. The expected values are written twice, here and
in vectors.cpp, on purpose: each side states what it expects."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import tp_proto  # noqa: E402

VECTORS = os.environ["TP_PROTO_VECTORS"]

# A partial fill matched on the tick vector, then the rest expiring.
REPORT_FILL = dict(stream="dg.1700000000000", seq=41, client_order_id="C-trend.1.1700000000000.5",
                   order_id="SIM-000042", instrument="EURUSD", side=1, status=3, quantity=1000.0,
                   last_quantity=250.5, last_price=1.08512, filled_quantity=750.5,
                   avg_price=1.085105, reason="", broker_ts_ns=1700000000000000900,
                   ts_ns=1700000000000000950, quote_seq=42, quote_ts_ns=1700000000123999999)
REPORT_EXPIRY = dict(REPORT_FILL, seq=42, status=8, last_quantity=0.0, last_price=0.0,
                     reason="good till time passed", broker_ts_ns=1700000060000000000,
                     ts_ns=1700000060000000050, quote_seq=0, quote_ts_ns=0)

EXPECTED = {
    "tick": dict(instrument="EURUSD", bid=1.08501, ask=1.08512, bid_volume=1500000.0,
                 ask_volume=2.5, source_ts_ns=1700000000123456789, seq=42,
                 gateway_ts_ns=1700000000123999999),
    "heartbeat": dict(source="gateway", seq=7, ts_ns=1700000000000000001, ticks_sent=123456),
    "signal": dict(signal_id="sma_crossover.1.1700000000000.17", strategy="sma_crossover",
                   instance=1, instrument="GBPUSD", action=2, quantity=1000.0,
                   trigger_price=1.26543, confidence=0.625, created_ts_ns=1700000000000000000,
                   expires_ts_ns=1700000005000000000, causation_seq=99,
                   causation_ts_ns=1699999999999999000, order_type=1, limit_price=1.2655,
                   time_in_force=2, good_till_ns=1700000060000000000),
    "order_request": dict(client_order_id="C-sma_crossover.1.1700000000000.17",
                          signal_id="sma_crossover.1.1700000000000.17", instrument="GBPUSD",
                          side=2, quantity=1000.0, price_hint=1.26543,
                          sent_ts_ns=1700000000000000100, expires_ts_ns=1700000005000000000,
                          order_type=1, limit_price=1.2655, time_in_force=1, good_till_ns=0),
    "order_query": dict(client_order_id="C-x.0.1.2", sent_ts_ns=-1),
    "order_reply": dict(client_order_id="C-x.0.1.2", order_id="SIM-000017", status=3,
                        filled_quantity=250.5, fill_price=151.234,
                        reason="remainder canceled (IOC)", duplicate=True,
                        broker_ts_ns=1700000000000000200),
    "order_event": dict(order_id="SIM-000017", client_order_id="C-x.0.1.2", signal_id="x.0.1.2",
                        instrument="USDJPY", side=1, status=4, quantity=1000.0,
                        filled_quantity=1000.0, fill_price=151.234, reason="",
                        created_ts_ns=1, event_ts_ns=2, causation_ts_ns=3),
    "signal_ack": dict(signal_id="x.0.1.2", status=3, reason="expired", ts_ns=1700000000000000300,
                       cancel=False),
    # A letter its sender may send again (the executor's refusal of a signal): keyed.
    "dead_letter": dict(source="executor", reason="trading_halted",
                        detail="signal x.0.1.2: trading halted", ts_ns=5,
                        original=b"\x00\xc1\xff", key="signal/x.0.1.2"),
    "position_query": dict(instrument="USDJPY", sent_ts_ns=1700000000000000400),
    "position_reply": dict(instrument="USDJPY", known=True, quantity=-2500.5, reason="",
                           ts_ns=1700000000000000500),
    "strategy_position": dict(strategy="trend", instrument="EURUSD", quantity=-1500.25,
                              ts_ns=1700000000000000600),
    "cancel_request": dict(signal_id="trend.1.1700000000000.5", strategy="trend", instance=1,
                           reason="price moved away", created_ts_ns=1700000000000000700),
    "order_cancel": dict(client_order_id="C-trend.1.1700000000000.5", reason="price moved away",
                         sent_ts_ns=1700000000000000800),
    "execution_report": REPORT_FILL,
    "report_query": dict(from_seq=41, max_count=256, sent_ts_ns=-7),
    "open_orders_query": dict(offset=64, sent_ts_ns=1700000000000001000),
    "report_batch": dict(stream="dg.1700000000000", last_seq=42, count=2, complete=False,
                         reports=tp_proto.pack_reports([REPORT_FILL, REPORT_EXPIRY])[1], reason="",
                         ts_ns=1700000000000001100),
    # A USD account with a short USDJPY position (yen PnL at 1 / the mid), in REDUCING.
    "portfolio_event": dict(account_currency="USD", equity=1000250.0, realized_pnl=331.25,
                            unrealized_pnl=-81.25, daily_pnl=-1250.75,
                            day_start_ns=1699920000000000000, complete=False, state=2,
                            open_orders=70000, ts_ns=1700000000000001200),
    "instrument_pnl": dict(instrument="USDJPY", quote_currency="JPY", position=-2500.0,
                           avg_price=151.234, mark_price=151.25, realized_pnl=12345.5,
                           unrealized_pnl=-40.0, rate_to_account=0.006611570247933884,
                           realized_account=81.62314049586777,
                           unrealized_account=-0.2644628099173554, ts_ns=1700000000000001200),
    "control_request": dict(command=4, reason="spread blew out", sent_by="tpctl:alice@host",
                            sent_ts_ns=1700000000000001300),
    "control_reply": dict(ok=True, state=2, cause="FLATTEN by tpctl:alice@host: spread blew out",
                          since_ns=1700000000000001350, flatten_pending=True, open_orders=3,
                          detail="", ts_ns=1700000000000001400),
}
# More vectors: vector name -> (message, fields).
VARIANTS = {
    "signal_ack_cancel": ("signal_ack", dict(signal_id="x.0.1.2", status=3, reason="order_final",
                                             ts_ns=1700000000000000650, cancel=True)),
    # A command not applied: the state as it was, and why.
    "control_reply_refused": ("control_reply", dict(ok=False, state=3,
                                                    cause="open_orders_mismatch: C-x.0.1.2",
                                                    since_ns=-1, flatten_pending=False,
                                                    open_orders=0,
                                                    detail="not stored: disk I/O error",
                                                    ts_ns=1700000000000001500)),
    # A letter sent once (a strategy's malformed tick): no key.
    "dead_letter_without_key": ("dead_letter", dict(source="strategy:1", reason="malformed",
                                                    detail="truncated msgpack", ts_ns=5,
                                                    original=b"\x00\xc1\xff", key="")),
}


def required_only(name, fields):
    """A message's fields as a sender older than its optional fields has them."""
    return {f: v for f, v in fields.items() if f not in dict(tp_proto.OPTIONAL[name])}


# Vectors as an older sender writes them, without the optional fields (Python
# leaves them out; C++ writes the same message with their defaults): a signal
# without terms, which both sides read as market IOC, and a dead letter
# without a key, read as unkeyed. Vector name -> (message, fields).
OLDER_SENDERS = {
    "signal_without_terms": ("signal", required_only("signal", EXPECTED["signal"])),
    "dead_letter_without_key_field": ("dead_letter",
                                      required_only("dead_letter", EXPECTED["dead_letter"])),
}
# What C++ decodes (as vector name.bin) and compares with its expected value.
CHECKED = [*EXPECTED, *VARIANTS, *OLDER_SENDERS]
# What the C++ codec must refuse (Python encodes): name -> (message, changes
# to EXPECTED[message], the C++ decoder's answer).
REFUSALS = {
    "limit_without_price": ("signal", dict(limit_price=0.0),
                            "out_of_range: limit_price must be positive and finite for a LIMIT order"),
    "market_gtc": ("order_request", dict(order_type=0, limit_price=0.0, time_in_force=1),
                   "out_of_range: a MARKET order is IOC"),
    "gtd_without_good_till": ("signal", dict(good_till_ns=0),
                              "out_of_range: good_till_ns must be set for a GTD order"),
    "gtc_with_good_till": ("order_request", dict(good_till_ns=5),
                           "out_of_range: good_till_ns is for GTD orders only"),
    "order_status_9": ("execution_report", dict(status=9),
                       "out_of_range: status has unknown value 9"),
    "batch_count_mismatch": ("report_batch", dict(count=3),
                             "out_of_range: count is 3 but reports holds 2"),
    "trading_state_4": ("portfolio_event", dict(state=4), "out_of_range: state has unknown value 4"),
    "trading_state_0": ("control_reply", dict(state=0), "out_of_range: state has unknown value 0"),
    "control_command_6": ("control_request", dict(command=6),
                          "out_of_range: command has unknown value 6"),
    "pnl_not_finite": ("instrument_pnl", dict(realized_account=float("nan")),
                       "out_of_range: realized_account must be finite"),
    "equity_not_finite": ("portfolio_event", dict(equity=float("inf")),
                          "out_of_range: equity must be finite"),
    "complete_not_a_bool": ("portfolio_event", dict(complete=1),
                            "wrong_type: complete is not a boolean"),
}


def encode_required_only(name, fields):
    import msgpack
    tid = tp_proto.TYPE_IDS[name]
    values = [float(fields[f]) if f in tp_proto.FLOAT_FIELDS else fields[f]
              for f in tp_proto.MESSAGES[tid][1]]
    return msgpack.packb([tid, tp_proto.SCHEMA_VERSION, *values], use_bin_type=True)


class WireVectors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, payload):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(payload)

    def test_python_decodes_what_cpp_encodes(self):
        subprocess.run([VECTORS, "write", self.dir], check=True, timeout=30)
        vectors = {**{n: (n, f) for n, f in EXPECTED.items()}, **VARIANTS}
        # An older sender's message reads as the same with the optional defaults.
        for vector, (name, fields) in OLDER_SENDERS.items():
            vectors[vector] = (name, dict(fields, **dict(tp_proto.OPTIONAL[name])))
        for vector, (name, expected) in vectors.items():
            with open(os.path.join(self.dir, f"cpp_{vector}.bin"), "rb") as f:
                got_name, fields = tp_proto.decode(f.read())
            self.assertEqual(got_name, name)
            if name == "report_batch":
                # The reports' bytes are the C++ encoder's: compare what they hold.
                self.assertEqual(tp_proto.unpack_reports(fields), [REPORT_FILL, REPORT_EXPIRY])
                fields["reports"] = expected["reports"]
            self.assertEqual(fields, expected, vector)

    def test_cpp_decodes_what_python_encodes_with_an_extra_field(self):
        for name, fields in EXPECTED.items():
            self.write(f"py_{name}.bin",
                       tp_proto.encode(name, fields, extra=["a field from a newer writer", 7]))
        for vector, (name, fields) in VARIANTS.items():
            self.write(f"py_{vector}.bin", tp_proto.encode(name, fields, extra=[None]))
        for vector, (name, fields) in OLDER_SENDERS.items():
            old = encode_required_only(name, fields)
            self.write(f"py_{vector}.bin", old)
            self.assertEqual(tp_proto.decode(old),
                             (name, dict(fields, **dict(tp_proto.OPTIONAL[name]))))
        out = subprocess.run([VECTORS, "check", self.dir], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for vector in CHECKED:
            self.assertIn(f"{vector}: ok\n", out.stdout)

    def test_both_refuse_what_the_page_refuses(self):
        for vector, (name, changes, _) in REFUSALS.items():
            self.write(f"refuse_{vector}.bin", tp_proto.encode(name, dict(EXPECTED[name], **changes)))
        out = subprocess.run([VECTORS, "decode", self.dir], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = dict(line.split(": ", 1) for line in out.stdout.splitlines())
        for vector, (name, changes, answer) in REFUSALS.items():
            self.assertEqual(got[f"refuse_{vector}.bin"], answer, vector)
            # The Python peer refuses the same, for the same reason.
            fields = dict(EXPECTED[name], **changes)
            if "order_type" in changes or "limit_price" in changes or "good_till_ns" in changes:
                why = tp_proto.check_terms(**tp_proto.terms_of(fields))
                self.assertEqual(f"out_of_range: {why}", answer, vector)
            elif name == "report_batch":
                with self.assertRaises(tp_proto.ProtocolError):
                    tp_proto.unpack_reports(fields)
            else:
                with self.assertRaises(tp_proto.ProtocolError):
                    tp_proto.decode(tp_proto.encode(name, fields))
        # And the valid ones pass both: terms from a signal, a batch's reports.
        self.assertIsNone(tp_proto.check_terms(**tp_proto.terms_of(EXPECTED["signal"])))
        self.assertIsNone(tp_proto.check_terms())
        self.assertEqual(tp_proto.report_id(REPORT_EXPIRY), "dg.1700000000000:42")
        self.assertEqual(tp_proto.unpack_reports(EXPECTED["report_batch"]),
                         [REPORT_FILL, REPORT_EXPIRY])
        with self.assertRaises(tp_proto.ProtocolError):  # cut inside the second report
            tp_proto.unpack_reports(dict(EXPECTED["report_batch"],
                                         reports=EXPECTED["report_batch"]["reports"][:-2]))

    def test_cpp_refuses_an_unknown_version_from_python(self):
        import msgpack
        fields = EXPECTED["tick"]
        payload = msgpack.packb([1, 2, *[fields[f] for f in tp_proto.MESSAGES[1][1]]])
        with open(os.path.join(self.dir, "py_tick.bin"), "wb") as f:
            f.write(payload)
        out = subprocess.run([VECTORS, "check", self.dir], capture_output=True, text=True,
                             timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("tick: unknown_version", out.stderr)


if __name__ == "__main__":
    unittest.main()
