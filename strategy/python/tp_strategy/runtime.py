"""One Python strategy instance (group G, shard k of n) on the wire: the
sockets, the journal, the loop, and the Context a user's Strategy talks to.
The same guarantees as the C++ StrategyNode (strategy/src/strategy_node.cpp):

- ticks: SUB to exactly TICK.<sym> of this shard's instruments and HB.gateway;
  a topic that is not exactly ours is ignored and counted (wrong_topic); a
  bad payload is dead-lettered with the C++ reason; per-instrument seq gaps
  are counted and reported (FeedEvent GAP), duplicates and out-of-order ticks
  dropped (dead letters duplicate_seq / out_of_order); a tick stamped too
  long ago or too far ahead is refused (stale / future_timestamp); the feed is
  dead after feed_timeout_ms without a believed tick or heartbeat (a
  heartbeat is aged as a tick is: heartbeats_refused); a heartbeat seq
  going backwards is a restarted gateway. No signal goes out while the feed
  is dead, nor from the tick that ends a dead spell (signals_suppressed), nor
  from a tick older than max_signal_tick_age_ms (signals_stale: the backlog
  of a pause or of a returning link moves the indicators, is not traded).
- signals: journaled (G-k.journal, the C++ format) BEFORE each send; resent
  every resend_ms until ACK.G.k acks them; given up give_up_after_ms past
  their expiry (X record, dead letter `unacked`); ids G.k.<boot_ms>.<n> with
  boot_ms after the journal's last boot; pending signals replayed at start
  with their original bytes; departed shards' journals of the group
  (G-j.journal, j >= n, j % n == k) adopted; compaction past 4 MiB.
- orders and position: ORDER.<sym> events of this group's signals and
  refused acks reach on_order; position = the executor's last POS.G report
  + fills after it (any status's cumulative filled_quantity: a CANCELED or
  EXPIRED order keeps what it filled).
- order terms: each signal carries its order type, limit price, time in
  force and good-till time (the request's, else the group's defaults).
- cancels: ctx.cancel(signal_id) sends a CancelRequest on the signals socket
  and resends it every resend_ms until the executor acks it (SignalAck with
  cancel = true) or an ORDER event shows the order final. Held while the
  signal itself is still unacked, so that it never overtakes its signal.
  Kept in memory only, not journaled: a cancel in flight when the process
  dies is lost, and the strategy asks again after the restart.
- stats: <run.dir>/G-k.stats.json every run.stats_interval_ms (the
  supervisor's heartbeat), keys as the C++ strategy's where they apply.
- metrics: with [metrics] port set, the same figures as Prometheus metrics
  on http://host:port/metrics, the C++ strategy's names (metrics_text()),
  served from a daemon thread (metrics.py); published at start and with
  each stats write.

Single-threaded: everything runs on the thread that calls run()."""

from __future__ import annotations

import bisect
import gc
import heapq
import json
import logging
import math
import os
import re
import signal as signal_mod
import time

import zmq

from . import api, metrics, wire
from ._shared import instruments_for_shard
from .feed import ACCEPT, RESTART, STALE, FeedMonitor, SeqTracker, judge_stamp, tradeable
from .journal import (DEFAULT_COMPACT_BYTES, JournalLocked, SignalIdGenerator, SignalJournal, SignalOutbox,
                      choose_boot_ms, decode_signal)
from .systemd import SystemdNotifier

log = logging.getLogger("tp_strategy")

NS_PER_MS = 1_000_000
MAX_BATCH = 4096           # messages per socket per turn: keeps timers running under load
MAX_WAIT_MS = 100          # the longest poll: the stop flag is looked at least this often
# Ticks queued in this process while the strategy is behind its feed. Not
# the C++ strategy's 30,000: a tick that arrives alone (a feed of a few
# thousand a second) keeps ZeroMQ's whole ~8 KiB receive buffer alive while
# it waits, so each queued tick cost ~8.5 KB, and a strategy 3 s behind a
# 1,000 ticks/s feed reached 64 MB against its 30 MB budget (an interpreter
# with pyzmq and msgpack takes 22 MB before any). 500 is ~4 MB at most, and
# still half a second of such a feed; a strategy further behind trades on
# the newest ticks, the older ones dropped by ZeroMQ and counted as gaps.
TICK_RCVHWM = 500
EVENTS_RCVHWM = 10000      # acks, order events, positions: as the C++ strategy
ADOPT_SCAN_NS = 1000 * NS_PER_MS
JOURNAL_PROBE_NS = 500 * NS_PER_MS
COMPACT_RETRY_NS = 1000 * NS_PER_MS
LATENCY_SAMPLES = 8192     # a ring of recent tick latencies (power of two)
NO_LAG = 1 << 62           # a lag window that saw no tick yet
# The latency histogram's bounds (metrics.LATENCY_BOUNDS_SECONDS) in integer
# ns: the tick path bisects the latency it has in ns, no division. It costs
# ~200 ns a tick (of ~3.6 us), so it is kept only while metrics are served.
LATENCY_BOUNDS_NS = [round(b * 1e9) for b in metrics.LATENCY_BOUNDS_SECONDS]
ORDER_MEMORY = 4096        # signal ids whose counted fills are remembered (duplicate events)
OPEN_MEMORY = 65536        # signal ids whose orders are not known final (cancelable); oldest forgotten first


def set_link_options(sock, net):
    """[network] as the C++ sockets get it (tp::set_link_options,
    common/zmq_util.hpp): TCP keepalive, a quick redial, a bounded connect
    and ZMTP heartbeats (off by default) on the PUSH sockets only, so that a
    link cut between hosts is noticed in seconds and used again within about
    one of its return (docs/ARCHITECTURE.md, "Links between hosts")."""
    reader = sock.type in (zmq.SUB, zmq.PULL)  # no timer of its own: see zmq_util.hpp
    heartbeat_ms = 0 if reader else net["heartbeat_ms"]
    sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
    if heartbeat_ms > 0:
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, net["heartbeat_timeout_ms"])
        sock.setsockopt(zmq.HEARTBEAT_TTL, 0 if sock.type == zmq.PUSH else net["heartbeat_timeout_ms"])
    sock.setsockopt(zmq.RECONNECT_IVL, net["reconnect_ms"])
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, net["reconnect_max_ms"])
    sock.setsockopt(zmq.CONNECT_TIMEOUT, net["connect_timeout_ms"])
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1 if net["tcp_keepalive"] else 0)
    if net["tcp_keepalive"]:
        sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, net["tcp_keepalive_idle_s"])
        sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, net["tcp_keepalive_interval_s"])
        sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, net["tcp_keepalive_count"])


class _Stop:
    requested = False


def install_stop_handlers():
    def handler(signum, frame):
        _Stop.requested = True
    signal_mod.signal(signal_mod.SIGTERM, handler)
    signal_mod.signal(signal_mod.SIGINT, handler)


def stop_requested():
    return _Stop.requested


class LogLimiter:
    """At most one line per key per interval; counts what it held back."""

    def __init__(self, interval_ns=1_000_000_000):
        self.interval_ns = interval_ns
        self.next = {}
        self.held = {}

    def allow(self, key, now_ns):
        if now_ns < self.next.get(key, 0):
            self.held[key] = self.held.get(key, 0) + 1
            return False
        self.next[key] = now_ns + self.interval_ns
        return True

    def suppressed(self, key):
        return self.held.pop(key, 0)


class SocketMonitor:
    """What ZeroMQ does to a socket's connections behind the program's back
    (the C++ SocketMonitor): a frame above ZMQ_MAXMSGSIZE or a protocol error
    drops the connection without reaching recv(), and libzmq does not
    reconnect after a protocol error, so one oversized frame would cut a
    subscriber off for good. Counted here, and the endpoint dialled again
    after every drop. drain() once per loop turn."""

    EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
              | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
    HANDSHAKE = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | zmq.EVENT_HANDSHAKE_FAILED_AUTH)

    def __init__(self, sock, endpoint):
        self.sock, self.endpoint = sock, endpoint
        self.events = sock.get_monitor_socket(self.EVENTS)
        self.accepted = self.dropped = self.handshakes_failed = self.redials = 0

    def drain(self):
        while True:
            try:
                frames = self.events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not frames or len(frames[0]) < 2:
                continue
            event = int.from_bytes(frames[0][:2], "little")
            if event & zmq.EVENT_CONNECTED:
                self.accepted += 1
            elif event & zmq.EVENT_DISCONNECTED:
                self.dropped += 1
                self.redial()
            elif event & self.HANDSHAKE:
                self.handshakes_failed += 1

    def redial(self):
        # After an I/O error ZeroMQ is already reconnecting and after a
        # protocol error the session is gone: a fresh connect either way, the
        # disconnect first so that it does not become a second connection.
        try:
            self.sock.disconnect(self.endpoint)
        except zmq.ZMQError:
            pass  # nothing left to disconnect
        try:
            self.sock.connect(self.endpoint)
            self.redials += 1
        except zmq.ZMQError:
            pass  # the counters (dropped without redials) tell the operator

    def close(self):
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.events.close(0)


def read_key_file(path, what, secret=False):
    """The Z85 key in `path` (comment lines start with #), as the C++
    read_key_file reads it; a secret key file others may read is refused."""
    if not path:
        raise RuntimeError(f"security.{what} must be set when curve = true")
    try:
        if secret and os.stat(path).st_mode & 0o077:
            raise RuntimeError(f"security.{what}: secret key file {path} is readable by group or others "
                               "(chmod 600 it)")
    except OSError:
        raise RuntimeError(f"security.{what}: cannot read key file {path}") from None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    if len(line) != 40:
                        raise RuntimeError(f"security.{what}: {path} does not hold a 40-character Z85 key")
                    return line
    except OSError:
        raise RuntimeError(f"security.{what}: cannot read key file {path}") from None
    raise RuntimeError(f"security.{what}: {path} holds no key")


class _Traded:
    """One instrument this shard trades: its seq, its reused Tick."""

    __slots__ = ("symbol", "seq", "tick", "have_tick")

    def __init__(self, symbol):
        self.symbol = symbol
        self.seq = SeqTracker()
        self.tick = api.Tick(symbol)
        self.have_tick = False


class _Cancel:
    """A CancelRequest not acked yet. `held` while its signal is unacked."""

    __slots__ = ("signal_id", "payload", "next_ns", "held", "sent")

    def __init__(self, signal_id, payload, held):
        self.signal_id, self.payload, self.next_ns, self.held, self.sent = signal_id, payload, 0, held, False


class _Adopted:
    __slots__ = ("shard", "journal", "outbox", "compacted_empty")

    def __init__(self, shard, journal, outbox):
        self.shard, self.journal, self.outbox, self.compacted_empty = shard, journal, outbox, False


class Context:
    """What a strategy may ask of its runtime (self.ctx)."""

    def __init__(self, rt):
        self._rt = rt
        self.group = rt.group.name
        self.shard = rt.shard
        self.shards = rt.shards
        self.instruments = list(rt.symbols)
        self.params = rt.params
        self._log = logging.getLogger(f"tp_strategy.{rt.name}")

    def emit(self, instrument, side, quantity=0.0, confidence=1.0, ttl_ms=0, trigger_price=0.0, order_type=None,
             limit_price=0.0, time_in_force=None, good_till_ms=0) -> str:
        """Emits a signal; returns its id, or "" when nothing was sent (feed
        dead, the instrument's last tick sent longer ago than
        max_signal_tick_age_ms, not this instance's instrument, an invalid
        request, or a journal that cannot be written; each counted in the
        stats). The
        runtime journals it before sending and resends it until acked.

        The order's terms: order_type "market" or "limit" and time_in_force
        "ioc", "gtc" or "gtd" (None: the group's order_type, and its
        time_in_force for a limit order; a market order is always IOC);
        limit_price (0: the trigger price moved by the group's
        limit_offset_bps, away from the market when positive); good_till_ms
        for GTD (0: the group's good_till_ms, else the signal's TTL: good
        till it expires). A limit_price with a market order, a time in force
        other than IOC for one, or good_till_ms without GTD is refused."""
        return self._rt.emit(instrument, side, quantity, confidence, ttl_ms, trigger_price, order_type, limit_price,
                             time_in_force, good_till_ms)

    def position(self, instrument) -> float:
        """This group's net position (> 0 long): the executor's last report
        plus the fills since; 0 until the first report."""
        p = self._rt.positions.get(instrument)
        return p[0] if p else 0.0

    def position_known(self, instrument) -> bool:
        p = self._rt.positions.get(instrument)
        return bool(p and p[1])

    def every(self, period_ms, fn) -> int:
        """Runs fn() every period_ms (the first time one period from now)."""
        return self._rt.add_timer(int(period_ms), None, fn)

    def at(self, wall_ts_ns, fn) -> int:
        """Runs fn() once at a wall-clock time (in the past: next turn)."""
        return self._rt.add_timer(None, int(wall_ts_ns), fn)

    def cancel(self, what, reason=""):
        """cancel(signal_id, reason=""): asks the executor to cancel the
        order of one of this instance's signals; True when the request is on
        its way (resent until acked; the outcome arrives through on_order,
        CANCELED or the final status the order reached first), False when
        the id is not an order of this instance that may still be open.
        cancel(timer_id): stops a timer (an unknown id is a no-op)."""
        if isinstance(what, str):
            return self._rt.cancel_order(what, reason)
        self._rt.cancel_timer(what)
        return None

    def cancel_timer(self, timer_id):
        self._rt.cancel_timer(timer_id)

    @property
    def order_settings(self) -> dict:
        """The group's order terms (order_type, time_in_force,
        limit_offset_bps, good_till_ms, cancel_after_ms): emit()'s defaults.
        cancel_after_ms is the strategy's to apply (the built-ins cancel an
        order still open that long after; a Python strategy decides for
        itself, with open_orders(), a timer and cancel())."""
        return dict(self._rt.order_settings)

    def open_orders(self) -> list:
        """Ids of this instance's signals whose orders are not known final
        (emitted, restored or seen in an ORDER event since the start), oldest
        first: what cancel() accepts."""
        return list(self._rt.open_orders)

    def now_ns(self) -> int:
        return self._rt.now_ns()

    def feed_alive(self) -> bool:
        return self._rt.feed.alive(self._rt.now_ns())

    _LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
               "error": logging.ERROR}

    def log(self, level, message):
        """Through the program's logger, named after the group and shard."""
        lvl = self._LEVELS.get(level, level if isinstance(level, int) else logging.INFO)
        self._log.log(lvl, "%s", message)


class Runtime:
    def __init__(self, cfg, group, shard, shards, strategy, clock_ns=time.time_ns):
        if shards < 1:
            raise ValueError("--shards: must be >= 1")
        if not 0 <= shard < shards:
            raise ValueError(f"--shard: {shard} is not below --shards {shards}")
        self.cfg = cfg
        self.group = group
        self.shard = shard
        self.shards = shards
        self.name = f"{group.name}-{shard}"
        self.now_ns = clock_ns
        self.symbols = instruments_for_shard(group.instruments, shard, shards)
        self.symbol_set = frozenset(self.symbols)
        self.params = api.Params(group.params, f"strategy.groups[{group.name}].params")
        self.strategy = strategy
        self.feed = FeedMonitor(cfg.feed_timeout_ms * NS_PER_MS)
        self.feed_reported_alive = False
        self.positions = {}      # instrument -> [quantity, known]
        self.fills_counted = {}  # signal id -> filled quantity already in positions
        self.open_orders = {}    # signal id -> None: emitted or seen, not known final (insertion order: age)
        self.final_orders = {}   # signal id -> None: seen final (bounded), so that a cancel is refused
        self.cancels = {}        # signal id -> _Cancel not acked yet
        self._read_order_defaults(group, cfg)
        self.timers = []         # heap of (due_mono_ns, id)
        self.timer_fns = {}      # id -> (period_ns or None, fn)
        self.next_timer_id = 0
        self.limiter = LogLimiter()
        self.started = False
        self.ctx = Context(self)
        self._emit_ok_in_tick = None  # during on_tick: whether its tick may cause a signal
        self._init_counters()

    def _init_counters(self):
        self.ticks_received = self.heartbeats = self.wrong_topic = self.feed_restarts = 0
        self.signals_emitted = self.signals_suppressed = self.signals_refused = self.signals_acked = 0
        self.signals_stale = self.heartbeats_refused = 0
        self.signals_resent = self.signals_given_up = self.send_would_block = self.acks_unmatched = 0
        self.cancel_send_would_block = 0
        self.signals_not_journaled = self.acks_not_journaled = self.give_ups_not_journaled = 0
        self.compactions_failed = self.emission_stops = self.journal_errors = 0
        self.journal_corrupt = self.journal_torn = self.journal_locked = 0
        self.strategy_errors = self.order_updates = self.position_reports = 0
        self.gap_events = 0
        self.cancels_sent = self.cancels_acked = self.cancels_refused = self.cancels_resent = 0
        self.cancels_overtaken = self.cancels_not_open = self.cancel_acks_unmatched = 0
        self.write_failures = 0
        self.files_failing = {}   # path -> what failed last, until a write succeeds
        self.disk_free_bytes = 0
        self.dead_letters_sent = self.dead_letters_dropped = 0
        self.dead_letters_by_reason = {}
        self.latency_ring = [0] * LATENCY_SAMPLES
        self.latency_n = 0
        self.latency_counts = [0] * (len(LATENCY_BOUNDS_NS) + 1)  # per bucket, the last above every bound
        self.latency_sum_ns = 0
        # common/clock_skew.hpp's LagWindow: the gateway's clock seen through
        # its ticks' stamps, the smallest lag of the window being filled and
        # of the last closed one (None until a tick came).
        self.lag_min = NO_LAG
        self.lag_last = None
        self.metrics = None  # the endpoint, when [metrics] port is set
        self.last_hb = None
        self.emitting = True
        self.boot_journaled = False
        self.rewrite_owed = False
        self.journal_error = ""
        self.next_probe_ns = 0
        self.next_compact_ns = 0
        self.ticks_at_last_stats = 0
        self.last_stats_ns = 0
        self.ticks_per_s = 0.0

    # ---- start: the strategy first (no socket yet), then files and sockets ----

    def start_strategy(self):
        """Attaches the context and runs on_start; raises (ParamError or the
        strategy's own exception) to refuse the start. Unread params refused."""
        self.strategy.ctx = self.ctx
        self.strategy.on_start()
        unread = self.params.unread()
        if unread:
            raise api.ParamError(f"{self.params.where}: unknown parameter(s) {', '.join(unread)} (no getter "
                                 "asked for them in on_start: a typo?)")

    def open(self, zctx=None):
        cfg = self.cfg
        self.resend_ns = cfg.resend_ms * NS_PER_MS
        self.give_up_ns = cfg.give_up_after_ms * NS_PER_MS
        self.resend_scan_ns = max(10, min(100, cfg.resend_ms // 4)) * NS_PER_MS
        self.max_tick_age_ns = cfg.max_tick_age_ms * NS_PER_MS
        self.max_signal_age_ns = cfg.max_signal_tick_age_ms * NS_PER_MS
        self.max_skew_ns = cfg.max_clock_skew_ms * NS_PER_MS
        self.ttl_ns = cfg.signal_ttl_ms * NS_PER_MS
        # First: a port another process holds fails the start before any
        # file or socket is opened.
        self.metrics = metrics.start_metrics_server(cfg.metrics_host, cfg.metrics_port, "strategy", self.name,
                                                    [("group", self.group.name)])
        os.makedirs(cfg.run_dir, exist_ok=True)
        self.stats_path = cfg.run_path(self.name + ".stats.json")
        self.journal = SignalJournal(cfg.run_path(self.name + ".journal"), DEFAULT_COMPACT_BYTES, SignalJournal.OWN)
        self.outbox = SignalOutbox(self.journal, self.resend_ns, self.give_up_ns)
        now = self.now_ns()
        self.ids = SignalIdGenerator(self.group.name, self.shard,
                                     choose_boot_ms(now // NS_PER_MS, self.journal.replay.last_boot_ms))
        self.adopted = []
        self.ack_topics = set()

        self.zctx = zctx or zmq.Context.instance()
        z = self.zctx
        self.dl = z.socket(zmq.PUSH)
        set_link_options(self.dl, cfg.network)
        self.dl.setsockopt(zmq.SNDHWM, 2000)
        self.dl.setsockopt(zmq.LINGER, 1000)
        self._connect(self.dl, cfg.endpoints["dead_letters"])
        self.ticks = z.socket(zmq.SUB)
        set_link_options(self.ticks, cfg.network)
        self.ticks.setsockopt(zmq.RCVHWM, TICK_RCVHWM)
        self.ticks.setsockopt(zmq.MAXMSGSIZE, wire.MAX_PAYLOAD)
        self.events = z.socket(zmq.SUB)
        set_link_options(self.events, cfg.network)
        # As the C++ sockets (tp::SocketOptions): ZeroMQ's default of 1000
        # drops acks in the burst that follows a paused executor, and every
        # lost ack is a resend more.
        self.events.setsockopt(zmq.RCVHWM, EVENTS_RCVHWM)
        self.events.setsockopt(zmq.MAXMSGSIZE, wire.MAX_PAYLOAD)
        self.signals = z.socket(zmq.PUSH)
        set_link_options(self.signals, cfg.network)
        self.signals.setsockopt(zmq.SNDHWM, 10000)
        self.signals.setsockopt(zmq.LINGER, 500)  # as the C++ sockets: a clean stop flushes what is queued
        # While no executor is connected a send would queue on no pipe: the
        # signal stays pending and is resent later.
        self.signals.setsockopt(zmq.IMMEDIATE, 1)

        self.by_topic = {}
        for sym in self.symbols:
            topic = wire.tick_topic(sym)
            self.ticks.setsockopt(zmq.SUBSCRIBE, topic)
            self.by_topic[topic] = _Traded(sym)
        self.ticks.setsockopt(zmq.SUBSCRIBE, wire.HEARTBEAT_TOPIC)
        self._connect(self.ticks, cfg.endpoints["ticks"])
        self.order_topics = set()
        for sym in self.symbols:
            t = wire.order_topic(sym)
            self.order_topics.add(t)
            self.events.setsockopt(zmq.SUBSCRIBE, t)
        self.pos_topic = wire.position_topic(self.group.name)
        self.events.setsockopt(zmq.SUBSCRIBE, self.pos_topic)
        self.group_prefix = self.group.name + "."
        self._subscribe_acks(self.shard, self.journal)
        self._connect(self.events, cfg.endpoints["order_events"])
        self.monitors = [SocketMonitor(self.ticks, cfg.endpoints["ticks"]),
                         SocketMonitor(self.events, cfg.endpoints["order_events"])]
        self._connect(self.signals, cfg.endpoints["signals"])

        self._report_replay(self.journal)
        self.outbox.restore(now)
        for sid in self.outbox.pending:
            self._order_open(sid)
        self.rewrite_owed = bool(self.journal.replay.unreadable)
        if not self._ensure_boot_record():
            self._journal_write_failed(self.journal, "compact" if self.rewrite_owed else "write (boot record)")
            self._stop_emitting(now)
        self._adopt_departed(now)
        self.last_stats_ns = now
        # The C++ strategy program's start-up line, word for word.
        log.info("%d of %d of group %s (%s) trading [%s], boot %d, %d pending signal(s) restored from %s", self.shard,
                 self.shards, self.group.name, self.group.kind, ",".join(self.symbols), self.ids.boot_ms,
                 len(self.outbox), self.journal.path)
        if not self.symbols:
            log.warning("no instrument hashes to shard %d of %d: nothing to trade", self.shard, self.shards)
        self.started = True
        # A scrape before the first stats interval sees zeros, not a 503.
        self._check_disk(now)
        self._publish_metrics()

    def _connect(self, sock, endpoint):
        sec = self.cfg.security
        if sec.get("curve") and endpoint.startswith("tcp://"):
            sock.curve_serverkey = read_key_file(sec["server_public_key"], "server_public_key").encode()
            sock.curve_publickey = read_key_file(sec["client_public_key"], "client_public_key").encode()
            sock.curve_secretkey = read_key_file(sec["client_secret_key"], "client_secret_key", True).encode()
        sock.connect(endpoint)

    def _subscribe_ack_topic(self, topic: bytes):
        if topic not in self.ack_topics:
            self.ack_topics.add(topic)
            self.events.setsockopt(zmq.SUBSCRIBE, topic)

    def _subscribe_acks(self, shard, journal):
        # The executor acks on the topic the signal names: a journal written
        # under another group name still hears its acks.
        self._subscribe_ack_topic(wire.ack_topic(self.group.name, shard))
        for s in journal.replay.pending:
            self._subscribe_ack_topic(wire.ack_topic(s["strategy"], s["instance"]))

    # ---- dead letters ----

    def dead_letter(self, reason, detail, original=b""):
        now = self.now_ns()
        payload = wire.encode_dead_letter(f"{self.group.name}:{self.shard}", reason, detail, now, original)
        self.dead_letters_by_reason[reason] = self.dead_letters_by_reason.get(reason, 0) + 1
        try:
            self.dl.send(payload, zmq.NOBLOCK)
            self.dead_letters_sent += 1
        except zmq.Again:
            self.dead_letters_dropped += 1
        if self.limiter.allow("dl:" + reason, now):
            held = self.limiter.suppressed("dl:" + reason)
            log.warning("dead letter %s: %s%s", reason, detail[:300],
                        f" ({held} more of this reason held back)" if held else "")

    def _report_replay(self, journal):
        name = os.path.basename(journal.path)
        for bad in journal.replay.unreadable:
            self.journal_corrupt += 1
            detail = f"{name} offset {bad.offset}: unreadable record ({len(bad.raw)} bytes); "
            if not bad.signal_id:
                detail += "no signal id recoverable"
            elif bad.settled:
                detail += f"signal {bad.signal_id}, also readable or acked elsewhere in the journal"
            else:
                detail += f"signal {bad.signal_id} cannot be resent: its bytes are damaged"
            self.dead_letter("journal_corrupt", detail, bad.raw)
        torn = journal.replay.torn
        if torn is not None:
            self.journal_torn += 1
            if torn.signal_id and not torn.settled:
                self.dead_letter("journal_torn", f"{name} offset {torn.offset}: torn last record (a write cut short "
                                 f"by a crash; never sent), signal {torn.signal_id}; set aside in "
                                 f"{journal.torn_path}", torn.raw)

    # ---- journal state (as the C++ node: emission stops while it cannot be written) ----

    def _ensure_boot_record(self):
        if self.boot_journaled:
            return True
        ok = self.outbox.compact(self.ids.boot_ms) if self.rewrite_owed else self.journal.append_boot(self.ids.boot_ms)
        if ok:
            self.boot_journaled = True
            self.rewrite_owed = False
        return ok

    def _journal_write_failed(self, journal, what):
        self.journal_errors += 1
        self._write_failed(journal.path, what, journal.last_errno)
        now = self.now_ns()
        if self.limiter.allow("journal:" + journal.path, now):
            log.error("signal journal %s: %s failed: %s", journal.path, what,
                      os.strerror(journal.last_errno) if journal.last_errno else "failed")

    def _stop_emitting(self, now):
        if self.emitting:
            self.emission_stops += 1
        self.emitting = False
        err = self.journal.last_errno
        self.journal_error = (f"cannot write {os.path.basename(self.journal.path)}: "
                              f"{os.strerror(err) if err else 'failed'}")
        self.next_probe_ns = now + JOURNAL_PROBE_NS

    def _write_failed(self, path, what, err):
        """A failed write of `path`, for the stats' write_failures and
        files_failing (as the C++ WriteFailures)."""
        self.write_failures += 1
        self.files_failing[path] = f"{what}: {os.strerror(err) if err else 'failed'}"

    def _check_disk(self, now):
        try:
            st = os.statvfs(self.cfg.run_dir)
        except OSError:
            return  # gone or unreadable: nothing to say about space
        self.disk_free_bytes = st.f_bavail * st.f_frsize
        if self.disk_free_bytes < self.cfg.min_free_bytes and self.limiter.allow("disk_low", now):
            log.warning("low disk space: %s has %d bytes free, below run.min_free_bytes %d; writes may fail",
                        self.cfg.run_dir, self.disk_free_bytes, self.cfg.min_free_bytes)

    def _journal_ok(self):
        self.files_failing.pop(self.journal.path, None)
        if not self.emitting:
            self.emitting = True
            self.journal_error = ""
            log.info("signal journal %s writable again: emitting signals again (%d dropped unjournaled so far)",
                     self.journal.path, self.signals_not_journaled)

    def _probe_journal(self, now):
        if self.emitting or now < self.next_probe_ns:
            return
        ok = self.journal.append_boot(self.ids.boot_ms) if self.boot_journaled else self._ensure_boot_record()
        if ok:
            self._journal_ok()
        else:
            self._journal_write_failed(self.journal, "write (probe)")
            self._stop_emitting(now)

    # ---- emitting ----

    def _read_order_defaults(self, group, cfg):
        # The group's order settings (scripts/tp_supervisor/settings.py, held
        # equal to the C++ reading): read with their documented defaults so
        # that a group read by an older settings module still trades market IOC.
        self.default_order_type = str(getattr(group, "order_type", None) or api.MARKET).lower()
        self.default_tif = str(getattr(group, "time_in_force", None) or api.IOC).lower()
        self.limit_offset_bps = float(getattr(group, "limit_offset_bps", 0) or 0)
        self.default_good_till_ms = int(getattr(group, "good_till_ms", 0) or 0)  # 0: the signal's TTL
        self.order_settings = {"order_type": self.default_order_type, "time_in_force": self.default_tif,
                               "limit_offset_bps": self.limit_offset_bps, "good_till_ms": self.default_good_till_ms,
                               "cancel_after_ms": int(getattr(group, "cancel_after_ms", 0) or 0)}

    def resolve_terms(self, order_type, limit_price, time_in_force, good_till_ms, side, price, now, ttl_ns):
        """(order_type, limit_price, time_in_force, good_till_ns) as wire
        numbers for a request's terms over the group's defaults, or a str:
        why they are refused. A GTD order without a good-till time of its own
        nor the group's is good till the signal expires (now + ttl_ns)."""
        # The C++ StrategyNode's checks in its order and words (the log's).
        ot = str(order_type).lower() if order_type is not None else self.default_order_type
        code = wire.ORDER_TYPE_CODES.get(ot)
        if code is None:
            return "order_type is neither market nor limit"
        market = code == wire.MARKET
        if time_in_force is not None:
            tif_code = wire.TIME_IN_FORCE_CODES.get(str(time_in_force).lower())
        else:
            # A market order is IOC whatever the group's limit orders do.
            tif_code = wire.IOC if market else wire.TIME_IN_FORCE_CODES.get(self.default_tif)
        if tif_code is None:
            return "time_in_force is none of ioc, gtc, gtd"
        if market and tif_code != wire.IOC:
            return "a market order is immediate-or-cancel (time_in_force gtc or gtd needs order_type limit)"
        try:
            lp = float(limit_price) if limit_price else 0.0
            good_till_ms = int(good_till_ms) if good_till_ms else 0
        except (TypeError, ValueError):
            return "limit_price and good_till_ms must be numbers"
        if market:
            if lp:
                return "limit_price is for limit orders"
        elif not lp:
            # Positive bps is passive: below the trigger for a buy, above for a sell.
            off = self.limit_offset_bps / 1e4
            lp = price * (1 - off) if side == api.BUY else price * (1 + off)
        if not market and not 0 < lp < math.inf:
            return "limit_price must be > 0"
        if good_till_ms < 0:
            return "good_till_ms must be >= 0"
        good_till_ns = 0
        if tif_code == wire.GTD:
            ms = good_till_ms or self.default_good_till_ms
            good_till_ns = now + (min(ms, 1 << 40) * NS_PER_MS if ms else ttl_ns)
        elif good_till_ms:
            return "good_till_ms is for time_in_force gtd"
        why = wire.check_terms(code, lp, tif_code, good_till_ns)
        return why if why else (code, lp, tif_code, good_till_ns)

    def emit(self, instrument, side, quantity, confidence, ttl_ms, trigger_price, order_type=None, limit_price=0.0,
             time_in_force=None, good_till_ms=0):
        now = self.now_ns()
        if side in ("BUY", "buy"):
            side = api.BUY
        elif side in ("SELL", "sell"):
            side = api.SELL
        problem = None
        inst = self.by_topic.get(wire.tick_topic(instrument)) if isinstance(instrument, str) else None
        if inst is None:
            problem = f'instrument "{instrument}" is not one this instance trades ({",".join(self.symbols)})'
        elif side != api.BUY and side != api.SELL:
            problem = f"side {side!r} is neither BUY nor SELL"
        else:
            tick = inst.tick
            q = float(quantity) if quantity else self.group.quantity
            if not (0 < q < math.inf):
                problem = "quantity must be > 0"
            elif ttl_ms < 0:
                problem = "ttl_ms must be >= 0"
            elif not inst.have_tick and not trigger_price:
                problem = f"no price for {inst.symbol} yet"
            else:
                price = float(trigger_price) if trigger_price else (tick.ask if side == api.BUY else tick.bid)
                if not (0 < price < math.inf):
                    problem = "trigger_price must be > 0"
                else:
                    ttl = min(int(ttl_ms) * NS_PER_MS if ttl_ms else self.ttl_ns, (1 << 40) * NS_PER_MS)
                    terms = self.resolve_terms(order_type, limit_price, time_in_force, good_till_ms, side, price,
                                               now, ttl)
                    if isinstance(terms, str):
                        problem = terms
        if problem:
            self.signals_refused += 1
            if self.limiter.allow("emit_refused", now):
                log.warning("%s: signal refused: %s (%d more refusals not logged)", self.name, problem,
                            self.limiter.suppressed("emit_refused"))
            return ""
        ok = self._emit_ok_in_tick
        if not (self.feed.alive(now) if ok is None else ok and self.feed.alive(now)):
            # Trading on a price from across an outage is worse than not trading.
            self.signals_suppressed += 1
            return ""
        # Here, for every strategy and whether it emits from on_tick or a
        # timer: the backlog a paused process or a returning link delivers
        # moves the indicators, but its prices are not the market's now.
        if inst.have_tick and not tradeable(tick.gateway_ts_ns, now, self.max_signal_age_ns):
            self.signals_stale += 1
            if self.limiter.allow("emit_stale", now):
                log.warning("%s: no signal from a tick %d ms old (max_signal_tick_age_ms %d; %d more not logged)",
                            self.name, (now - tick.gateway_ts_ns) // NS_PER_MS, self.cfg.max_signal_tick_age_ms,
                            self.limiter.suppressed("emit_stale"))
            return ""
        c = float(confidence)
        if not math.isfinite(c):
            c = 0.0
        c = 0.0 if c < 0 else 1.0 if c > 1 else c
        sid = self.ids.next()
        payload = wire.encode_signal(sid, self.group.name, self.shard, inst.symbol, side, q, price, c, now,
                                     now + ttl, tick.seq if inst.have_tick else 0,
                                     tick.gateway_ts_ns if inst.have_tick else 0, *terms)
        # Journal first: a crash between the two resends it; the other order
        # could lose a signal the executor acted on.
        if not self._ensure_boot_record():
            self._journal_write_failed(self.journal, "compact" if self.rewrite_owed else "write (boot record)")
            self._stop_emitting(now)
            self.signals_not_journaled += 1
            return ""
        if not self.outbox.add(sid, payload, now + ttl, now):
            self._journal_write_failed(self.journal, "write (signal record)")
            self._stop_emitting(now)
            self.signals_not_journaled += 1
            return ""
        self._journal_ok()
        self.signals_emitted += 1
        self._order_open(sid)
        self._send(payload)
        return sid

    # ---- orders: which are open, cancels ----

    def _order_open(self, sid):
        if sid in self.open_orders or sid in self.final_orders:
            return
        self.open_orders[sid] = None
        if len(self.open_orders) > OPEN_MEMORY:
            self.open_orders.pop(next(iter(self.open_orders)))

    def _order_final(self, sid):
        """The order of `sid` will not change again (or never existed): no
        longer cancelable, and a cancel still pending has nothing left to do."""
        self.final_orders[sid] = None
        if len(self.final_orders) > ORDER_MEMORY:
            self.final_orders.pop(next(iter(self.final_orders)))
        self._order_forgotten(sid)

    def _order_forgotten(self, sid):
        self.open_orders.pop(sid, None)
        if self.cancels.pop(sid, None) is not None:
            self.cancels_overtaken += 1

    def _signal_pending(self, sid):
        if sid in self.outbox.pending:
            return True
        return any(sid in a.outbox.pending for a in self.adopted)

    def cancel_order(self, sid, reason=""):
        # Open: emitted or restored by this instance, or seen in a non-final
        # ORDER event (an order of an earlier run becomes cancelable with its
        # first event after the restart), and not seen final since.
        if not isinstance(sid, str) or sid not in self.open_orders:
            self.cancels_not_open += 1
            return False
        if sid in self.cancels:
            return True  # already on its way
        now = self.now_ns()
        c = _Cancel(sid, wire.encode_cancel(sid, self.group.name, self.shard, str(reason), now),
                    self._signal_pending(sid))
        self.cancels[sid] = c
        if not c.held:
            self._send_cancel(c, now)
        return True

    def _send_cancel(self, c, now):
        # Sent or not (no executor, a full queue), it is tried again every
        # resend_ms: a cancel is over only when acked or its order is final.
        if c.sent:
            self.cancels_resent += 1
        else:
            self.cancels_sent += 1
        c.sent = True
        c.next_ns = now + self.resend_ns
        self._send(c.payload, cancel=True)

    def _release_cancel(self, sid):
        """The signal is acked: its held cancel may follow it now."""
        c = self.cancels.get(sid)
        if c is not None and c.held:
            c.held = False
            self._send_cancel(c, self.now_ns())

    def _resend_cancels(self, now):
        for c in self.cancels.values():
            if c.held:
                if self._signal_pending(c.signal_id):
                    continue
                c.held = False  # settled in a way no ack told (e.g. adopted, compacted)
            elif now < c.next_ns:
                continue
            self._send_cancel(c, now)

    def _on_cancel_ack(self, sid, status, reason):
        c = self.cancels.pop(sid, None)
        if c is None:
            self.cancel_acks_unmatched += 1  # the ack of a resend, or of a cancel the order's end settled
            return
        if status == 3:
            self.cancels_refused += 1
            if self.limiter.allow("cancel_refused", self.now_ns()):
                log.warning("%s: cancel of %s refused: %s (%d more refusals not logged)", self.name, sid, reason,
                            self.limiter.suppressed("cancel_refused"))
        else:
            self.cancels_acked += 1

    def _send(self, payload, cancel=False):
        try:
            self.signals.send(payload, zmq.NOBLOCK)
            return True
        except zmq.ZMQError as e:
            # Stays pending: the resend scan tries again.
            if cancel:
                self.cancel_send_would_block += 1
            else:
                self.send_would_block += 1
            if not isinstance(e, zmq.Again) and self.limiter.allow("send", self.now_ns()):
                log.warning("signal send failed: %s", e)
            return False

    # ---- timers ----

    def add_timer(self, period_ms, wall_ns, fn):
        self.next_timer_id += 1
        tid = self.next_timer_id
        mono = time.monotonic_ns()
        if period_ms is not None:
            if period_ms <= 0:
                raise ValueError("every(): period_ms must be > 0")
            period = period_ms * NS_PER_MS
            due = mono + period
        else:
            period = None
            due = mono + max(0, wall_ns - self.now_ns())
        self.timer_fns[tid] = (period, fn)
        heapq.heappush(self.timers, (due, tid))
        return tid

    def cancel_timer(self, tid):
        self.timer_fns.pop(tid, None)

    def _run_user_timers(self, mono):
        timers = self.timers
        while timers and timers[0][0] <= mono:
            due, tid = heapq.heappop(timers)
            entry = self.timer_fns.get(tid)
            if entry is None:
                continue
            period, fn = entry
            if period is None:
                del self.timer_fns[tid]
            else:
                heapq.heappush(timers, (max(due + period, mono), tid))
            self._call(fn, "timer")

    def _call(self, fn, what, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a strategy's bug must not end the instance
            self._strategy_error(what, e)

    def _strategy_error(self, what, e):
        # As the C++ runtime's guarded(): counted, dead-lettered strategy_error.
        self.strategy_errors += 1
        self.dead_letter("strategy_error", f"{self.group.name} (python {type(self.strategy).__name__}) threw from "
                         f"{what}: {type(e).__name__}: {e}")
        if self.limiter.allow("strategy:" + what, self.now_ns()):
            log.exception("strategy %s raised", what)

    # ---- feed ----

    def _feed_event(self, kind, instrument="", missed=0):
        self._call(self.strategy.on_feed, "on_feed", api.FeedEvent(kind, instrument, missed))

    def _check_feed(self, now):
        alive = self.feed.alive(now)
        if alive != self.feed_reported_alive:
            self.feed_reported_alive = alive
            if not alive:
                log.warning("feed dead: no tick nor heartbeat within max_tick_age_ms for feed_timeout_ms (%d ms; "
                            "%d heartbeats refused so far): no signal until it is alive", self.cfg.feed_timeout_ms,
                            self.heartbeats_refused)
            else:
                log.info("feed alive")
            self._feed_event(api.ALIVE if alive else api.DEAD)

    def _on_ticks(self):
        """Drains the tick socket (at most MAX_BATCH messages). The hot path:
        locals bound once, msgpack's list read in place, the Tick reused."""
        sock = self.ticks
        recv = sock.recv
        more = sock.get  # RCVMORE by its number: recv_multipart costs ~2x (sugar, enum lookups)
        RCVMORE = int(zmq.RCVMORE)
        NOBLOCK = zmq.NOBLOCK
        by_topic = self.by_topic
        unpackb = wire.unpackb
        now_ns = self.now_ns
        feed = self.feed
        timeout = feed.timeout_ns
        max_age, max_skew = self.max_tick_age_ns, self.max_skew_ns
        on_tick = self.strategy.on_tick
        ring, mask = self.latency_ring, LATENCY_SAMPLES - 1
        bucket_of, latency_bounds = bisect.bisect_left, LATENCY_BOUNDS_NS
        latency_counts = self.latency_counts if self.metrics is not None else None
        latency_sum = 0  # added to self.latency_sum_ns once per batch
        lag_min = self.lag_min  # the window's smallest (receipt - stamp), kept in self.lag_min once per batch
        I64_MAX, U64_MAX = wire.I64_MAX, wire.U64_MAX
        INF = math.inf
        num = (float, int)
        n = 0
        for _ in range(MAX_BATCH):
            try:
                topic = recv(NOBLOCK)
            except zmq.Again:
                break
            n += 1
            # The frames of one message arrive together: no Again past the first.
            if not more(RCVMORE):
                self.dead_letter("bad_frames", "feed message with 1 frames, expected 2", topic)
                continue
            payload = recv(NOBLOCK)
            if more(RCVMORE):
                extra = 2
                while more(RCVMORE):
                    recv(NOBLOCK)
                    extra += 1
                self.dead_letter("bad_frames", f"feed message with {extra} frames, expected 2",
                                 topic + b"|" + payload)
                continue
            inst = by_topic.get(topic)
            if inst is None:
                if topic == b"HB.gateway":
                    self._on_heartbeat(payload)
                else:
                    # SUB filters are prefixes: TICK.EURUSDX passes TICK.EURUSD.
                    self.wrong_topic += 1
                continue
            try:
                obj = unpackb(payload)
            except Exception:  # noqa: BLE001 - the slow path names the reason
                obj = None
            # Fast path: a well-formed tick of this topic's instrument, read
            # from msgpack's list in one unpacking (ZMQ_MAXMSGSIZE already
            # bounds the payload at 64 KiB).
            if type(obj) is list and len(obj) >= 10:
                tid, ver, sym, bid, ask, bv, av, sts, seq, gts = obj[:10]
                fast = (tid == 1 and ver == 1 and sym == inst.symbol and type(bid) in num and type(ask) in num
                        and type(bv) in num and type(av) in num and type(sts) is int and type(seq) is int
                        and type(gts) is int and 0 < bid <= ask < INF and 0 <= bv < INF and 0 <= av < INF
                        and 0 < seq <= U64_MAX and sts <= I64_MAX and gts <= I64_MAX)
            else:
                fast = False
            if not fast:
                try:
                    if obj is None:
                        wire.unpack(payload)  # raises with the reason
                        raise wire.WireError("malformed", "cannot be read")
                    sym, bid, ask, bv, av, sts, seq, gts = wire.check_tick(wire.unpack(payload))
                except wire.WireError as e:
                    self.dead_letter(e.reason, e.detail, payload)
                    continue
                if sym != inst.symbol:
                    self.dead_letter("topic_mismatch", f"topic TICK.{inst.symbol} carries a tick of {sym}", payload)
                    continue
            now = now_ns()
            ahead = gts - now
            if ahead > max_skew or ahead < -max_age:
                self._refuse_timestamp(gts, ahead, payload)
                continue
            tracker = inst.seq
            last = tracker.last
            gaps_before = tracker.gaps
            if seq == last + 1 and not tracker.restart_pending and tracker.seen:
                tracker.last = seq  # the common case of SeqTracker.on_seq, inline
                verdict = ACCEPT
            else:
                verdict = tracker.on_seq(seq)
            if verdict == STALE:
                if seq == last:
                    self.dead_letter("duplicate_seq", f"seq {seq} of {inst.symbol} seen already", payload)
                else:
                    self.dead_letter("out_of_order", f"seq {seq} of {inst.symbol} after {last}", payload)
                continue
            self.ticks_received += 1
            if now - gts < lag_min:
                lag_min = now - gts
            if now >= gts:
                latency = now - gts
                ring[self.latency_n & mask] = latency
                self.latency_n += 1
                if latency_counts is not None:
                    latency_counts[bucket_of(latency_bounds, latency)] += 1
                    latency_sum += latency
            was_alive = feed.seen and now - feed.last_ns <= timeout
            feed.last_ns = now
            feed.seen = True
            if verdict == RESTART:
                self.feed_restarts += 1
                self._feed_event(api.RESTARTED, inst.symbol)
            elif tracker.gaps != gaps_before:
                self.gap_events += 1
                self._feed_event(api.GAP, inst.symbol, tracker.gaps - gaps_before)
            if not self.feed_reported_alive:
                self._check_feed(now)
            t = inst.tick
            t.bid = bid if type(bid) is float else float(bid)
            t.ask = ask if type(ask) is float else float(ask)
            t.bid_volume = bv if type(bv) is float else float(bv)
            t.ask_volume = av if type(av) is float else float(av)
            t.source_ts_ns = sts
            t.gateway_ts_ns = gts
            t.seq = seq
            inst.have_tick = True
            # A tick that ends a dead spell still reaches the strategy (its
            # indicators), but no signal may come from it.
            self._emit_ok_in_tick = was_alive
            try:
                on_tick(t)
            except Exception as e:  # noqa: BLE001 - a strategy's bug must not end the instance
                self._strategy_error("on_tick", e)
            self._emit_ok_in_tick = None
        self.latency_sum_ns += latency_sum
        self.lag_min = lag_min
        return n

    def _refuse_timestamp(self, gts, ahead, payload):
        if ahead > self.max_skew_ns:
            self.dead_letter("future_timestamp", f"gateway_ts_ns {gts} is {ahead // NS_PER_MS} ms ahead of this "
                             f"host's clock (max_clock_skew_ms {self.cfg.max_clock_skew_ms})", payload)
        else:
            self.dead_letter("stale", f"gateway_ts_ns {gts} is {-ahead // NS_PER_MS} ms old (max_tick_age_ms "
                             f"{self.cfg.max_tick_age_ms})", payload)

    def _on_heartbeat(self, payload):
        try:
            seq, ts, ticks_sent = wire.decode_heartbeat(payload)
        except wire.WireError as e:
            self.dead_letter(e.reason, e.detail, payload)
            return
        self.heartbeats += 1
        now = self.now_ns()
        # Aged as a tick is: a gateway whose ticks are all refused must not
        # be kept alive by its heartbeats (its clock far behind, a backlog).
        if not self.feed.on_message(now, judge_stamp(ts, now, self.max_tick_age_ns, self.max_skew_ns)):
            self.heartbeats_refused += 1
            if self.limiter.allow("heartbeat_refused", now):
                log.warning("%s: heartbeat stamped %d ms from this host's clock refused (max_tick_age_ms %d, "
                            "max_clock_skew_ms %d): it does not keep the feed alive (%d more not logged)", self.name,
                            (ts - now) // NS_PER_MS, self.cfg.max_tick_age_ms, self.cfg.max_clock_skew_ms,
                            self.limiter.suppressed("heartbeat_refused"))
        # A gateway process counts heartbeats and ticks from zero: going
        # backwards means a new process, whose tick seqs start again too.
        if self.last_hb is not None and (seq < self.last_hb[0] or ticks_sent < self.last_hb[1]):
            log.info("gateway restarted (heartbeat seq %d after %d): new tick series", seq, self.last_hb[0])
            # Each instrument's next tick starts its new series and tells the
            # strategy (RESTARTED with the instrument), as in the C++ runtime.
            for inst in self.by_topic.values():
                inst.seq.expect_restart()
        self.last_hb = (seq, ticks_sent)
        if not self.feed_reported_alive:
            self._check_feed(now)

    # ---- acks, orders, positions ----

    def _on_events(self):
        recv = self.events.recv_multipart
        n = 0
        for _ in range(MAX_BATCH):
            try:
                frames = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            if len(frames) != 2:
                self.dead_letter("bad_frames", f"event message with {len(frames)} frames, expected 2",
                                 b"|".join(frames[:2]))
                continue
            topic, payload = frames
            try:
                if topic in self.ack_topics:
                    self._on_ack(payload)
                elif topic in self.order_topics:
                    self._on_order_event(payload)
                elif topic == self.pos_topic:
                    self._on_position(payload)
                else:
                    self.wrong_topic += 1  # "ACK.g.1" is a prefix of "ACK.g.10"
            except wire.WireError as e:
                self.dead_letter(e.reason, e.detail, payload)
        return n

    def _ack_in(self, outbox, sid):
        failed_before = outbox.journal.failed_writes
        matched = outbox.ack(sid)
        if outbox.journal.failed_writes != failed_before:
            self.acks_not_journaled += 1
            self._journal_write_failed(outbox.journal, "write (ack record)")
        return matched

    def _on_ack(self, payload):
        sid, status, reason, cancel = wire.decode_ack(payload)
        if cancel:
            self._on_cancel_ack(sid, status, reason)
            return
        pending = self.outbox.pending.get(sid)
        matched = self._ack_in(self.outbox, sid)
        for a in self.adopted:
            if matched:
                break
            pending = a.outbox.pending.get(sid)
            matched = self._ack_in(a.outbox, sid)
        if not matched:
            self.acks_unmatched += 1  # an ack for a resend that was already acked
            return
        self.signals_acked += 1
        if status != 3:
            self._release_cancel(sid)
        else:
            self._order_final(sid)  # refused: no order to cancel
            s = decode_signal(pending.payload) if pending is not None else None
            self.order_updates += 1
            self._call(self.strategy.on_order, "on_order", api.OrderUpdate(
                signal_id=sid, instrument=s["instrument"] if s else "", side=s["action"] if s else api.BUY,
                status=api.REJECTED, quantity=float(s["quantity"]) if s else 0.0, reason=reason,
                event_ts_ns=self.now_ns(), refused=True))

    def _on_order_event(self, payload):
        e = wire.decode_order_event(payload)
        sid = e["signal_id"]
        if not sid.startswith(self.group_prefix) or e["instrument"] not in self.symbol_set:
            return  # another group's order on our instrument
        # Cumulative fills of any status: an IOC rest CANCELED, a GTD order
        # EXPIRED, keep what they filled first.
        if e["filled_quantity"] > 0:
            counted = self.fills_counted.get(sid, 0.0)
            delta = e["filled_quantity"] - counted
            if delta > 0:
                p = self.positions.setdefault(e["instrument"], [0.0, False])
                p[0] += delta if e["side"] == api.BUY else -delta
                self.fills_counted[sid] = e["filled_quantity"]
                if len(self.fills_counted) > ORDER_MEMORY:
                    self.fills_counted.pop(next(iter(self.fills_counted)))
        if e["status"] in api.FINAL_STATUSES:
            self._order_final(sid)
        else:
            self._order_open(sid)
        self.order_updates += 1
        self._call(self.strategy.on_order, "on_order", api.OrderUpdate(
            signal_id=sid, instrument=e["instrument"], order_id=e["order_id"], side=e["side"], status=e["status"],
            quantity=e["quantity"], filled_quantity=e["filled_quantity"], fill_price=e["fill_price"],
            reason=e["reason"], event_ts_ns=e["event_ts_ns"]))

    def _on_position(self, payload):
        group, inst, qty, _ts = wire.decode_position(payload)
        if group != self.group.name or inst not in self.symbol_set:
            return
        self.position_reports += 1
        # The report includes every fill published before it (same PUB socket,
        # in order): fills after it add to it.
        self.positions[inst] = [qty, True]

    # ---- outboxes: resend, give up, compact, adopt ----

    def _give_up_due(self, outbox, now, origin):
        failed_before = outbox.journal.failed_writes
        given_up = outbox.give_up(now)
        failed = outbox.journal.failed_writes - failed_before
        if failed:
            self.give_ups_not_journaled += failed
            self._journal_write_failed(outbox.journal, "write (give-up record)")
        for p in given_up:
            self.signals_given_up += 1
            # As far as this process knows, no order came of it; an ORDER
            # event that says otherwise makes it open again.
            self._order_forgotten(p.signal_id)
            self.dead_letter("unacked", f"no ack {self.give_up_ns // NS_PER_MS} ms after expiry for "
                             f"{p.signal_id}{origin}", p.payload)

    def _compact(self, outbox, boot_ms, now):
        if outbox.compact(boot_ms):
            if outbox.journal is self.journal:
                self.boot_journaled = True
                self.rewrite_owed = False
                self._journal_ok()
            return True
        self.compactions_failed += 1
        self.next_compact_ns = now + COMPACT_RETRY_NS
        self._journal_write_failed(outbox.journal, "compact")
        return False

    def _scan_outboxes(self, now):
        send = lambda p: self._send(p.payload)  # noqa: E731
        self.signals_resent += self.outbox.resend_due(now, send)
        if self.outbox.owed:
            self.outbox.retry_owed()
        self._give_up_due(self.outbox, now, "")
        if now >= self.next_compact_ns and self.boot_journaled and self.journal.should_compact():
            if self._compact(self.outbox, self.ids.boot_ms, now):
                log.info("signal journal %s compacted to %d pending (%d bytes)", self.journal.path, len(self.outbox),
                         self.journal.size)
        for a in self.adopted:
            self.signals_resent += a.outbox.resend_due(now, send)
            if a.outbox.owed:
                a.outbox.retry_owed()
            self._give_up_due(a.outbox, now, f" (adopted from {a.journal.path})")
            if now < self.next_compact_ns:
                continue
            boot = a.journal.replay.last_boot_ms
            if not a.outbox.pending and not a.compacted_empty:
                a.compacted_empty = self._compact(a.outbox, boot, now)
                if a.compacted_empty:
                    log.info("adopted signal journal %s settled: compacted", a.journal.path)
            elif a.journal.should_compact():
                self._compact(a.outbox, boot, now)
        if self.cancels:
            self._resend_cancels(now)

    def _journal_shard(self, name):
        m = re.fullmatch(re.escape(self.group.name) + r"-(0|[1-9][0-9]{0,9})\.journal", name)
        return int(m.group(1)) if m else None

    def _adopt_departed(self, now):
        found = []
        try:
            names = os.listdir(self.cfg.run_dir)
        except OSError:
            return
        held = {a.shard for a in self.adopted}
        for name in names:
            j = self._journal_shard(name)
            if j is None or j < self.shards or j % self.shards != self.shard or j in held:
                continue
            found.append((j, os.path.join(self.cfg.run_dir, name)))
        for j, path in sorted(found):
            try:
                journal = SignalJournal(path, DEFAULT_COMPACT_BYTES, SignalJournal.ADOPT)
            except JournalLocked as e:
                self.journal_locked += 1
                if self.limiter.allow("adopt_locked", now):
                    log.warning("%s; not adopted yet, trying again every %d ms", e, ADOPT_SCAN_NS // NS_PER_MS)
                continue
            except Exception as e:  # noqa: BLE001
                if self.limiter.allow("adopt_failed", now):
                    log.error("cannot adopt %s: %s; trying again every %d ms", path, e, ADOPT_SCAN_NS // NS_PER_MS)
                continue
            self._report_replay(journal)
            outbox = SignalOutbox(journal, self.resend_ns, self.give_up_ns)
            outbox.restore(now)
            for sid in outbox.pending:
                self._order_open(sid)
            self._subscribe_acks(j, journal)
            a = _Adopted(j, journal, outbox)
            log.info("adopted %s of departed shard %d (now %d shards): %d pending signal(s) to resend", path, j,
                     self.shards, len(outbox))
            r = journal.replay
            if r.unreadable or (not outbox.pending and r.records > 1):
                self._compact(outbox, r.last_boot_ms, now)
            a.compacted_empty = not outbox.pending
            self.adopted.append(a)

    def signals_pending(self):
        return len(self.outbox) + sum(len(a.outbox) for a in self.adopted)

    # ---- stats ----

    def stats(self):
        now = self.now_ns()
        if now > self.last_stats_ns:
            self.ticks_per_s = (self.ticks_received - self.ticks_at_last_stats) * 1e9 / (now - self.last_stats_ns)
            self.ticks_at_last_stats = self.ticks_received
            self.last_stats_ns = now
        insts = list(self.by_topic.values())
        n = min(self.latency_n, LATENCY_SAMPLES)
        lat = sorted(self.latency_ring[:n])
        pct = (lambda q: lat[min(n - 1, int(q * n))] / 1e3) if n else (lambda q: 0.0)
        pending = self.signals_pending()
        o = {
            "program": self.name, "pid": os.getpid(), "ts_ns": now,
            "runtime": "python",
            "shard": self.shard, "shards": self.shards,
            "strategy": self.group.name, "group": self.group.name, "kind": self.group.kind,
            "entry": f"{type(self.strategy).__module__}:{type(self.strategy).__name__}",
            "instruments": ",".join(self.symbols),
            "ticks_received": self.ticks_received,
            "ticks_per_s": round(self.ticks_per_s, 3),
            "heartbeats": self.heartbeats,
            "heartbeats_refused": self.heartbeats_refused,
            "gaps": sum(i.seq.gaps for i in insts),
            "out_of_order": sum(i.seq.out_of_order for i in insts),
            "feed_restarts": self.feed_restarts,
            "wrong_topic": self.wrong_topic,
            "signals_emitted": self.signals_emitted,
            "signals_suppressed": self.signals_suppressed,
            "signals_stale": self.signals_stale,
            "signals_refused": self.signals_refused,
            "signals_acked": self.signals_acked,
            "signals_resent": self.signals_resent,
            "signals_pending": pending,
            "adopted_pending": pending - len(self.outbox),
            "journals_adopted": len(self.adopted),
            "adopted_shards": ",".join(str(a.shard) for a in sorted(self.adopted, key=lambda a: a.shard)),
            "signals_given_up": self.signals_given_up,
            "send_would_block": self.send_would_block,
            "acks_unmatched": self.acks_unmatched,
            "orders_open": len(self.open_orders),
            "cancels_sent": self.cancels_sent,
            "cancels_acked": self.cancels_acked,
            "cancels_refused": self.cancels_refused,
            "cancels_resent": self.cancels_resent,
            "cancels_pending": len(self.cancels),
            "cancels_overtaken": self.cancels_overtaken,
            "cancels_not_open": self.cancels_not_open,
            "cancel_acks_unmatched": self.cancel_acks_unmatched,
            "cancel_send_would_block": self.cancel_send_would_block,
            "emitting": self.emitting,
            "journal_state": "ok" if self.emitting else "write_failed",
            "signals_not_journaled": self.signals_not_journaled,
            "acks_not_journaled": self.acks_not_journaled,
            "settlements_owed": len(self.outbox.owed),
            "give_ups_not_journaled": self.give_ups_not_journaled,
            "journal_compactions_failed": self.compactions_failed,
            "emission_stops": self.emission_stops,
            "journal_errors": self.journal_errors,
            "journal_bytes": self.journal.size,
            "journal_corrupt": self.journal_corrupt,
            "journal_torn": self.journal_torn,
            "journal_locked": self.journal_locked,
            "feed_alive": self.feed.alive(now),
            "strategy_errors": self.strategy_errors,
            "order_updates": self.order_updates,
            "position_reports": self.position_reports,
            "positions": {k: v[0] for k, v in sorted(self.positions.items())},
            "dead_letters": self.dead_letters_sent + self.dead_letters_dropped,
            "dead_letters_by_reason": dict(sorted(self.dead_letters_by_reason.items())),
            "tick_latency_us": {"p50": pct(0.5), "p99": pct(0.99), "count": self.latency_n},
            "clock_lag_min_ms": {} if self.lag_last is None else {"gateway": self.lag_last / 1e6},
        }
        o["connections_dropped"] = sum(m.dropped for m in self.monitors)
        o["handshakes_failed"] = sum(m.handshakes_failed for m in self.monitors)
        o["redials"] = sum(m.redials for m in self.monitors)
        o["write_failures"] = self.write_failures
        o["files_failing"] = dict(self.files_failing)
        o["disk_free_bytes"] = self.disk_free_bytes
        o["disk_floor_bytes"] = self.cfg.min_free_bytes
        o["disk_low"] = self.disk_free_bytes < self.cfg.min_free_bytes
        if not self.emitting:
            o["alert"] = "not emitting: " + self.journal_error
        return o

    def write_stats(self):
        if self.lag_min != NO_LAG:  # the window closes at each write
            self.lag_last, self.lag_min = self.lag_min, NO_LAG
        self._check_disk(self.now_ns())
        text = json.dumps(self.stats(), separators=(",", ":")) + "\n"
        tmp = self.stats_path + ".next"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.stats_path)
            self.files_failing.pop(self.stats_path, None)
            written = True
        except OSError as e:
            self._write_failed(self.stats_path, "write", e.errno)
            if self.limiter.allow("stats", self.now_ns()):
                log.error("cannot write %s: %s (the supervisor may take this program for HUNG)", self.stats_path, e)
            written = False
        # After the file: the snapshot shows the same figures, this write's failure included.
        self._publish_metrics()
        return written

    def _publish_metrics(self):
        if self.metrics is not None:
            self.metrics.publish(self.metrics_text(), self.now_ns())

    def metrics_text(self) -> str:
        """The stats' figures as Prometheus metrics, labelled program, process
        and group: the C++ StrategyNode::metrics_text()'s names, helps and
        order (tests/python_strategy/test_metrics_py.py holds the families
        equal), so that one dashboard and one set of alert rules serve both."""
        now = self.now_ns()
        insts = list(self.by_topic.values())
        pending = self.signals_pending()
        m = metrics.MetricsText([("program", "strategy"), ("process", self.name), ("group", self.group.name)])
        m.gauge("tp_strategy_info", "Always 1: the instance's runtime and strategy kind as labels.", 1,
                [("runtime", "python"), ("kind", self.group.kind)])
        m.gauge("tp_strategy_shards", "Instances of the group (this one's index is in the process label).",
                self.shards)
        m.gauge("tp_strategy_instruments", "Instruments this shard trades.", len(self.symbols))
        m.counter("tp_strategy_ticks_received_total", "Ticks accepted (in sequence, fresh, of our instruments).",
                  self.ticks_received)
        m.gauge("tp_strategy_ticks_per_second", "Ticks received per second over the last stats interval.",
                float(self.ticks_per_s))
        m.counter("tp_strategy_heartbeats_received_total", "Gateway heartbeats believed.", self.heartbeats)
        m.counter("tp_strategy_heartbeats_refused_total",
                  "Gateway heartbeats stamped too long ago or too far ahead (not keeping the feed alive).",
                  self.heartbeats_refused)
        m.counter("tp_strategy_sequence_gaps_total", "Ticks missed: gaps in the per-instrument sequence.",
                  sum(i.seq.gaps for i in insts))
        m.counter("tp_strategy_ticks_out_of_order_total", "Ticks dropped as duplicates or out of order.",
                  sum(i.seq.out_of_order for i in insts))
        m.counter("tp_strategy_feed_restarts_total", "Gateway restarts seen (heartbeat sequence going back).",
                  self.feed_restarts)
        m.counter("tp_strategy_wrong_topic_total", "Messages whose topic only starts with one of ours (ignored).",
                  self.wrong_topic)
        m.gauge("tp_strategy_feed_alive",
                "1 while a believed tick or heartbeat came within strategy.feed_timeout_ms.",
                bool(self.feed.alive(now)))
        m.counter("tp_strategy_signals_sent_total", "Signals journaled and sent a first time.", self.signals_emitted)
        m.counter("tp_strategy_signals_suppressed_total",
                  "Signals not sent: the feed was dead or its first tick after a dead spell.", self.signals_suppressed)
        m.counter("tp_strategy_signals_stale_total",
                  "Signals not sent: their tick older than strategy.max_signal_tick_age_ms.", self.signals_stale)
        m.counter("tp_strategy_signals_refused_total",
                  "Emit requests refused (not our instrument, bad terms, no price yet).", self.signals_refused)
        m.counter("tp_strategy_signals_acked_total", "Signals acknowledged by the executor.", self.signals_acked)
        m.counter("tp_strategy_signals_resent_total", "Signal sends after the first, no ack yet.", self.signals_resent)
        m.gauge("tp_strategy_signals_pending", "Signals sent and not yet acked, adopted journals included.", pending)
        m.gauge("tp_strategy_adopted_signals_pending", "Pending signals of departed shards' adopted journals.",
                pending - len(self.outbox))
        m.gauge("tp_strategy_journals_adopted", "Journals of departed shards this instance holds.", len(self.adopted))
        m.counter("tp_strategy_signals_given_up_total",
                  "Signals never acked, given up strategy.give_up_after_ms past expiry (dead-lettered).",
                  self.signals_given_up)
        m.counter("tp_strategy_signal_sends_blocked_total",
                  "Signal sends that could not go (no executor, its queue full); resent later.", self.send_would_block)
        m.counter("tp_strategy_acks_unmatched_total", "Acks of no pending signal (repeats).", self.acks_unmatched)
        m.counter("tp_strategy_errors_total", "Exceptions out of the strategy's callbacks (dead-lettered).",
                  self.strategy_errors)
        m.counter("tp_strategy_order_updates_total", "Order events and refusals told to the strategy.",
                  self.order_updates)
        m.counter("tp_strategy_position_reports_total", "Position reports of the group received.",
                  self.position_reports)
        m.gauge("tp_strategy_orders_open", "This instance's orders not known to be final.", len(self.open_orders))
        m.counter("tp_strategy_cancels_sent_total", "Cancel requests sent a first time.", self.cancels_sent)
        m.counter("tp_strategy_cancels_resent_total", "Cancel requests sent again, no ack yet.", self.cancels_resent)
        m.counter("tp_strategy_cancels_acked_total", "Cancels acked ACCEPTED or DUPLICATE.", self.cancels_acked)
        m.counter("tp_strategy_cancels_refused_total", "Cancels acked REJECTED.", self.cancels_refused)
        m.counter("tp_strategy_cancels_overtaken_total", "Cancels ended by their order's final event before an ack.",
                  self.cancels_overtaken)
        m.gauge("tp_strategy_cancels_pending", "Cancels sent or held and not yet acked.", len(self.cancels))
        m.counter("tp_strategy_cancels_not_open_total", "Cancels asked of an id that is no open order.",
                  self.cancels_not_open)
        m.counter("tp_strategy_cancel_acks_unmatched_total", "Cancel acks of no pending cancel (repeats).",
                  self.cancel_acks_unmatched)
        m.counter("tp_strategy_cancel_sends_blocked_total", "Cancel sends that could not go; resent later.",
                  self.cancel_send_would_block)
        m.gauge("tp_strategy_emitting", "1 while the journal takes writes: 0 means no new signal is sent.",
                bool(self.emitting))
        m.counter("tp_strategy_signals_not_journaled_total", "Signals dropped unsent: their journal record failed.",
                  self.signals_not_journaled)
        m.counter("tp_strategy_acks_not_journaled_total",
                  "Acks whose journal record failed (the signal is resent once after a restart).",
                  self.acks_not_journaled)
        m.gauge("tp_strategy_settlements_owed", "Ack and give-up records still to write to the journal.",
                len(self.outbox.owed))
        m.counter("tp_strategy_give_ups_not_journaled_total", "Give-ups whose journal record failed.",
                  self.give_ups_not_journaled)
        m.counter("tp_strategy_journal_compactions_failed_total", "Journal compactions that failed.",
                  self.compactions_failed)
        m.counter("tp_strategy_emission_stops_total",
                  "Times emission stopped for a journal that could not be written.", self.emission_stops)
        m.counter("tp_strategy_journal_errors_total",
                  "Failed journal writes of any kind, adopted journals included.", self.journal_errors)
        m.gauge("tp_strategy_journal_bytes", "Size of this instance's journal file.", self.journal.size)
        m.counter("tp_strategy_journal_corrupt_records_total", "Unreadable journal records reported at start.",
                  self.journal_corrupt)
        m.counter("tp_strategy_journal_torn_records_total", "Torn last journal records set aside at start.",
                  self.journal_torn)
        m.counter("tp_strategy_journal_adoptions_locked_total",
                  "Adoptions of a departed shard's journal put off: another process held it.", self.journal_locked)
        for sym in self.symbols:
            quantity, known = self.positions.get(sym, (0.0, False))
            if known:
                m.gauge("tp_strategy_position",
                        "The group's net position: the executor's last report plus fills since.", float(quantity),
                        [("instrument", sym)])
        cumulative, running = [], 0
        for n in self.latency_counts[:-1]:
            running += n
            cumulative.append(running)
        m.histogram("tp_strategy_tick_latency_seconds",
                    "Gateway publish to this instance's receipt, per tick received (same host clock assumed).",
                    metrics.HistogramSample(metrics.LATENCY_BOUNDS_SECONDS, cumulative, self.latency_sum_ns / 1e9,
                                            running + self.latency_counts[-1]))
        if self.lag_last is not None:
            m.gauge("tp_clock_lag_min_seconds",
                    "The smallest (receipt - sender's stamp) of the last stats interval, per source: the transit "
                    "time plus how far this host's clock is ahead of the sender's (negative: the sender's is ahead).",
                    self.lag_last / 1e9, [("source", "gateway")])
        m.counter("tp_dead_letters_sent_total", "Dead letters this program handed to the dead-letter sink.",
                  self.dead_letters_sent)
        m.counter("tp_dead_letters_dropped_total",
                  "Dead letters this program dropped unsent (the sink away and its queue full).",
                  self.dead_letters_dropped)
        m.counters("tp_strategy_dead_letters_total", "Dead letters raised (sent or dropped), by reason.",
                   self.dead_letters_by_reason, "reason")
        # add_connection_metrics, over the SocketMonitors (a connection made
        # counts as accepted, as in the C++ one); accept(2) is never called here.
        m.counter("tp_connections_accepted_total", "Connections made on the program's listening socket.",
                  sum(mon.accepted for mon in self.monitors))
        m.counter("tp_connections_dropped_total", "Connections closed: peer gone, oversized frame or protocol error.",
                  sum(mon.dropped for mon in self.monitors))
        m.counter("tp_handshakes_failed_total", "ZMTP or CURVE handshakes that failed.",
                  sum(mon.handshakes_failed for mon in self.monitors))
        m.counter("tp_connections_redialled_total", "Connections dialled again after a drop.",
                  sum(mon.redials for mon in self.monitors))
        m.counter("tp_accept_failed_total", "Incoming connections refused by accept(2), e.g. out of descriptors.", 0)
        # add_disk_metrics, over run.dir alone (the only place it writes).
        m.gauge("tp_disk_free_bytes", "Free bytes on the fullest filesystem the program writes to.",
                self.disk_free_bytes)
        m.gauge("tp_disk_floor_bytes", "Below this much free space the program warns (run.min_free_bytes).",
                self.cfg.min_free_bytes)
        m.gauge("tp_disk_low", "1 while free space is below tp_disk_floor_bytes.",
                self.disk_free_bytes < self.cfg.min_free_bytes)
        m.counter("tp_write_failures_total", "Failed writes of the program's files (stats, letters, stores).",
                  self.write_failures)
        m.gauge("tp_files_failing", "Files whose last write failed.", len(self.files_failing))
        return m.text()

    # ---- the loop ----

    def run(self, stop=stop_requested):
        # What start-up made (modules, config, the strategy's tables) is
        # never garbage: out of the collector's full passes, which then only
        # walk what the loop makes (a pause less on the tick path).
        gc.collect()
        gc.freeze()
        poller = zmq.Poller()
        poller.register(self.ticks, zmq.POLLIN)
        poller.register(self.events, zmq.POLLIN)
        ticks, events = self.ticks, self.events
        mono = time.monotonic_ns
        stats_ns = self.cfg.stats_interval_ms * NS_PER_MS
        start = mono()
        next_scan = start
        next_adopt = start + ADOPT_SCAN_NS
        next_stats = start
        systemd = SystemdNotifier()
        systemd.ready()
        while not stop():
            m = mono()
            due = min(next_scan, next_adopt, next_stats, self.timers[0][0] if self.timers else next_stats)
            wait_ms = max(0, min(MAX_WAIT_MS, (due - m) // NS_PER_MS + 1)) if due > m else 0
            ready = dict(poller.poll(wait_ms))
            if ticks in ready:
                self._on_ticks()
            if events in ready:
                self._on_events()
            for mon in self.monitors:
                mon.drain()
            now = self.now_ns()
            self._check_feed(now)
            self._probe_journal(now)
            m = mono()
            if self.timers and self.timers[0][0] <= m:
                self._run_user_timers(m)
            if m >= next_scan:
                self._scan_outboxes(now)
                next_scan = m + self.resend_scan_ns
            if m >= next_adopt:
                self._adopt_departed(now)
                next_adopt = m + ADOPT_SCAN_NS
            if m >= next_stats:
                self.write_stats()
                next_stats = m + stats_ns
            # After the turn: a strategy stuck in a callback stops the pings.
            systemd.alive(m)
        systemd.stopping()
        return self.close()

    def close(self):
        self._call(self.strategy.on_stop, "on_stop")
        # Every journal record is already written; the final stats close the run.
        self.write_stats()
        log.info("stopped: %d ticks, %d signals emitted, %d acked, %d pending (%d in %d adopted journal(s)), %d not "
                 "journaled (dropped)", self.ticks_received, self.signals_emitted, self.signals_acked,
                 self.signals_pending(), self.signals_pending() - len(self.outbox), len(self.adopted),
                 self.signals_not_journaled)
        for mon in self.monitors:
            mon.close()
        if self.metrics is not None:
            self.metrics.stop()
        for s in (self.ticks, self.events):
            s.close(0)
        self.signals.close(500)
        self.dl.close(1000)
        self.journal.close()
        for a in self.adopted:
            a.journal.close()
        return 0
