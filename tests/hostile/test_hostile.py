"""Hostile input at every entry point, against the real programs.

Each case of cases.json (written by make_corpus.py) is injected by the test,
which plays every peer of the program under test on ipc:// endpoints in a
temporary directory; the real dead-letter sink records what the program
refuses. For every case:
  1. exactly the expected dead letter (source and reason) is written, or the
     expected stats counter moves when ZeroMQ itself cuts the frame;
  2. the program is still alive and still serves a good message;
  3. no order (or signal) resulted from the bad message.
A flood of 1000 bad messages of one kind must add only a few log lines.
"""

import base64
import itertools
import json
import math
import os
import sys
import time
import unittest

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import pipeline  # noqa: E402  (tests/integration/pipeline.py)
import tp_proto  # noqa: E402  (scripts/tp_proto.py, on the path through pipeline)

with open(os.path.join(HERE, "cases.json")) as _f:
    CASES = json.load(_f)["cases"]

WAIT = 5.0           # seconds for an expected outcome
SERVE_WAIT = 10.0    # seconds for a good message to be served (reconnects included)
FLOOD = 1000
MAX_FLOOD_LOG_LINES = 5

_uid = itertools.count(1)


def uid():
    return f"hostile.{os.getpid()}.{next(_uid)}"


def now_ns():
    return time.time_ns()


# ---- building frames from the manifest -------------------------------------

def template(name):
    """Good field values for each message type ($-values resolved later)."""
    return {
        "tick": {"instrument": "EURUSD", "bid": 1.0849, "ask": 1.0851, "bid_volume": 1e6,
                 "ask_volume": 1e6, "source_ts_ns": "$now", "seq": "$seq", "gateway_ts_ns": "$now"},
        "heartbeat": {"source": "gateway", "seq": 1, "ts_ns": "$now", "ticks_sent": 0},
        "signal": {"signal_id": "$uid", "strategy": "every_nth", "instance": 0, "instrument": "EURUSD",
                   "action": 1, "quantity": 1000.0, "trigger_price": 1.0851, "confidence": 0.5,
                   "created_ts_ns": "$now", "expires_ts_ns": "$now+5s", "causation_seq": 1,
                   "causation_ts_ns": "$now"},
        "order_request": {"client_order_id": "$uid", "signal_id": "$uid", "instrument": "EURUSD",
                          "side": 1, "quantity": 1000.0, "price_hint": 1.0851, "sent_ts_ns": "$now"},
        "order_query": {"client_order_id": "$uid", "sent_ts_ns": "$now"},
        "signal_ack": {"signal_id": "$uid", "status": 1, "reason": "", "ts_ns": "$now"},
        "dead_letter": {"source": "hostile", "reason": "test", "detail": "$uid", "ts_ns": "$now",
                        "original": b"x"},
    }[name]


class Built:
    """What the harness needs to know about a message it built."""

    def __init__(self):
        self.fields = {}


def build_message(spec, state):
    name = spec["msg"]
    tid = tp_proto.TYPE_IDS[name]
    names = tp_proto.MESSAGES[tid][1]
    fields = template(name)
    fields.update(spec.get("set", {}))
    raw = set(spec.get("raw", []))
    built = Built()
    values = []
    for f in names:
        v = fields[f]
        if isinstance(v, dict) and "bin_zeros" in v:
            v = bytes(v["bin_zeros"])
        elif isinstance(v, str) and v.startswith("$"):
            v = state.resolve(v, f)
        if f in tp_proto.FLOAT_FIELDS and f not in raw and isinstance(v, (int, float)) \
                and not isinstance(v, bool):
            v = float(v)
        built.fields[f] = v
        values.append(v)
    if spec.get("drop"):
        values = values[:-spec["drop"]]
    else:
        # Optional appended fields belong to the message: extras come after them.
        values += [fields.get(f, default) for f, default in tp_proto.OPTIONAL.get(name, ())]
    payload = msgpack.packb([spec.get("type", tid), spec.get("version", tp_proto.SCHEMA_VERSION),
                             *values, *spec.get("extra", [])], use_bin_type=True)
    if spec.get("cut"):
        payload = payload[:-spec["cut"]]
    built.payload = payload
    built.name = name
    return built


def build_frame(fr, state):
    """(bytes, Built or None) for one frame of the manifest."""
    if isinstance(fr, dict):
        if "zeros" in fr:
            return bytes(fr["zeros"]), None
        b = build_message(fr, state)
        return b.payload, b
    kind, _, rest = fr.partition(":")
    if kind == "text":
        return rest.encode(), None
    if kind == "hex":
        return bytes.fromhex(rest), None
    if kind == "file":
        with open(os.path.join(HERE, "corpus", rest), "rb") as f:
            return f.read(), None
    raise ValueError(f"bad frame spec {fr!r}")


class State:
    """$-values that depend on time and on what the program has seen."""

    def __init__(self):
        self.next_seq = 0
        self.last_good_seq = 0
        self.seen_ids = []

    def resolve(self, v, field):
        if v == "$nan":
            return math.nan
        if v == "$inf":
            return math.inf
        if v == "$-inf":
            return -math.inf
        if v.startswith("$now"):
            rest = v[4:]
            if not rest:
                return now_ns()
            sign = 1 if rest[0] == "+" else -1
            return now_ns() + sign * int(rest[1:-1]) * 1_000_000_000
        if v == "$seq":
            self.next_seq += 1
            return self.next_seq
        if v == "$last_seq":
            return self.last_good_seq
        if v == "$last_seq-1":
            return self.last_good_seq - 1
        if v == "$uid":
            return uid()
        if v == "$seen_id":
            return self.seen_ids[-1]
        if v.startswith("$long:"):
            return "A" * int(v[6:])
        raise ValueError(f"unknown $-value {v}")


# ---- the harness: one deployment, the test as every peer --------------------

class HostileBase(unittest.TestCase):
    """Subclasses set ENTRIES, PROGRAMS and implement the entry hooks."""

    ENTRIES = ()
    EXTRA_TOML = ""
    FLOOD_ENTRY = None

    @classmethod
    def setUpClass(cls):
        missing = [p for p in ("strategy", "executor", "dll_gateway", "dead_letter")
                   if not os.access(os.path.join(pipeline.BIN_DIR, p), os.X_OK)]
        if missing:
            raise AssertionError(f"programs not built in TP_BIN_DIR={pipeline.BIN_DIR!r}: {missing}")
        cls.d = pipeline.Deployment(cls.EXTRA_TOML)
        cls.ctx = zmq.Context()
        cls.state = State()
        cls.letter_cache = {"offset": 0, "letters": []}
        try:
            cls.start(cls)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ctx.destroy(linger=0)
        cls.d.close()

    def run_program(self, name, *args):
        return self.d.start(name, "--set", "run.stats_interval_ms=100", *args)

    def stat(self, program, key):
        s = self.d.stats(program)
        return (s or {}).get(key, 0)

    def letters(self):
        return self.all_letters()

    def all_letters(self):
        """Every complete line of the sink's file so far (read incrementally:
        the sink may be in the middle of writing one)."""
        path = os.path.join(self.d.run_dir, "dead_letters.jsonl")
        cache = self.__class__.letter_cache
        try:
            with open(path, "rb") as f:
                f.seek(cache["offset"])
                chunk = f.read()
        except OSError:
            return cache["letters"]
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].splitlines():
            if line.strip():
                cache["letters"].append(json.loads(line))
        cache["offset"] += end
        return cache["letters"]

    def pump(self):
        """Reads whatever the test's sockets have (subclasses)."""

    def wait(self, predicate, timeout, what):
        """pipeline.wait_for, reading the test's sockets before each look."""
        def pumped():
            self.pump()
            return predicate()
        return pipeline.wait_for(pumped, timeout=timeout, interval=0.02, what=what)

    def alive(self):
        for name, proc in self.d.procs.items():
            self.assertIsNone(proc.poll(), f"{name} died (exit {proc.returncode}); log:\n"
                              + self.d.log(name)[-2000:])

    # -- per entry hooks (subclasses) --
    # send(entry, frames); snapshot(entry) -> dict; good(entry) -> Built;
    # served(entry, snap, built) -> bool; check_outcome(entry, case, snap, built);
    # no_order(entry, snap)

    def serve_good(self, entry):
        """Sends good messages until one is served (a dropped connection is
        re-made by ZeroMQ: the first may be lost)."""
        deadline = time.monotonic() + SERVE_WAIT
        while True:
            snap = self.snapshot(entry)
            built = self.good(entry)
            try:
                self.wait(lambda: self.served(entry, snap, built), 1.0, "a good message served")
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    self.alive()
                    raise AssertionError(f"{entry}: a good message was not served within {SERVE_WAIT} s")

    def run_case(self, case):
        entry = case["entry"]
        expect = case["expect"]
        source = self.SOURCES[entry]
        letters_before = len(self.letters())
        snap = self.snapshot(entry)
        frames, built = [], None
        if "frames" in case:
            specs = case["frames"]
        elif entry in self.TOPICS:
            specs = [self.TOPICS[entry], case["payload"]]
        else:
            specs = [case["payload"]]
        for fr in specs:
            data, b = build_frame(fr, self.state)
            frames.append(data)
            built = built or b
        good_case = "served" in expect or expect.get("ack") == "DUPLICATE" or "reply" in expect
        if good_case and built is not None:
            self.register_good(entry, built)
        self.send(entry, frames)

        if "dead_letter" in expect:
            want = (source, expect["dead_letter"])
            self.wait(lambda: any((x["source"], x["reason"]) == want for x in self.letters()[letters_before:]),
                      WAIT, f"dead letter {want}")
        elif "counter" in expect:
            key = expect["counter"]
            self.wait(lambda: self.stat(self.STATS[entry], key) > snap["stats"].get(key, 0), WAIT,
                      f"{self.STATS[entry]}.{key} to move")
        elif "served" in expect:
            self.wait(lambda: self.served(entry, snap, built), WAIT, "the message to be served")
        self.check_outcome(entry, case, snap, built)

        self.alive()
        self.serve_good(entry)
        self.alive()

        new = [(x["source"], x["reason"]) for x in self.letters()[letters_before:]]
        want = [(source, expect["dead_letter"])] if "dead_letter" in expect else []
        self.assertEqual(new, want, "dead letters written for this case")
        if "counter" in expect and expect["counter"] != "connections_dropped":
            self.assertEqual(self.stat(self.STATS[entry], expect["counter"]),
                             snap["stats"].get(expect["counter"], 0) + 1, expect["counter"])
        self.no_order(entry, snap)

    def run_corpus(self):
        cases = [c for c in CASES if c["entry"] in self.ENTRIES]
        self.assertGreater(len(cases), 0)
        for case in cases:
            with self.subTest(case=f"{case['entry']}/{case['name']}"):
                self.run_case(case)

    def flood(self, entry, frames):
        """1000 copies of one bad message: each is dead-lettered, the log
        grows by a few lines at most."""
        program = self.LOGS[entry]
        source = self.SOURCES[entry]
        log_lines = self.d.log(program).count("\n")
        before = sum(1 for x in self.letters() if x["source"] == source)
        for _ in range(FLOOD):
            self.send(entry, frames)
        self.wait(lambda: sum(1 for x in self.letters() if x["source"] == source) >= before + FLOOD, 30,
                  f"{FLOOD} dead letters from {source}")
        self.serve_good(entry)
        self.alive()
        grown = self.d.log(program).count("\n") - log_lines
        self.assertLessEqual(grown, MAX_FLOOD_LOG_LINES,
                             f"{program} logged {grown} lines for {FLOOD} bad messages:\n"
                             + self.d.log(program)[-3000:])


# ---- strategy: ticks and acks -----------------------------------------------

class StrategyHostile(HostileBase):
    ENTRIES = ("strategy_ticks", "strategy_acks")
    SOURCES = {"strategy_ticks": "strategy:0", "strategy_acks": "strategy:0"}
    STATS = {"strategy_ticks": "strategy-0", "strategy_acks": "strategy-0"}
    LOGS = {"strategy_ticks": "strategy", "strategy_acks": "strategy"}
    TOPICS = {"strategy_ticks": "text:TICK.EURUSD", "strategy_acks": "text:ACK.strategy.0"}
    # every_nth n=1: every accepted tick becomes a signal, so a bad tick that
    # got through would show up on the signal socket with its seq.
    EXTRA_TOML = """
[strategy]
name = "every_nth"
instances = 1
resend_ms = 600000
signal_ttl_ms = 600000

[strategy.every_nth]
n = 1
"""

    def start(self):
        self.ticks = self.ctx.socket(zmq.PUB)
        self.ticks.setsockopt(zmq.SNDHWM, 0)
        self.ticks.bind(self.d.endpoints["ticks"])
        self.events = self.ctx.socket(zmq.PUB)
        self.events.setsockopt(zmq.SNDHWM, 0)
        self.events.bind(self.d.endpoints["order_events"])
        self.signals = self.ctx.socket(zmq.PULL)
        self.signals.bind(self.d.endpoints["signals"])
        self.good_seqs = set()
        self.signal_seqs = []
        self.run_program(self, "dead_letter")
        self.run_program(self, "strategy", "--shard", "0", "--shards", "1")

    def pump(self):
        while True:
            try:
                payload = self.signals.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            _, m = tp_proto.decode(payload)
            self.signal_seqs.append(m["causation_seq"])

    def send(self, entry, frames):
        sock = self.ticks if entry == "strategy_ticks" else self.events
        sock.send_multipart(frames)

    def snapshot(self, entry):
        self.pump()
        return {"stats": dict(self.d.stats("strategy-0") or {}), "signals": len(self.signal_seqs)}

    def register_good(self, entry, built):
        if built.name == "tick":
            self.good_seqs.add(built.fields["seq"])
            self.state.last_good_seq = built.fields["seq"]

    def good(self, entry):
        if entry == "strategy_ticks":
            b = build_message({"msg": "tick"}, self.state)
            self.register_good(entry, b)
            self.ticks.send_multipart([b"TICK.EURUSD", b.payload])
        else:
            b = build_message({"msg": "signal_ack"}, self.state)
            self.events.send_multipart([b"ACK.strategy.0", b.payload])
        return b

    def served(self, entry, snap, built):
        key = "ticks_received" if entry == "strategy_ticks" else "acks_unmatched"
        return self.stat("strategy-0", key) > snap["stats"].get(key, 0)

    def check_outcome(self, entry, case, snap, built):
        pass

    def no_order(self, entry, snap):
        self.pump()
        bad = [s for s in self.signal_seqs[snap["signals"]:] if s not in self.good_seqs]
        self.assertEqual(bad, [], "signals caused by ticks the test did not send as good")

    def test_1_corpus(self):
        # Ticks only flow once the subscription has reached the test's PUB.
        self.serve_good("strategy_ticks")
        self.serve_good("strategy_acks")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        self.flood("strategy_ticks", [b"TICK.EURUSD", b"\xc1"])
        self.flood("strategy_acks", [b"ACK.strategy.0", b"\xdd\xff\xff\xff\xff"])


# ---- executor: signals ------------------------------------------------------

class ExecutorHostile(HostileBase):
    ENTRIES = ("executor_signals",)
    SOURCES = {"executor_signals": "executor"}
    STATS = {"executor_signals": "executor"}
    LOGS = {"executor_signals": "executor"}
    TOPICS = {}

    def start(self):
        self.journal = os.path.join(self.d.dir, "sim.journal")
        self.d_extra = None
        self.signals = self.ctx.socket(zmq.PUSH)
        self.signals.setsockopt(zmq.SNDHWM, 0)
        self.signals.connect(self.d.endpoints["signals"])
        self.events = self.ctx.socket(zmq.SUB)
        self.events.setsockopt(zmq.RCVHWM, 0)
        self.events.setsockopt(zmq.SUBSCRIBE, b"")
        self.events.connect(self.d.endpoints["order_events"])
        self.acks, self.orders = [], []
        self.good_ids = set()
        self.run_program(self, "dead_letter")
        self.run_program(self, "dll_gateway", "--set", f'dll_gateway.settings.journal_path="{self.journal}"')
        self.run_program(self, "executor")

    def pump(self):
        while True:
            try:
                topic, payload = self.events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            name, m = tp_proto.decode(payload)
            if name == "signal_ack":
                self.acks.append(m)
            elif name == "order_event":  # not the groups' position reports
                self.orders.append(m)

    def journal_ids(self):
        try:
            with open(self.journal) as f:
                return [line.split()[2] for line in f if line.split()[1:2] == ["ORDER"]]
        except OSError:
            return []

    def send(self, entry, frames):
        self.signals.send_multipart(frames)

    def snapshot(self, entry):
        self.pump()
        return {"stats": dict(self.d.stats("executor") or {}), "acks": len(self.acks),
                "orders": len(self.orders), "journal": len(self.journal_ids())}

    def register_good(self, entry, built):
        self.good_ids.add(built.fields["signal_id"])

    def good(self, entry):
        b = build_message({"msg": "signal", "set": {"action": 1 + len(self.good_ids) % 2}}, self.state)
        self.register_good(entry, b)
        self.signals.send(b.payload)
        return b

    def acks_for(self, snap, signal_id):
        return [a for a in self.acks[snap["acks"]:] if a["signal_id"] == signal_id]

    def served(self, entry, snap, built):
        if any(a["status"] == 1 for a in self.acks_for(snap, built.fields["signal_id"])):
            self.state.seen_ids.append(built.fields["signal_id"])
            return True
        return False

    def check_outcome(self, entry, case, snap, built):
        want = case["expect"].get("ack") or case.get("ack")
        if want:
            status = {v: k for k, v in tp_proto.ACK_STATUSES.items()}[want]
            self.wait(lambda: any(a["status"] == status for a in self.acks_for(snap, built.fields["signal_id"])),
                      WAIT, f"ack {want}")
            if want == "REJECTED":
                a = self.acks_for(snap, built.fields["signal_id"])[0]
                self.assertEqual(a["reason"], case["expect"]["dead_letter"])

    def no_order(self, entry, snap):
        self.pump()
        placed = [o["signal_id"] for o in self.orders[snap["orders"]:]
                  if o["status"] != 5 and o["signal_id"] not in self.good_ids]
        self.assertEqual(placed, [], "orders from signals the test did not send as good")
        traded = [i for i in self.journal_ids()[snap["journal"]:] if i[2:] not in self.good_ids]
        self.assertEqual(traded, [], "orders at the (simulated) broker from bad signals")

    def test_1_corpus(self):
        self.serve_good("executor_signals")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        self.flood("executor_signals", [b""])


# ---- dll_gateway: orders and ticks ------------------------------------------

class DllGatewayHostile(HostileBase):
    ENTRIES = ("dll_gateway_orders", "dll_gateway_ticks")
    SOURCES = {"dll_gateway_orders": "dll_gateway", "dll_gateway_ticks": "dll_gateway"}
    STATS = {"dll_gateway_orders": "dll_gateway", "dll_gateway_ticks": "dll_gateway"}
    LOGS = {"dll_gateway_orders": "dll_gateway", "dll_gateway_ticks": "dll_gateway"}
    TOPICS = {"dll_gateway_ticks": "text:TICK.EURUSD"}

    def start(self):
        self.journal = os.path.join(self.d.dir, "sim.journal")
        self.ticks = self.ctx.socket(zmq.PUB)
        self.ticks.setsockopt(zmq.SNDHWM, 0)
        self.ticks.bind(self.d.endpoints["ticks"])
        # DEALER, not REQ: it can send any frames and is not wedged by a
        # request that never gets an answer (an oversized one).
        self.orders = self.ctx.socket(zmq.DEALER)
        self.orders.setsockopt(zmq.SNDHWM, 0)
        self.orders.connect(self.d.endpoints["orders"])
        self.replies = []
        self.good_ids = set()
        self.run_program(self, "dead_letter")
        self.run_program(self, "dll_gateway", "--set", f'dll_gateway.settings.journal_path="{self.journal}"')

    def pump(self):
        while True:
            try:
                frames = self.orders.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.assertEqual(len(frames), 2, "REP answers [empty delimiter, reply]")
            _, m = tp_proto.decode(frames[1])
            self.replies.append(m)

    def journal_ids(self):
        try:
            with open(self.journal) as f:
                return [line.split()[2] for line in f if line.split()[1:2] == ["ORDER"]]
        except OSError:
            return []

    def send(self, entry, frames):
        if entry == "dll_gateway_orders":
            self.orders.send_multipart([b"", *frames])
        else:
            self.ticks.send_multipart(frames)

    def snapshot(self, entry):
        self.pump()
        return {"stats": dict(self.d.stats("dll_gateway") or {}), "replies": len(self.replies),
                "journal": len(self.journal_ids())}

    def register_good(self, entry, built):
        if entry == "dll_gateway_orders":
            self.good_ids.add(built.fields["client_order_id"])

    def good(self, entry):
        if entry == "dll_gateway_orders":
            b = build_message({"msg": "order_request"}, self.state)
            self.register_good(entry, b)
            self.orders.send_multipart([b"", b.payload])
        else:
            b = build_message({"msg": "tick"}, self.state)
            self.ticks.send_multipart([b"TICK.EURUSD", b.payload])
        return b

    def replies_for(self, snap, client_order_id):
        return [r for r in self.replies[snap["replies"]:] if r["client_order_id"] == client_order_id]

    def served(self, entry, snap, built):
        if entry == "dll_gateway_ticks":
            return self.stat("dll_gateway", "ticks_received") > snap["stats"].get("ticks_received", 0)
        cid = built.fields["client_order_id"]
        if any(not r["duplicate"] for r in self.replies_for(snap, cid)):
            self.state.seen_ids.append(cid)
            return True
        return False

    def check_outcome(self, entry, case, snap, built):
        if entry != "dll_gateway_orders":
            return
        expect = case["expect"]
        if expect.get("reply") == "duplicate":
            cid = built.fields["client_order_id"]
            self.wait(lambda: any(r["duplicate"] for r in self.replies_for(snap, cid)), WAIT, "a duplicate reply")
        elif "dead_letter" in expect:
            # REP answers every request: a refusal, never silence.
            self.wait(lambda: len(self.replies) > snap["replies"], WAIT, "a reply")
            r = self.replies[snap["replies"]]
            self.assertEqual(r["status"], 5, f"reply to a bad request: {r}")
            self.assertTrue(r["reason"].startswith(expect["dead_letter"]), r["reason"])

    def no_order(self, entry, snap):
        traded = [i for i in self.journal_ids()[snap["journal"]:] if i not in self.good_ids]
        self.assertEqual(traded, [], "orders at the (simulated) broker from bad requests")

    def test_1_corpus(self):
        self.serve_good("dll_gateway_ticks")  # also gives the simulated broker a price
        self.serve_good("dll_gateway_orders")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        replies = len(self.replies)
        self.flood("dll_gateway_orders", [b"\xc1"])
        self.wait(lambda: len(self.replies) >= replies + FLOOD, 30, "a reply to every bad request")
        self.flood("dll_gateway_ticks", [b"TICK.EURUSD", b"\xc1"])


# ---- the dead-letter sink ---------------------------------------------------

class DeadLetterSinkHostile(HostileBase):
    ENTRIES = ("dead_letter_sink",)
    SOURCES = {"dead_letter_sink": "dead_letter"}
    STATS = {"dead_letter_sink": "dead_letter"}
    LOGS = {"dead_letter_sink": "dead_letter"}
    TOPICS = {}

    def start(self):
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.SNDHWM, 0)
        self.push.connect(self.d.endpoints["dead_letters"])
        self.run_program(self, "dead_letter")

    def send(self, entry, frames):
        self.push.send_multipart(frames)

    def snapshot(self, entry):
        return {"stats": dict(self.d.stats("dead_letter") or {}), "letters": len(self.all_letters())}

    def register_good(self, entry, built):
        pass

    def good(self, entry):
        b = build_message({"msg": "dead_letter"}, self.state)
        self.push.send(b.payload)
        return b

    def served(self, entry, snap, built):
        return any(x["source"] == "hostile" and x["detail"] == built.fields["detail"]
                   and base64.b64decode(x["original_b64"]) == built.fields["original"]
                   for x in self.all_letters()[snap["letters"]:])

    def check_outcome(self, entry, case, snap, built):
        pass

    def run_case(self, case):
        # A good dead letter is a line too: count only the sink's own.
        letters = self.letters
        self.letters = lambda: [x for x in letters() if x["source"] != "hostile"]
        try:
            super().run_case(case)
        finally:
            self.letters = letters

    def no_order(self, entry, snap):
        pass  # the sink places nothing; what it must keep is checked above

    def test_1_corpus(self):
        self.serve_good("dead_letter_sink")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        self.flood("dead_letter_sink", [b"\xc1"])


if __name__ == "__main__":
    unittest.main()
