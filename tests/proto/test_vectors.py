"""C++ <-> Python wire compatibility: the C++ codec's bytes decoded by a
Python peer written from docs/PROTOCOL.md, and the Python peer's bytes
(with an extra appended field, as a newer writer would send) decoded by C++."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import tp_proto  # noqa: E402

VECTORS = os.environ["TP_PROTO_VECTORS"]

EXPECTED = {
    "tick": dict(instrument="EURUSD", bid=1.08501, ask=1.08512, bid_volume=1500000.0,
                 ask_volume=2.5, source_ts_ns=1700000000123456789, seq=42,
                 gateway_ts_ns=1700000000123999999),
    "heartbeat": dict(source="gateway", seq=7, ts_ns=1700000000000000001, ticks_sent=123456),
    "signal": dict(signal_id="sma_crossover.1.1700000000000.17", strategy="sma_crossover",
                   instance=1, instrument="GBPUSD", action=2, quantity=1000.0,
                   trigger_price=1.26543, confidence=0.625, created_ts_ns=1700000000000000000,
                   expires_ts_ns=1700000005000000000, causation_seq=99,
                   causation_ts_ns=1699999999999999000),
    "order_request": dict(client_order_id="C-sma_crossover.1.1700000000000.17",
                          signal_id="sma_crossover.1.1700000000000.17", instrument="GBPUSD",
                          side=2, quantity=1000.0, price_hint=1.26543,
                          sent_ts_ns=1700000000000000100, expires_ts_ns=1700000005000000000),
    "order_query": dict(client_order_id="C-x.0.1.2", sent_ts_ns=-1),
    "order_reply": dict(client_order_id="C-x.0.1.2", order_id="SIM-000017", status=3,
                        filled_quantity=250.5, fill_price=151.234,
                        reason="remainder canceled (IOC)", duplicate=True,
                        broker_ts_ns=1700000000000000200),
    "order_event": dict(order_id="SIM-000017", client_order_id="C-x.0.1.2", signal_id="x.0.1.2",
                        instrument="USDJPY", side=1, status=4, quantity=1000.0,
                        filled_quantity=1000.0, fill_price=151.234, reason="",
                        created_ts_ns=1, event_ts_ns=2, causation_ts_ns=3),
    "signal_ack": dict(signal_id="x.0.1.2", status=3, reason="expired", ts_ns=1700000000000000300),
    "dead_letter": dict(source="strategy:1", reason="malformed", detail="truncated msgpack",
                        ts_ns=5, original=b"\x00\xc1\xff"),
    "position_query": dict(instrument="USDJPY", sent_ts_ns=1700000000000000400),
    "position_reply": dict(instrument="USDJPY", known=True, quantity=-2500.5, reason="",
                           ts_ns=1700000000000000500),
    "strategy_position": dict(strategy="trend", instrument="EURUSD", quantity=-1500.25,
                              ts_ns=1700000000000000600),
}


class WireVectors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_python_decodes_what_cpp_encodes(self):
        subprocess.run([VECTORS, "write", self.dir], check=True, timeout=30)
        for name, expected in EXPECTED.items():
            with open(os.path.join(self.dir, f"cpp_{name}.bin"), "rb") as f:
                got_name, fields = tp_proto.decode(f.read())
            self.assertEqual(got_name, name)
            self.assertEqual(fields, expected, name)

    def test_cpp_decodes_what_python_encodes_with_an_extra_field(self):
        for name, fields in EXPECTED.items():
            payload = tp_proto.encode(name, fields, extra=["a field from a newer writer", 7])
            with open(os.path.join(self.dir, f"py_{name}.bin"), "wb") as f:
                f.write(payload)
        out = subprocess.run([VECTORS, "check", self.dir], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.count(": ok"), len(EXPECTED))

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
