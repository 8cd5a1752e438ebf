"""End to end: the five programs as real processes on ipc:// endpoints.

Ticks become fills through gateway -> strategy x2 -> executor -> dll_gateway
(simulated broker); the test listens on the tick and order-event sockets like
any other subscriber and checks the books from what it saw."""

import os
import time
import unittest

import zmq

import pipeline
import tp_proto

SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]

EXTRA = """
[gateway]
rate = 2000
heartbeat_ms = 200

[strategy]
instances = 2
signal_ttl_ms = 10000

[strategy.sma_crossover]
fast = 2
slow = 5
"""


class PipelineEndToEnd(unittest.TestCase):
    def setUp(self):
        missing = pipeline.missing_binaries()
        self.assertFalse(missing, f"programs not built in TP_BIN_DIR={pipeline.BIN_DIR!r}: {missing}")
        self.d = pipeline.Deployment(EXTRA)
        self.ctx = zmq.Context()
        self.addCleanup(self.cleanup)
        self.ticks = {}  # (instrument, bid or ask) -> set of prices published
        self.first_tick_ns = None
        self.events = []
        self.acks = []

    def cleanup(self):
        self.ctx.destroy(linger=0)  # closes the test's sockets too
        self.d.close()

    def subscriber(self, endpoint, prefix=b""):
        s = self.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.SUBSCRIBE, prefix)
        s.connect(endpoint)
        return s

    def drain(self, *sockets, seconds=0.1):
        """Reads whatever arrives on the test's subscribers for `seconds`."""
        poller = zmq.Poller()
        for s in sockets:
            poller.register(s, zmq.POLLIN)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for s, _ in poller.poll(int(left * 1000) + 1):
                topic, payload = s.recv_multipart()
                name, m = tp_proto.decode(payload)
                if name == "tick":
                    self.ticks.setdefault((m["instrument"], "bid"), set()).add(m["bid"])
                    self.ticks.setdefault((m["instrument"], "ask"), set()).add(m["ask"])
                    if self.first_tick_ns is None:
                        self.first_tick_ns = m["gateway_ts_ns"]
                elif name == "order_event":
                    self.assertEqual(topic, f"ORDER.{m['instrument']}".encode())
                    self.events.append(m)
                elif name == "signal_ack":
                    self.acks.append((topic, m))

    def fills(self):
        return [e for e in self.events if e["status"] in (3, 4) and e["filled_quantity"] > 0]

    def checkable_fills(self):
        """Fills caused by ticks that the test's own subscription surely saw
        (its first few hundred milliseconds may miss some: PUB/SUB joins late)."""
        if self.first_tick_ns is None:
            return []
        return [e for e in self.fills() if e["causation_ts_ns"] > self.first_tick_ns + 200_000_000]

    def test_ticks_become_fills_and_bad_input_is_dead_lettered(self):
        d = self.d
        tick_sub = self.subscriber(d.endpoints["ticks"], b"TICK.")
        event_sub = self.subscriber(d.endpoints["order_events"])

        d.start("dead_letter")
        d.start("dll_gateway")
        d.start("executor")
        d.start("strategy:0", "--shard", "0", "--shards", "2")
        d.start("strategy:1", "--shard", "1", "--shards", "2")
        for name in ("dead_letter", "dll_gateway", "executor", "strategy-0", "strategy-1"):
            pipeline.wait_for(lambda: d.stats(name), what=f"{name} to start")
        d.start("gateway")

        def enough_fills():
            self.drain(tick_sub, event_sub)
            return len(self.checkable_fills()) >= 30
        pipeline.wait_for(enough_fills, timeout=40, what="30 fills")

        # A clean stop of the feed, then let the signals in flight settle.
        self.assertEqual(d.stop("gateway"), 0)

        def settled():
            before = len(self.events)
            self.drain(tick_sub, event_sub, seconds=0.5)
            pending = sum(d.stat(f"strategy-{k}", "signals_pending", 1) for k in (0, 1))
            return pending == 0 and len(self.events) == before
        pipeline.wait_for(settled, timeout=30, what="signals to settle")
        # Stats written after that moment show the final counts.
        settled_ns = time.time_ns()

        def stats_rewritten():
            self.drain(tick_sub, event_sub, seconds=0.05)
            return all(d.stats(n, after_ns=settled_ns)
                       for n in ("strategy-0", "strategy-1", "executor", "dll_gateway"))
        pipeline.wait_for(stats_rewritten, timeout=10, what="stats files written after the signals settled")
        self.drain(tick_sub, event_sub, seconds=0.3)

        # Two instances, disjoint instrument sets covering the configuration.
        shards = [set(filter(None, d.stats(f"strategy-{k}")["instruments"].split(","))) for k in (0, 1)]
        self.assertFalse(shards[0] & shards[1])
        self.assertEqual(shards[0] | shards[1], set(SYMBOLS))
        for k in (0, 1):
            self.assertGreater(d.stat(f"strategy-{k}", "ticks_received"), 0, f"strategy-{k} got no ticks")
        # Every signal emitted was acked once (none given up, none pending),
        # and every order came from one of them.
        emitted = sum(d.stat(f"strategy-{k}", "signals_emitted") for k in (0, 1))
        acked = sum(d.stat(f"strategy-{k}", "signals_acked") for k in (0, 1))
        given_up = sum(d.stat(f"strategy-{k}", "signals_given_up") for k in (0, 1))
        self.assertEqual((acked, given_up), (emitted, 0), "signals emitted = acked")
        ordered = {e["signal_id"] for e in self.events}
        self.assertGreaterEqual(emitted, len(ordered))

        # Every order event refers to a signal a strategy emitted (and acked).
        accepted = {m["signal_id"] for topic, m in self.acks if m["status"] == 1}
        journaled = self.journaled_signal_ids()
        for e in self.events:
            self.assertIn(e["signal_id"], journaled, "order for a signal no strategy journaled")
            self.assertIn(e["signal_id"], accepted)
            self.assertEqual(e["client_order_id"], "C-" + e["signal_id"])

        # Each fill price is a quote the gateway published (for the side).
        checked = 0
        for e in self.checkable_fills():
            side = "ask" if e["side"] == 1 else "bid"
            self.assertIn(e["fill_price"], self.ticks[(e["instrument"], side)],
                          f"fill {e} at a price never published")
            checked += 1
        self.assertGreaterEqual(checked, 30)

        # Positions equal the sum of fills.
        expected = {}
        for e in self.fills():
            sign = 1 if e["side"] == 1 else -1
            expected[e["instrument"]] = expected.get(e["instrument"], 0.0) + sign * e["filled_quantity"]
        positions = d.stats("executor")["positions"]
        for sym, qty in expected.items():
            self.assertAlmostEqual(positions[sym]["position"], qty, places=6, msg=sym)

        # Garbage into the executor: dead-lettered, and the executor still trades.
        push = self.ctx.socket(zmq.PUSH)
        push.connect(d.endpoints["signals"])
        push.send(b"\xc1 not a signal")
        pipeline.wait_for(lambda: any(dl["source"] == "executor" for dl in d.dead_letters()),
                          what="the executor's dead letter")
        now = time.time_ns()
        good = dict(signal_id="it.0.1.1", strategy="it", instance=0, instrument="EURUSD", action=1,
                    quantity=10, trigger_price=1.1, confidence=0.5, created_ts_ns=now,
                    expires_ts_ns=now + 10_000_000_000, causation_seq=1, causation_ts_ns=now)
        push.send(tp_proto.encode("signal", good))

        def good_one_filled():
            self.drain(event_sub)
            return any(e["signal_id"] == "it.0.1.1" and e["status"] == 4 for e in self.events)
        pipeline.wait_for(good_one_filled, what="the executor to fill a good signal after garbage")

        # Garbage ticks into a strategy. The gateway is stopped, so the test
        # binds the tick endpoint itself; the strategies reconnect to it.
        pub = self.ctx.socket(zmq.PUB)
        pub.bind(d.endpoints["ticks"])
        owner = 0 if "EURUSD" in shards[0] else 1
        received_before = d.stat(f"strategy-{owner}", "ticks_received")

        def strategy_dead_lettered():
            pub.send_multipart([b"TICK.EURUSD", b"\x93\x01\x01\xc1"])
            return any(dl["source"].startswith("strategy") for dl in d.dead_letters())
        pipeline.wait_for(strategy_dead_lettered, interval=0.1, what="a strategy's dead letter")
        seq = [10_000_000]

        def strategy_still_reads():
            seq[0] += 1
            pub.send_multipart([b"TICK.EURUSD", tp_proto.encode("tick", dict(
                instrument="EURUSD", bid=1.1, ask=1.1001, bid_volume=1, ask_volume=1,
                source_ts_ns=time.time_ns(), seq=seq[0], gateway_ts_ns=time.time_ns()))])
            return d.stat(f"strategy-{owner}", "ticks_received") > received_before
        pipeline.wait_for(strategy_still_reads, interval=0.1, what="the strategy to read good ticks again")

        # SIGTERM stops every program with exit code 0.
        for name in ("strategy:0", "strategy:1", "executor", "dll_gateway", "dead_letter"):
            self.assertEqual(d.stop(name), 0, f"{name} exit code; log:\n{d.log(name)[-2000:]}")

    def journaled_signal_ids(self):
        """signal_ids found in the strategies' journals (any format that
        stores the signal's encoded payload or its id as text)."""
        ids = set()
        for k in (0, 1):
            path = os.path.join(self.d.run_dir, f"strategy-{k}.journal")
            with open(path, "rb") as f:
                data = f.read()
            ids.update(e["signal_id"] for e in self.events
                       if e["signal_id"].encode() in data or e["signal_id"].encode().hex().encode() in data)
        return ids


if __name__ == "__main__":
    unittest.main()
