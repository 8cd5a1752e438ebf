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
import threading
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
        "order_event": {"order_id": "B-1", "client_order_id": "C-every_nth.9.hostile.1",
                        "signal_id": "every_nth.9.hostile.1", "instrument": "EURUSD", "side": 1, "status": 4,
                        "quantity": 1000.0, "filled_quantity": 1000.0, "fill_price": 1.0851, "reason": "",
                        "created_ts_ns": "$now", "event_ts_ns": "$now", "causation_ts_ns": "$now"},
        "cancel_request": {"signal_id": "$uid", "strategy": "every_nth", "instance": 0, "reason": "hostile",
                           "created_ts_ns": "$now"},
        "order_cancel": {"client_order_id": "$uid", "reason": "hostile", "sent_ts_ns": "$now"},
        "report_query": {"from_seq": 1, "max_count": 100, "sent_ts_ns": "$now"},
        "open_orders_query": {"offset": 0, "sent_ts_ns": "$now"},
        "control_reply": {"ok": True, "state": 1, "cause": "", "since_ns": 0, "flatten_pending": False,
                          "open_orders": 0, "detail": "", "ts_ns": "$now"},
        # STATUS: a good one only asks (the harness keeps the state ACTIVE).
        "control_request": {"command": 1, "reason": "hostile", "sent_by": "hostile", "sent_ts_ns": "$now"},
        "report_batch": {"stream": "$stream", "last_seq": 0, "count": 0, "complete": True, "reports": b"",
                         "reason": "", "ts_ns": "$now"},
        # A report on the order the test placed, taking no seq: a good one
        # sets seq to $report_seq.
        "execution_report": {"stream": "$stream", "seq": "$next_report_seq", "client_order_id": "$order_id",
                             "order_id": "B-1", "instrument": "EURUSD", "side": 1, "status": 2,
                             "quantity": 1000.0, "last_quantity": 0.0, "last_price": 0.0,
                             "filled_quantity": 0.0, "avg_price": 0.0, "reason": "", "broker_ts_ns": "$now",
                             "ts_ns": "$now", "quote_seq": 0, "quote_ts_ns": 0},
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

    def value(f, v):
        if isinstance(v, dict) and "bin_zeros" in v:
            v = bytes(v["bin_zeros"])
        elif isinstance(v, str) and v.startswith("$"):
            v = state.resolve(v, f)
        if f in tp_proto.FLOAT_FIELDS and f not in raw and isinstance(v, (int, float)) \
                and not isinstance(v, bool):
            v = float(v)
        built.fields[f] = v
        return v

    values = [value(f, fields[f]) for f in names]
    # Optional appended fields belong to the message: extras come after them.
    optional = [value(f, fields.get(f, default)) for f, default in tp_proto.OPTIONAL.get(name, ())]
    if spec.get("drop"):
        values = values[:-spec["drop"]]
    else:
        values += optional
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
        self.resting_ids = []     # signals (or client order ids) whose order rests
        self.stream = "hostile-stream"
        self.report_seq = 0       # the last report seq a good report took
        self.order_id = None      # the executor's order the reports are about

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
        if v == "$resting_id":
            return self.resting_ids[-1]
        if v == "$stream":
            return self.stream
        if v == "$report_seq":
            self.report_seq += 1
            return self.report_seq
        if v.startswith("$next_report_seq"):
            return self.report_seq + 1 + int(v[len("$next_report_seq+"):] or 0)
        if v == "$last_report_seq":
            return self.report_seq
        if v == "$order_id":
            return self.order_id
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
        good_case = "served" in expect or expect.get("ack") == "DUPLICATE" or "reply" in expect \
            or case.get("good", False)
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

    def flood_answered(self, entry, make_frames, answered, what):
        """1000 messages valid on the wire that the program refuses or counts
        without a dead letter (`answered` says when all were taken): the log
        grows by a few lines at most."""
        program = self.LOGS[entry]
        log_lines = self.d.log(program).count("\n")
        for _ in range(FLOOD):
            self.send(entry, make_frames())
        self.wait(answered, 30, what)
        self.serve_good(entry)
        self.alive()
        grown = self.d.log(program).count("\n") - log_lines
        self.assertLessEqual(grown, MAX_FLOOD_LOG_LINES,
                             f"{program} logged {grown} lines for {FLOOD} of {what}:\n" + self.d.log(program)[-3000:])


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
                m["_topic"] = topic.decode()
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
        sid = built.fields["signal_id"]
        if any(a["status"] == 1 and not a["cancel"] for a in self.acks_for(snap, sid)):
            self.state.seen_ids.append(sid)
            if built.fields.get("time_in_force", 0) != 0:
                self.state.resting_ids.append(sid)
            return True
        return False

    def check_outcome(self, entry, case, snap, built):
        expect = case["expect"]
        self.cancel_acks_wanted = 0
        want = expect.get("ack") or case.get("ack")
        if want:
            status = {v: k for k, v in tp_proto.ACK_STATUSES.items()}[want]
            self.wait(lambda: any(a["status"] == status for a in self.acks_for(snap, built.fields["signal_id"])),
                      WAIT, f"ack {want}")
            if want == "REJECTED":
                a = self.acks_for(snap, built.fields["signal_id"])[0]
                self.assertEqual(a["reason"], expect["dead_letter"])
        if "cancel_ack" in expect:
            # The ack of a CancelRequest: cancel = true, on the requester's topic.
            self.cancel_acks_wanted = 1
            sid = built.fields["signal_id"]
            status = {v: k for k, v in tp_proto.ACK_STATUSES.items()}[expect["cancel_ack"]]
            self.wait(lambda: any(a["cancel"] for a in self.acks_for(snap, sid)), WAIT,
                      f"a cancel ack {expect['cancel_ack']}")
            a = [a for a in self.acks_for(snap, sid) if a["cancel"]][0]
            self.assertEqual(a["status"], status, a)
            self.assertEqual(a["_topic"], f"ACK.{built.fields['strategy']}.{built.fields['instance']}", a)
            if "ack_reason" in expect:
                self.assertTrue(a["reason"].startswith(expect["ack_reason"] + ":"), a)
            if expect["cancel_ack"] == "ACCEPTED":
                # Sent to dll_gateway once and canceled at the broker.
                self.wait(lambda: any(o["signal_id"] == sid and o["status"] == 6
                                      for o in self.orders[snap["orders"]:]), WAIT, "the order CANCELED")
                self.wait(lambda: self.journal_kinds(sid).count("CANCEL") == 1, WAIT,
                          "one CANCEL at the broker")

    def journal_kinds(self, signal_id):
        try:
            with open(self.journal) as f:
                return [w[1] for w in (line.split() for line in f) if len(w) > 2 and w[2] == "C-" + signal_id]
        except OSError:
            return []

    def no_order(self, entry, snap):
        self.pump()
        placed = [o["signal_id"] for o in self.orders[snap["orders"]:]
                  if o["status"] != 5 and o["signal_id"] not in self.good_ids]
        self.assertEqual(placed, [], "orders from signals the test did not send as good")
        traded = [i for i in self.journal_ids()[snap["journal"]:] if i[2:] not in self.good_ids]
        self.assertEqual(traded, [], "orders at the (simulated) broker from bad signals")
        # A CancelRequest that could not be read is not acked (no sender to
        # trust); the good message served since was published after any such ack.
        cancel_acks = [a for a in self.acks[snap["acks"]:] if a["cancel"]]
        self.assertEqual(len(cancel_acks), getattr(self, "cancel_acks_wanted", 0), cancel_acks)
        self.cancel_acks_wanted = 0

    def test_1_corpus(self):
        self.serve_good("executor_signals")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        self.flood("executor_signals", [b""])
        bad_cancel = build_message({"msg": "cancel_request", "set": {"signal_id": ""}}, self.state)
        self.flood("executor_signals", [bad_cancel.payload])
        bad_terms = build_message({"msg": "signal", "set": {"order_type": 1, "limit_price": 0}}, self.state)
        self.flood("executor_signals", [bad_terms.payload])
        # Refused cancels (each dead-lettered cancel_refused and acked).
        unknown = build_message({"msg": "cancel_request"}, self.state)
        self.flood("executor_signals", [unknown.payload])
        # Cancels of a final order: refused (order_final) and acked, no dead letter.
        self.serve_good("executor_signals")
        final = build_message({"msg": "cancel_request", "set": {"signal_id": "$seen_id"}}, self.state)
        acks = len(self.acks)
        self.flood_answered("executor_signals", lambda: [final.payload],
                            lambda: sum(a["cancel"] for a in self.acks[acks:]) >= FLOOD, "cancels of a final order")


# ---- executor: control socket (the test plays tpctl) ------------------------

class ExecutorControlHostile(HostileBase):
    """The executor's control REP (endpoints.control, derived from orders:
    ipc://P.control). The test is tpctl's REQ (relaxed, so that a request
    left unanswered would be seen as such, not wedge the socket). Every
    request must be answered: a bad one with ok = false, the state as it
    is and the decode error's code first in the detail, and dead-lettered;
    a good STATUS with ok = true. Nothing the test sends changes the trading
    state (ACTIVE throughout) or counts as a command but a good one."""

    ENTRIES = ("executor_control",)
    SOURCES = {"executor_control": "executor"}
    STATS = {"executor_control": "executor"}
    LOGS = {"executor_control": "executor"}
    TOPICS = {}

    def start(self):
        self.journal = os.path.join(self.d.dir, "sim.journal")
        self.replies = []  # (request frames, decoded reply or None)
        self.control = self.ctx.socket(zmq.REQ)
        self.control.setsockopt(zmq.REQ_RELAXED, 1)
        self.control.setsockopt(zmq.REQ_CORRELATE, 1)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(self.d.endpoints["orders"] + ".control")
        self.run_program(self, "dead_letter")
        self.run_program(self, "dll_gateway", "--set", f'dll_gateway.settings.journal_path="{self.journal}"')
        self.run_program(self, "executor")

    def send(self, entry, frames):
        self.control.send_multipart(frames)
        reply = None
        if self.control.poll(int(WAIT * 1000)):
            name, m = tp_proto.decode(self.control.recv())
            self.assertEqual(name, "control_reply")
            reply = m
        self.replies.append((frames, reply))
        self.assertIsNotNone(reply, f"no reply within {WAIT} s: the operator's REQ would wait forever")

    def snapshot(self, entry):
        return {"stats": dict(self.d.stats("executor") or {}), "replies": len(self.replies)}

    def register_good(self, entry, built):
        pass

    def good(self, entry):
        b = build_message({"msg": "control_request"}, self.state)
        self.send(entry, [b.payload])
        return b

    def served(self, entry, snap, built):
        new = self.replies[snap["replies"]:]
        return any(frames == [built.payload] and r and r["ok"] and r["state"] == 1 for frames, r in new)

    def check_outcome(self, entry, case, snap, built):
        expect = case["expect"]
        _, reply = self.replies[snap["replies"]]
        if "dead_letter" in expect:
            self.assertFalse(reply["ok"], reply)
            self.assertTrue(reply["detail"].startswith(expect["dead_letter"] + ": "), reply)
        else:
            self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["state"], 1, reply)  # ACTIVE, as it was

    def no_order(self, entry, snap):
        # Every good STATUS answered (since this executor started) counts
        # as a command, nothing else; the stats file may lag: awaited.
        want = sum(1 for _, r in self.replies if r and r["ok"])
        self.wait(lambda: self.stat("executor", "control_commands") >= want, WAIT, "control_commands")
        stats = self.d.stats("executor") or {}
        self.assertEqual(stats.get("control_commands"), want, "a bad request counted as a command")
        self.assertEqual(stats.get("trading_state"), "ACTIVE")

    def test_1_corpus(self):
        self.serve_good("executor_control")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        self.flood("executor_control", [b""])
        bad_command = build_message({"msg": "control_request", "set": {"command": 9}}, self.state)
        self.flood("executor_control", [bad_command.payload])


# ---- executor: reports (the test plays dll_gateway) -------------------------

class FakeDllGateway(threading.Thread):
    """dll_gateway as far as the executor's reports need it: a REP on
    endpoints.orders (in a thread: the executor asks at any moment, and a
    late answer would open its circuit breaker) that accepts an order and
    lets it rest, keeps the reports the test publishes and answers
    ReportQuery from them (a gap is fetched as from the real one),
    OpenOrdersQuery with the resting orders and PositionQuery with 0."""

    def __init__(self, ctx, endpoint, stream):
        super().__init__(daemon=True)
        self.ctx, self.endpoint, self.stream = ctx, endpoint, stream
        self.lock = threading.Lock()
        self.reports = []   # good reports: seq = index + 1
        self.orders = {}    # client_order_id -> the order request's fields
        self.requests = {}  # message name -> count
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error = None

    def add_report(self, fields):
        with self.lock:
            assert fields["seq"] == len(self.reports) + 1, (fields["seq"], len(self.reports))
            self.reports.append(dict(fields))

    def run(self):
        sock = self.ctx.socket(zmq.REP)
        try:
            sock.bind(self.endpoint)
            self.ready.set()
            while not self.stopping.is_set():
                if not sock.poll(50):
                    continue
                payload = sock.recv()
                with self.lock:
                    sock.send(self.answer(payload))
        except Exception as e:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.error = e
            self.ready.set()
        finally:
            sock.close(linger=0)

    def order_reply(self, cid, status, reason=""):
        o = self.orders.get(cid)
        return tp_proto.encode("order_reply", {
            "client_order_id": cid, "order_id": o["order_id"] if o else "", "status": status,
            "filled_quantity": 0.0, "fill_price": 0.0, "reason": reason, "duplicate": False,
            "broker_ts_ns": now_ns()})

    def batch(self, reports, complete=True):
        count, data = tp_proto.pack_reports(reports)
        return tp_proto.encode("report_batch", {
            "stream": self.stream, "last_seq": len(self.reports), "count": count, "complete": complete,
            "reports": data, "reason": "", "ts_ns": now_ns()})

    def answer(self, payload):
        name, m = tp_proto.decode(payload)
        self.requests[name] = self.requests.get(name, 0) + 1
        if name == "order_request":
            cid = m["client_order_id"]
            self.orders.setdefault(cid, {**m, "order_id": f"B-{len(self.orders) + 1}"})
            return self.order_reply(cid, 2)  # ACCEPTED: it rests
        if name == "order_query":
            cid = m["client_order_id"]
            return self.order_reply(cid, 2 if cid in self.orders else 7)
        if name == "report_query":
            start = max(m["from_seq"], 1) - 1
            part = self.reports[start:start + max(m["max_count"], 1)]
            return self.batch(part, complete=start + len(part) >= len(self.reports))
        if name == "open_orders_query":
            return self.batch([{
                "stream": self.stream, "seq": 0, "client_order_id": cid, "order_id": o["order_id"],
                "instrument": o["instrument"], "side": o["side"], "status": 2, "quantity": o["quantity"],
                "last_quantity": 0.0, "last_price": 0.0, "filled_quantity": 0.0, "avg_price": 0.0,
                "reason": "", "broker_ts_ns": now_ns(), "ts_ns": now_ns(), "quote_seq": 0, "quote_ts_ns": 0}
                for cid, o in self.orders.items()][m["offset"]:])
        if name == "position_query":
            return tp_proto.encode("position_reply", {"instrument": m["instrument"], "known": True,
                                                      "quantity": 0.0, "reason": "", "ts_ns": now_ns()})
        return self.order_reply(m.get("client_order_id", "-"), 5, f"not expected by the test: {name}")


class ExecutorReportsHostile(HostileBase):
    """The executor's report SUB. Its own deployment: the test publishes the
    reports and plays dll_gateway (FakeDllGateway) and the strategy that
    placed the one resting order the good reports are about. A good report
    changes nothing (the order is still ACCEPTED): it is known, and its seq is
    acknowledged in report_next_seq; a bad one applied would either move
    reports_applied or take the next good report's seq."""

    ENTRIES = ("executor_reports",)
    SOURCES = {"executor_reports": "executor"}
    STATS = {"executor_reports": "executor"}
    LOGS = {"executor_reports": "executor"}
    TOPICS = {"executor_reports": "text:REPORT.EURUSD"}

    def start(self):
        # endpoints.reports set explicitly (not derived from orders).
        self.d.endpoints["reports"] = f"ipc://{self.d.dir}/reports.sock"
        with open(self.d.config) as f:
            text = f.read()
        with open(self.d.config, "w") as f:
            f.write(text.replace("[endpoints]\n", f'[endpoints]\nreports = "{self.d.endpoints["reports"]}"\n', 1))
        self.fake = FakeDllGateway(self.ctx, self.d.endpoints["orders"], self.state.stream)
        self.fake.start()
        self.fake.ready.wait(5)
        if self.fake.error:
            raise self.fake.error
        self.reports = self.ctx.socket(zmq.PUB)
        self.reports.setsockopt(zmq.SNDHWM, 0)
        self.reports.bind(self.d.endpoints["reports"])
        self.signals = self.ctx.socket(zmq.PUSH)
        self.signals.setsockopt(zmq.SNDHWM, 0)
        self.signals.connect(self.d.endpoints["signals"])
        self.run_program(self, "dead_letter")
        self.run_program(self, "executor")
        # The order the reports are about: a limit GTC that rests.
        signal = build_message({"msg": "signal", "set": {"order_type": 1, "limit_price": 1.0, "time_in_force": 1}},
                               self.state)
        self.signals.send(signal.payload)
        cid = "C-" + signal.fields["signal_id"]
        pipeline.wait_for(lambda: cid in self.fake.orders and self.d.stat("executor", "orders_working") == 1
                          and self.d.stat("executor", "report_stream") == self.state.stream,
                          timeout=SERVE_WAIT, interval=0.02, what="the test's order working at the executor")
        self.state.order_id = cid

    @classmethod
    def tearDownClass(cls):
        fake = getattr(cls, "fake", None)
        if fake:
            fake.stopping.set()
            fake.join(5)
        super().tearDownClass()

    def send(self, entry, frames):
        self.reports.send_multipart(frames)

    def snapshot(self, entry):
        self.assertIsNone(self.fake.error)
        return {"stats": dict(self.d.stats("executor") or {})}

    def register_good(self, entry, built):
        self.fake.add_report(built.fields)

    def good(self, entry):
        b = build_message({"msg": "execution_report", "set": {"seq": "$report_seq"}}, self.state)
        self.register_good(entry, b)
        self.reports.send_multipart([b"REPORT.EURUSD", b.payload])
        return b

    def served(self, entry, snap, built):
        # Taken from the SUB (not only fetched: the subscription still works)
        # and acknowledged by the stream cursor.
        return (self.stat("executor", "reports_received") > snap["stats"].get("reports_received", 0)
                and self.stat("executor", "report_next_seq") > built.fields["seq"])

    def check_outcome(self, entry, case, snap, built):
        pass

    def run_case(self, case):
        self.case = case
        super().run_case(case)

    def no_order(self, entry, snap):
        self.assertIsNone(self.fake.error)
        s = self.d.stats("executor")
        for key in ("reports_applied", "invalid_transitions", "fills", "canceled"):
            if key != self.case["expect"].get("counter"):
                self.assertEqual(s.get(key, 0), snap["stats"].get(key, 0),
                                 f"executor {key}: a bad report was applied")
        self.assertEqual(s.get("orders_working"), 1, "the test's order still works")
        self.assertFalse(s.get("trading_halted"), s)
        self.assertEqual(self.fake.requests.get("order_request"), 1, "no order from a report")

    def test_1_corpus(self):
        self.serve_good("executor_reports")
        self.run_corpus()

    def test_2_flood_is_rate_limited(self):
        bad = build_message({"msg": "execution_report", "set": {"quantity": -1.0}}, self.state)
        self.flood("executor_reports", [b"REPORT.EURUSD", bad.payload])
        self.flood("executor_reports", [b"REPORT.EURUSD", b"\xc1"])

    def flood_counted(self, fields, counter):
        """1000 reports valid on the wire that the executor counts (each
        takes a seq): the counter moves by 1000, the log by a few lines."""
        before = self.stat("executor", counter)

        def frames():
            b = build_message({"msg": "execution_report", "set": {"seq": "$report_seq", **fields}}, self.state)
            self.register_good("executor_reports", b)
            return [b"REPORT.EURUSD", b.payload]
        self.flood_answered("executor_reports", frames, lambda: self.stat("executor", counter) >= before + FLOOD,
                            f"reports counted in {counter}")

    def test_3_unknown_order_flood_is_rate_limited(self):
        # Reports for an order this executor never placed: counted, recorded,
        # not dead-lettered, and not a log line each.
        self.flood_counted({"client_order_id": "$uid"}, "reports_unknown_order")

    def test_3b_invalid_transition_flood_is_rate_limited(self):
        self.flood_counted({"status": 1}, "invalid_transitions")

    # Runs last of the socket cases: it cuts the subscription (the executor's
    # monitor counts it and dials again).
    def test_4_oversized_report_frame(self):
        # ZeroMQ cuts the connection: the executor must count it and dial
        # again, as every subscriber does (see README.md).
        self.serve_good("executor_reports")
        case = {"entry": "executor_reports", "name": "oversized_frame", "expect": {"counter": "connections_dropped"},
                "frames": ["text:REPORT.EURUSD", {"zeros": 64 * 1024 + 1}]}
        self.run_case(case)

    def test_5_reports_recorded(self):
        # Read once the executor stopped (it holds executor.db exclusively):
        # every good report is recorded once, under its own id, unapplied (the
        # order was ACCEPTED all along; the rest were about unknown orders);
        # no bad one left a row, and the cursor stands after the last good one.
        import sqlite3
        self.assertEqual(self.d.stop("executor"), 0, self.d.log("executor")[-2000:])
        db = sqlite3.connect(os.path.join(self.d.run_dir, "executor.db"))
        try:
            rows = db.execute("SELECT report_id, stream, seq, client_order_id, applied FROM reports "
                              "ORDER BY seq").fetchall()
            cursor = db.execute("SELECT stream, next_seq FROM report_cursor").fetchall()
        finally:
            db.close()
        want = [(f"{r['stream']}:{r['seq']}", r["stream"], r["seq"], r["client_order_id"], 0)
                for r in self.fake.reports]
        self.assertEqual(rows, want)
        self.assertEqual(cursor, [(self.state.stream, self.state.report_seq + 1)])
        self.assertEqual(self.state.report_seq, len(self.fake.reports))


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
            self.assertEqual(len(frames), 2, "dll_gateway answers a REQ envelope: [empty delimiter, reply]")
            name, m = tp_proto.decode(frames[1])
            m["_name"] = name
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
        if entry == "dll_gateway_orders" and "client_order_id" in built.fields:
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
        return [r for r in self.replies[snap["replies"]:] if r.get("client_order_id") == client_order_id]

    def journal_kinds(self, client_order_id):
        try:
            with open(self.journal) as f:
                return [w[1] for w in (line.split() for line in f) if len(w) > 2 and w[2] == client_order_id]
        except OSError:
            return []

    def served(self, entry, snap, built):
        if entry == "dll_gateway_ticks":
            return self.stat("dll_gateway", "ticks_received") > snap["stats"].get("ticks_received", 0)
        cid = built.fields["client_order_id"]
        if any(not r["duplicate"] for r in self.replies_for(snap, cid)):
            self.state.seen_ids.append(cid)
            if built.fields.get("time_in_force", 0) != 0:
                self.state.resting_ids.append(cid)
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
            # dll_gateway answers every request: a refusal, never silence.
            self.wait(lambda: len(self.replies) > snap["replies"], WAIT, "a reply")
            r = self.replies[snap["replies"]]
            self.assertEqual(r["_name"], "order_reply", f"reply to a bad request: {r}")
            self.assertEqual(r["status"], 5, f"reply to a bad request: {r}")
            self.assertTrue(r["reason"].startswith(expect["dead_letter"]), r["reason"])
        elif expect.get("reply") == "report_batch":
            self.wait(lambda: len(self.replies) > snap["replies"], WAIT, "a reply")
            r = self.replies[snap["replies"]]
            self.assertEqual(r["_name"], "report_batch", r)
            self.assertTrue(r["stream"], r)
            reports = tp_proto.unpack_reports(r)  # exactly `count` valid reports, within 64 KiB
            self.assertEqual(len(reports), r["count"])
            self.assertLessEqual(len(r["reports"]), 64 * 1024)
        elif expect.get("reply", "").startswith("cancel_"):
            cid = built.fields["client_order_id"]
            self.wait(lambda: self.replies_for(snap, cid), WAIT, "an answer to the cancel")
            r = self.replies_for(snap, cid)[0]
            self.assertEqual(r["_name"], "order_reply", r)
            kind = expect["reply"]
            if kind == "cancel_unknown":
                self.assertEqual((r["status"], r["reason"], r["duplicate"]), (7, "cannot cancel: no such order", False))
            elif kind == "cancel_final":
                self.assertIn(r["status"], tp_proto.FINAL_STATUSES, r)
                self.assertTrue(r["reason"].startswith("cannot cancel: the order is"), r)
            elif kind in ("cancel_done", "cancel_duplicate"):
                self.assertEqual((r["status"], r["duplicate"]), (6, kind == "cancel_duplicate"), r)
                # One cancel reaches the broker, however often it is asked.
                self.wait(lambda: self.journal_kinds(cid).count("CANCEL") == 1, WAIT, "one CANCEL at the broker")
            if kind != "cancel_done":
                self.assertEqual(self.journal_kinds(cid).count("CANCEL"), 1 if kind == "cancel_duplicate" else 0)

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
        for spec in ({"msg": "order_cancel", "set": {"client_order_id": ""}},
                     {"msg": "report_query", "set": {"max_count": -1}},
                     {"msg": "open_orders_query", "drop": 1},
                     {"msg": "order_request", "set": {"time_in_force": 1}}):
            replies = len(self.replies)
            self.flood("dll_gateway_orders", [build_message(spec, self.state).payload])
            self.wait(lambda: len(self.replies) >= replies + FLOOD, 30, f"a reply to every bad {spec['msg']}")
        # Good requests answered without an order: cancels of unknown and of
        # final orders, report and open-orders queries.
        self.serve_good("dll_gateway_orders")
        for spec in ({"msg": "order_cancel"},
                     {"msg": "order_cancel", "set": {"client_order_id": "$seen_id"}},
                     {"msg": "report_query", "set": {"from_seq": 0, "max_count": 2**32 - 1}},
                     {"msg": "open_orders_query"}):
            replies = len(self.replies)
            self.flood_answered("dll_gateway_orders", lambda: [build_message(spec, self.state).payload],
                                lambda: len(self.replies) >= replies + FLOOD, f"good {spec['msg']}s")
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
                   and x.get("key", "") == built.fields["key"]
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
