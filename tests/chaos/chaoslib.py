"""Helpers for the fault tests: a whole deployment under the real supervisor
(or as plain processes), and the reconciliation of a finished run FROM ITS
FILES: the strategies' signal journals, the executor's SQLite database, the
simulated broker's order journal and the dead-letter file.

The books balance when every signal a strategy journaled is either executed
once (its client order id "C-<signal_id>" reached the broker exactly once and
the executor recorded the outcome) or dead-lettered with a reason, and no
client order id reached the broker as a new order twice.

Orders with a life (reconcile_life) are reconciled across three books: the
sim broker's journal, dll_gateway.db and executor.db: fills, execution
reports, open orders and cancels (read the databases after the programs
stop: each holds its file exclusively)."""

import base64
import collections
import glob
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "scripts")
TPCTL = os.path.join(SCRIPTS, "tpctl")
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.join(REPO, "tests", "supervisor"))

import tp_proto  # noqa: E402
from svtest import SupervisorRun, pid_alive, three_hosts_toml, wait_for  # noqa: E402,F401
from waiting import read_stats as stats  # noqa: E402  (tests/support, on sys.path through svtest)

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PROGRAMS = ("gateway", "strategy", "executor", "dll_gateway", "dead_letter")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")

SIM_JOURNAL = "sim_broker.journal"


def broker_journal_path(run_dir):
    """The sim broker's day book, beside the run directory: the broker is
    another party, its book is not on the pipeline's disk (which the nemesis
    fills)."""
    return os.path.join(os.path.dirname(os.path.abspath(run_dir)), SIM_JOURNAL)


DEFAULT_TOML = os.path.join(REPO, "config", "default.toml")


def default_keys(section):
    """Keys the embedded defaults (config/default.toml, kept equal to them by a
    test) list in `section`: a feature another change adds (dead-letter
    rotation, a supervisor hang timeout...) is configured only once the
    programs know its key, since an unknown key is refused."""
    import tomllib
    try:
        with open(DEFAULT_TOML, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, ValueError):
        return {}
    for part in section.split("."):
        doc = doc.get(part, {}) if isinstance(doc, dict) else {}
    return doc if isinstance(doc, dict) else {}


# Dead-letter rotation, when the sink has it: small files, so that a flood
# rotates several times within a CI-sized run.
DL_MAX_FILE_BYTES = 4 * 1024 * 1024
DL_MAX_FILES = 3


def dead_letter_rotation():
    """(max_file_bytes, max_files) this deployment sets, or None when the
    sink has no rotation keys (then the dead-letter file is unbounded)."""
    keys = default_keys("dead_letter")
    if "max_file_bytes" in keys and "max_files" in keys:
        return DL_MAX_FILE_BYTES, DL_MAX_FILES
    return None


def config_text(d, run_dir, *, rate=1000, every_nth=20, instances=2, broker_latency_ms=0, signal_ttl_ms=5000,
                order_timeout_ms=300, max_quote_age_ms=None, order_terms=None, extra=""):
    """A deployment on ipc:// endpoints in `d`; the sim broker journals every
    order. A broker latency keeps orders in flight longer, so that a kill
    lands between request and reply more often. `max_quote_age_ms`: the sim
    broker's bound on a quote's age (None: its default). `order_terms`:
    [strategy] keys of every group's order terms (order_type,
    time_in_force, limit_offset_bps, good_till_ms, cancel_after_ms). `extra`
    is appended (TOML lines; its own section headers)."""
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    rotation = dead_letter_rotation()
    return "\n".join([
        "[run]", f'dir = "{run_dir}"', "stats_interval_ms = 100",
        "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
        "[gateway]", f"rate = {rate}", "heartbeat_ms = 200",
        "[strategy]", 'name = "every_nth"', f"instances = {instances}", "resend_ms = 300",
        f"signal_ttl_ms = {signal_ttl_ms}", "feed_timeout_ms = 1000",
        *(f"{k} = {v!r}".replace("'", '"') for k, v in (order_terms or {}).items()),
        "[strategy.every_nth]", f"n = {every_nth}",
        "[executor]", f"order_timeout_ms = {order_timeout_ms}", "order_retries = 3",
        "[dll_gateway.settings]", f'journal_path = "{broker_journal_path(run_dir)}"',
        f"latency_ms = {broker_latency_ms}",
        *([f"max_quote_age_ms = {max_quote_age_ms}"] if max_quote_age_ms is not None else []),
        *(["[dead_letter]", f"max_file_bytes = {rotation[0]}", f"max_files = {rotation[1]}"] if rotation else []),
        # Planned kills must not look like flapping; restarts come fast.
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 100", "flap_window_s = 1",
        "flap_max_restarts = 1000", "stop_grace_ms = 5000", "healthy_after_ms = 500",
        extra, "",
    ])


def pause_for(pid, seconds):
    """SIGSTOP of `pid` for `seconds` (the fault's length, not a wait for a
    state), then SIGCONT, whatever happens meanwhile; a process its
    supervisor killed in between is no error."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def stats_file_name(proc_name):
    return proc_name.replace(":", "-")


def tpctl(run_dir, *args, timeout=60):
    r = subprocess.run([sys.executable, TPCTL, "--run-dir", run_dir, *args], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"tpctl {' '.join(args)}: rc {r.returncode}: {r.stdout}{r.stderr}")
    return r.stdout


class ReportsSettled:
    """A wait_for predicate for orders with a life: no cancel pending in any
    strategy, and the executor's report cursor just past dll_gateway's last
    report seq, unchanged for `quiet_s` (a cancel acked by the executor may
    still be on its way to the broker), in stats written after `since_ns`."""

    def __init__(self, run_dir, strategy_pids, executor_pid, dll_pid, since_ns, quiet_s=1.0):
        self.run_dir, self.strategy_pids, self.since_ns, self.quiet_s = run_dir, strategy_pids, since_ns, quiet_s
        self.executor_pid, self.dll_pid = executor_pid, dll_pid
        self.quiet = None  # (dll_gateway's report seq, since when)

    def __call__(self):
        for name, pid in self.strategy_pids.items():
            s = stats(self.run_dir, stats_file_name(name), pid, after_ns=self.since_ns)
            if not s or s.get("cancels_pending", 0) != 0:
                return False
        e = stats(self.run_dir, "executor", self.executor_pid, after_ns=self.since_ns)
        d = stats(self.run_dir, "dll_gateway", self.dll_pid, after_ns=self.since_ns)
        if not e or not d or e.get("report_next_seq") != d.get("report_seq", -1) + 1:
            self.quiet = None
            return False
        if not self.quiet or self.quiet[0] != d["report_seq"]:
            self.quiet = (d["report_seq"], time.monotonic())
        return time.monotonic() - self.quiet[1] >= self.quiet_s


def settled(run_dir, strategy_pids, executor_pid, since_ns):
    """True once every strategy has nothing pending and the executor has no
    order whose outcome it does not know, in stats written after `since_ns`."""
    for name, pid in strategy_pids.items():
        s = stats(run_dir, stats_file_name(name), pid, after_ns=since_ns)
        if not s or s.get("signals_pending", 1) != 0:
            return False
    e = stats(run_dir, "executor", executor_pid, after_ns=since_ns)
    if not e:
        return False
    return all(e.get(k, 1) == 0 for k in ("orders_unknown", "orders_intent", "orders_held_now"))


# --------------------------------------------------------------------------
# Reconciliation from the files.

def _decode(payload):
    try:
        return tp_proto.decode(payload)
    except tp_proto.ProtocolError:
        return None, None


def _decode_signal_id(payload):
    name, fields = _decode(payload)
    if name in ("signal", "order_request"):
        return fields["signal_id"]
    return None


def journal_files(run_dir):
    """Every strategy journal of the run (<group>-<k>.journal of every group,
    instances scaled away included)."""
    return sorted(glob.glob(os.path.join(run_dir, "*-*.journal")))


class JournalBook:
    """S/A/X records of strategy journals, accumulated: signals maps a
    signal id to {"expires_ts_ns", "created_ts_ns", "causation_ts_ns" (the
    gateway's time of the tick it was made from), "journals": {names}}."""

    def __init__(self):
        self.signals, self.acked, self.given_up = {}, set(), set()

    def add(self, name, raw):
        """One complete line (with its newline) of journal `name`."""
        kind, arg = raw[:1], raw[2:-1].decode(errors="replace")
        if kind == b"S":
            try:
                msg, fields = _decode(bytes.fromhex(arg))
            except ValueError:
                return
            if msg != "signal":
                return
            entry = self.signals.setdefault(fields["signal_id"], {
                "expires_ts_ns": fields["expires_ts_ns"], "created_ts_ns": fields["created_ts_ns"],
                "causation_ts_ns": fields.get("causation_ts_ns", 0), "journals": set()})
            entry["journals"].add(name)
        elif kind == b"A":
            self.acked.add(arg)
        elif kind == b"X":
            self.given_up.add(arg)

    def merge(self, other):
        for sid, e in other.signals.items():
            mine = self.signals.setdefault(sid, dict(e, journals=set()))
            mine["journals"] |= e["journals"]
        self.acked |= other.acked
        self.given_up |= other.given_up


class JournalFollower:
    """Reads every strategy-<k>.journal as it grows, so that records a
    compaction later drops (an instance's own journal past its size
    threshold; an adopted journal of a departed shard, compacted to its boot
    record once nothing in it is pending) are still seen. A replaced file (a
    compaction renames a new one over the name) is read again from its
    start. poll() from one thread only."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.book = JournalBook()
        self.files = {}  # path -> (inode, offset of the first unread line)
        self.rereads = 0

    def poll(self):
        for path in journal_files(self.run_dir):
            try:
                with open(path, "rb") as f:
                    ino = os.fstat(f.fileno()).st_ino
                    known_ino, offset = self.files.get(path, (ino, 0))
                    if known_ino != ino:
                        offset = 0
                        self.rereads += 1
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # complete lines only; a partial one is read next time
            name = os.path.basename(path)
            for raw in data[:end].splitlines(keepends=True):
                if len(raw) >= 3:
                    self.book.add(name, raw)
            if end == 0 and offset > 0 and os.path.getsize(path) < offset:
                offset = 0  # truncated in place
            self.files[path] = (ino, offset + end)


def read_journal_signals(run_dir):
    """(signals, acked, given_up, pending) over every journal file as it is
    now; pending: journaled signals with neither an A nor an X record."""
    book = JournalBook()
    for path in journal_files(run_dir):
        name = os.path.basename(path)
        with open(path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n") or len(raw) < 3:
                    continue  # a torn last line was never acted on
                book.add(name, raw)
    pending = set(book.signals) - book.acked - book.given_up
    return book.signals, book.acked, book.given_up, pending


def read_journals(run_dir):
    """signal ids journaled (S), acked (A), given up (X), over every instance."""
    signals, acked, given_up, _ = read_journal_signals(run_dir)
    return set(signals), acked, given_up


FILL_STATUSES = ("FILLED", "PARTIALLY_FILLED")

BROKER_EVENT_KINDS = ("ORDER", "FILL", "CANCEL", "EXPIRE")


def parse_broker_line(line):
    """One sim broker journal line as a dict, or None (a torn or foreign line).
    v2: `ts kind id instrument side quantity status filled avg_price terms
    quote_seq reason`; a v1 line (`ts id instrument side quantity status
    filled price reason`, one per order) reads as a MARKET ORDER."""
    if not line.endswith("\n"):
        return None  # a torn last line was never acted on
    parts = line.rstrip("\n").split(" ", 11)
    if len(parts) >= 11 and parts[1] in BROKER_EVENT_KINDS:
        kind, fields, terms, quote_seq, reason = parts[1], parts[2:9], parts[9], parts[10], parts[11:]
    else:
        parts = line.rstrip("\n").split(" ", 8)
        if len(parts) < 8:
            return None
        kind, fields, terms, quote_seq, reason = "ORDER", parts[1:8], "MARKET", "0", parts[8:]
        if fields[4] == "PARTIALLY_FILLED":
            fields[4] = "CANCELED"  # a v1 order was IOC: its partial fill was final, the rest canceled
    cid, instrument, side, quantity, status, filled, avg_price = fields
    try:
        return {"ts_ns": int(parts[0]), "kind": kind, "cid": urllib.parse.unquote(cid),
                "instrument": urllib.parse.unquote(instrument), "side": side, "quantity": float(quantity),
                "status": status, "filled": float(filled), "avg_price": float(avg_price), "terms": terms,
                "quote_seq": int(quote_seq), "reason": reason[0].strip() if reason else ""}
    except ValueError:
        return None


def read_broker_events(run_dir):
    """Every line of the sim broker's journal, in order, as dicts: ts_ns (when
    it decided), kind (ORDER: a submit received, with the state it answered;
    FILL, CANCEL, EXPIRE: later changes of a resting order, cumulative), cid,
    instrument, side, quantity, status, filled, avg_price, terms (MARKET or
    LIMIT@<price>/<IOC|GTC|GTD>[@<good_till_ns>]), quote_seq (the tick a fill
    matched; 0: none) and reason."""
    out = []
    path = broker_journal_path(run_dir)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                event = parse_broker_line(line)
                if event:
                    out.append(event)
    return out


def read_broker_orders(run_dir):
    """Every order the sim broker received (its ORDER lines), in journal
    order: dicts with ts_ns (when it decided), cid, status and reason (the
    submit's answer), and as read_broker_events the rest."""
    return [e for e in read_broker_events(run_dir) if e["kind"] == "ORDER"]


def read_broker_journal(run_dir):
    """client order id -> how many times the sim broker received it as a new order."""
    return collections.Counter(o["cid"] for o in read_broker_orders(run_dir))


def read_executor_db(run_dir):
    """(signals: id -> (status, reason, received_ns), orders: client id -> row dict)."""
    path = os.path.join(run_dir, "executor.db")
    if not os.path.exists(path):
        return {}, {}
    con = sqlite3.connect(path)
    try:
        sigs = {r[0]: (r[1], r[2], r[3])
                for r in con.execute("SELECT signal_id, status, reason, received_ns FROM signals")}
        cols = ["client_order_id", "signal_id", "state", "status", "reason", "expires_ns", "updated_ns"]
        orders = {r[0]: dict(zip(cols, r)) for r in con.execute(f"SELECT {', '.join(cols)} FROM orders")}
    finally:
        con.close()
    return sigs, orders


def read_executor_letters(run_dir):
    """The outcome letters executor.db holds (its `letters` table: the newest
    ExecutorStore::letters_kept, 4096), [(key, reason, ts_ns)] oldest first,
    and its signals refused (every REJECTED row, each stored with a letter
    keyed by the signal id), [(signal id, reason, received_ns)]; ([], []) when
    the database or a table is not there."""
    path = os.path.join(run_dir, "executor.db")
    if not os.path.exists(path):
        return [], []
    con = sqlite3.connect(path)
    try:
        letters = [(r[0], r[1], r[2]) for r in con.execute("SELECT key, reason, ts_ns FROM letters ORDER BY seq")]
        refused = [(r[0], (r[1] or "").split(":", 1)[0], r[2]) for r in
                   con.execute("SELECT signal_id, reason, received_ns FROM signals WHERE status = 'REJECTED'")]
    except sqlite3.OperationalError:  # a tree without the letters table
        return [], []
    finally:
        con.close()
    return letters, refused


def dead_letter_files(run_dir):
    """dead_letters.jsonl and its rotated files (dead_letters.jsonl.1, ...)."""
    return sorted(p for p in glob.glob(os.path.join(run_dir, "dead_letters*.jsonl*"))
                  if not p.endswith(".tmp"))


SIGNAL_SIZE_MAX = 4096  # a signal or an order request is a few hundred bytes; larger originals are garbage

# Where a letter about one signal names it in its detail (docs/PROTOCOL.md,
# DeadLetter): (source prefix, reason or None for any, pattern). Used when the
# sink kept the line without its original (a flooding reason is sampled), and
# checked against the original when both are there.
DETAIL_SIGNAL = (
    ("executor", None, re.compile(r"^signal (\S+): ")),  # a refused signal
    ("executor", "expired", re.compile(r"^(?:held )?order C-(\S+) (?:refused|not sent)")),  # its order
    ("", "unacked", re.compile(r" after expiry for (\S+)")),  # a strategy gave it up
    ("executor", "trading_halted", re.compile(r"^held order C-(\S+) not sent")),  # given up at a HALT
    ("executor", "flattening", re.compile(r"^held order C-(\S+) not sent")),  # given up at a FLATTEN
)


def detail_signal_id(source, reason, detail):
    for prefix, want, pattern in DETAIL_SIGNAL:
        if source.startswith(prefix) and want in (None, reason):
            m = pattern.search(detail)
            if m:
                return m.group(1)
    return None


class DeadLetterBook:
    """Dead-letter lines, accumulated: by_signal maps a signal id to a Counter
    of reasons (from the original bytes: a signal or an order request); keys
    counts the lines of each keyed letter by (source, key) (a letter its
    sender may send again: the sink is to write it once)."""

    def __init__(self):
        self.by_signal = collections.defaultdict(collections.Counter)
        self.keys = collections.Counter()
        self.evidence = collections.defaultdict(list)  # signal id -> (source, reason, ts_ns, detail) per letter
        self.reasons, self.sources = collections.Counter(), collections.Counter()
        self.lines = self.without_original = 0
        self.by_detail = 0          # letters matched to their signal by the id in the detail
        self.detail_disagrees = []  # (original's id, detail's id): a letter naming another signal

    def add(self, line):
        try:
            d = json.loads(line)
        except ValueError:
            return
        reason = d.get("reason", "?")
        self.lines += 1
        self.reasons[reason] += 1
        self.sources[d.get("source", "?")] += 1
        source, detail = str(d.get("source", "")), str(d.get("detail") or "")
        if d.get("key"):
            self.keys[(source, str(d["key"]))] += 1
        b64 = d.get("original_b64") or ""
        if not b64 and d.get("original_size"):
            self.without_original += 1  # the sink kept the line, not the bytes (sampling)
        sid = None
        if b64 and len(b64) <= SIGNAL_SIZE_MAX * 4 // 3 + 4:
            try:
                sid = _decode_signal_id(base64.b64decode(b64))
            except ValueError:
                sid = None
        named = detail_signal_id(source, reason, detail)
        if sid and named and named != sid:
            self.detail_disagrees.append((sid, named))
        if not sid and named and not b64 and (d.get("original_size") or 0) <= SIGNAL_SIZE_MAX:
            sid = named
            self.by_detail += 1
        if sid:
            self.by_signal[sid][reason] += 1
            self.evidence[sid].append((source, reason, d.get("ts_ns"), detail[:120]))


class DeadLetterFollower:
    """Reads the dead-letter file and its rotated files as they grow, so that
    letters a rotation deletes later (only max_files files are kept) are still
    seen. Each file is followed by inode (a rotation renames it); a file
    smaller than the offset reached is a new one (inode reused) and read from
    its start. poll() from one thread only."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.book = DeadLetterBook()
        self.offsets = {}  # inode -> offset of the first unread line

    def poll(self):
        for path in dead_letter_files(self.run_dir):
            try:
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    offset = self.offsets.get(st.st_ino, 0)
                    if st.st_size < offset:
                        offset = 0
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue  # rotated away between the listing and the open
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                self.book.add(line)
            self.offsets[st.st_ino] = offset + end


def read_dead_letter_book(run_dir):
    """A DeadLetterBook of the files as they are now."""
    book = DeadLetterBook()
    for path in dead_letter_files(run_dir):
        with open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    book.add(line)
    return book


def read_dead_letters(run_dir):
    """signal id -> Counter of reasons, over the dead-letter file and its
    rotated files as they are now."""
    return read_dead_letter_book(run_dir).by_signal


def dead_letter_summary(run_dir):
    """(lines by reason, lines by source, [(file, bytes)])."""
    book = read_dead_letter_book(run_dir)
    return book.reasons, book.sources, [(os.path.basename(p), os.path.getsize(p)) for p in dead_letter_files(run_dir)]


def utc(ts_ns):
    """HH:MM:SS.mmm (UTC) of an epoch time in ns, for evidence in reports."""
    return time.strftime("%H:%M:%S", time.gmtime(ts_ns // 10**9)) + f".{ts_ns // 10**6 % 1000:03d}"


EXPIRED_ORDER = re.compile(r"expir|deadline", re.I)
# proto::Side and proto::OrderType as dll_gateway.db stores them.
SIDE_BUY = 1
ORDER_TYPE_LIMIT = 1
# strategy.max_signal_tick_age_ms, the default every chaos deployment keeps:
# no signal from a tick the gateway sent longer before the emit (a paused
# strategy, a paused or cut-off feed, deliver a backlog that must not be
# traded on). The signal says both: causation_ts_ns (the gateway's time of
# its tick) and created_ts_ns (the emit).
MAX_SIGNAL_TICK_AGE_MS = 250
# The sim broker's refusal of an order that reached its "exchange" at or
# after its good-till time names when submit() received it.
RECEIVED_AT = re.compile(r"\(received at (\d+)\)")
# dll_gateway's last deadline check is the instruction before its broker
# call; the sim broker's receive time is read inside that call. On two busy
# cores the thread can be preempted in between (a CI run saw 1.05 ms), so a
# hand-over counts as late from this much after the expiry. Without the
# check, orders queued at a paused dll_gateway reach the broker 0.2-2 s late.
HANDOVER_MS = 5
# The executor's reasons for an order it held (circuit breaker) and gave
# up, never sent, when trading was halted or a flatten began (its dead
# letter has the same reason).
HALTED_UNSENT = "trading_halted"
GIVEN_UP_UNSENT = (HALTED_UNSENT, "flattening")
# The executor's reason for an order it held (circuit breaker) and canceled
# on its strategy's request before sending it.
CANCELED_UNSENT = "canceled before it was sent"


def reconcile(run_dir, seen=None, seen_letters=None):
    """The books of a finished run. Returns a dict of figures and details.
    `seen`: a JournalBook of records read while the run went on
    (JournalFollower), added to what the journal files hold at the end;
    `seen_letters`: a DeadLetterBook read while the run went on
    (DeadLetterFollower, polled once more after the end), used instead of the
    dead-letter files (a rotation deletes the oldest).

    Every signal journaled by any instance (strategy-<k>.journal for every k
    that ever ran) must have exactly one outcome:
      executed            accepted, its order reached the broker (once) and has
                          a known outcome;
      rejected <reason>   refused by the executor, with a dead letter <reason>;
      expired (held|order)  accepted, but its order was given up unsent because
                          the signal expired (held by the breaker, or refused
                          by its deadline before the broker), dead letter
                          `expired`;
      unacked             given up by a strategy (X record), dead letter `unacked`;
      halted (held)       accepted, its order held by the executor (breaker
      flattening (held)   open) and given up unsent when trading was halted
                          or a flatten began, dead letter `trading_halted`
                          or `flattening`;
      canceled (held)     accepted, its order held by the executor (breaker
                          open) and canceled by its strategy before it was
                          sent: no broker, no dead letter.
    None is `lost`; more than one is `accounted_twice` (e.g. given up as
    unacked although the executor executed it). No broker fill may be at or
    after its signal's expiry. A signal is left unacked when a journal as it
    is at the end holds it with neither an A nor an X record. Given up means
    an X record, or an `unacked` dead letter (an X record may be compacted
    away before a follower sees it).

    The executor's outcome letters are also checked from its side, by key
    (README, "Dead letters under a flood or a stalled sink": stored with the
    outcome, sent again when the executor starts and when its connection to
    the sink is made again after a loss, written by the sink once per key):
    every signal executor.db holds REJECTED and every letter its `letters`
    table holds has a line from source "executor" with that key
    (outcome_letter_missing), and no keyed line is written twice
    (outcome_letter_twice)."""
    final = JournalBook()
    final.signals, final.acked, final.given_up, pending = read_journal_signals(run_dir)
    at_end = len(final.signals)
    if seen is not None:
        final.merge(seen)
    signals, given_up = final.signals, final.given_up
    broker_orders = read_broker_orders(run_dir)
    broker = collections.Counter(o["cid"] for o in broker_orders)
    sigs, orders = read_executor_db(run_dir)
    letter_book = seen_letters or read_dead_letter_book(run_dir)
    letters = letter_book.by_signal
    given_up = given_up | {sid for sid, dl in letters.items() if "unacked" in dl}

    executed, lost, unacked, dl_missing, twice, dl_twice, canceled_unsent = [], [], [], [], [], [], []
    dead = collections.Counter()
    for sid in sorted(signals):
        cid = "C-" + sid
        rec, order, n = sigs.get(sid), orders.get(cid), broker.get(cid, 0)
        dl = letters.get(sid, collections.Counter())
        if sid in pending:
            unacked.append(sid)
        outcomes = []
        if rec and rec[0] == "ACCEPTED" and order:
            if order["state"] == "DONE" and order["status"] == "REJECTED" and n == 0 and \
                    EXPIRED_ORDER.search(order["reason"] or "") and \
                    not (order["reason"] or "").startswith(GIVEN_UP_UNSENT):
                label = "expired (held)" if order["reason"].startswith("expired: held") else "expired (order)"
                outcomes.append(label)
                if "expired" not in dl:
                    dl_missing.append((sid, label, order["updated_ns"]))
            elif n == 0 and order["state"] == "DONE" and order["status"] == "REJECTED" and \
                    (order["reason"] or "").startswith(GIVEN_UP_UNSENT):
                why = order["reason"].split(":", 1)[0]
                label = "halted (held)" if why == HALTED_UNSENT else "flattening (held)"
                outcomes.append(label)
                if why not in dl:
                    dl_missing.append((sid, label, order["updated_ns"]))
            elif n == 0 and order["state"] == "DONE" and order["status"] == "CANCELED" and \
                    (order["reason"] or "").startswith(CANCELED_UNSENT):
                outcomes.append("canceled (held)")  # no broker, no dead letter: the strategy asked
            elif n >= 1 and order["state"] in ("DONE", "SENT"):
                outcomes.append("executed")  # n > 1 is counted as a duplicate below
            else:
                lost.append((sid, f"accepted, order {order['state']} {order['status']} "
                                  f"'{order['reason']}', {n} at the broker"))
        elif rec and rec[0] == "REJECTED":
            reason = rec[1].split(":", 1)[0]
            outcomes.append(f"rejected {reason}")
            if reason not in dl:
                dl_missing.append((sid, reason, rec[2]))
            if n:
                lost.append((sid, f"rejected ({reason}) but {n} at the broker"))
        elif rec:
            lost.append((sid, f"executor status {rec[0]}, order {order and order['state']}"))
        if sid in given_up:
            outcomes.append("unacked")
            if "unacked" not in dl:
                dl_missing.append((sid, "unacked", None))  # when the strategy gave it up is not recorded
        if not outcomes and not rec:
            lost.append((sid, "never recorded by the executor" + (f", {n} at the broker" if n else "")))
        if len(outcomes) > 1:
            twice.append((sid, outcomes))
        if sum(dl.values()) > 1:
            dl_twice.append((sid, dict(dl), letter_book.evidence.get(sid)))
        for o in outcomes:
            if o == "executed":
                executed.append(sid)
            elif o == "canceled (held)":
                canceled_unsent.append(sid)
            else:
                dead[o] += 1

    # A fill at or after the signal's expiry: the broker's own time of the
    # order against the expiry in the journaled signal bytes (the executor's
    # expires_ns when the journal no longer has the signal). An order the
    # broker decided at or after it (its latency after the hand-over) must
    # have been handed over before it, within HANDOVER_MS: the sim broker's
    # refusal says when it received the order.
    late, late_any, handed_late, no_expiry = [], 0, [], 0
    for o in broker_orders:
        sid = o["cid"][2:] if o["cid"].startswith("C-") else None
        exp = signals.get(sid, {}).get("expires_ts_ns") or (orders.get(o["cid"]) or {}).get("expires_ns") or 0
        if not exp:
            no_expiry += 1
            continue
        if o["ts_ns"] >= exp:
            late_any += 1
            received = RECEIVED_AT.search(o["reason"])
            if not received or int(received.group(1)) >= exp + HANDOVER_MS * 1_000_000:
                at = int(received.group(1)) if received else None
                handed_late.append((o["cid"], at and utc(at), utc(exp), o["status"], o["reason"]))
            if o["status"] in FILL_STATUSES:
                late.append((o["cid"], utc(o["ts_ns"]), utc(exp), round((o["ts_ns"] - exp) / 1e6, 1)))

    # Signals made from a tick older than the bound at the emit.
    from_old_ticks = sorted(
        (round((e["created_ts_ns"] - e["causation_ts_ns"]) / 1e6, 1), sid, utc(e["created_ts_ns"]))
        for sid, e in signals.items()
        if e["causation_ts_ns"] and e["created_ts_ns"] - e["causation_ts_ns"] > MAX_SIGNAL_TICK_AGE_MS * 1_000_000)
    oldest_tick_ms = max((round((e["created_ts_ns"] - e["causation_ts_ns"]) / 1e6, 1)
                          for e in signals.values() if e["causation_ts_ns"]), default=0)

    # The executor's outcome letters by key: what it stored (the letters
    # table, pruned to the newest, and every signal it refused) against the
    # lines the sink wrote (seen while running: rotations delete files).
    stored_letters, refused = read_executor_letters(run_dir)
    due = {}  # key -> (reason, when it was due)
    for key, reason, ts in refused + stored_letters:
        due.setdefault(key, (reason, ts))
    letter_missing = [(key, reason, ts) for key, (reason, ts) in sorted(due.items(), key=lambda kv: kv[1][1])
                      if letter_book.keys[("executor", key)] == 0]
    letter_twice = sorted((source, key, n) for (source, key), n in letter_book.keys.items() if n > 1)

    duplicates = {cid: n for cid, n in broker.items() if n > 1}
    known = {"C-" + s for s in signals} | set(orders)
    orphans = sorted(cid for cid in broker if cid not in known)
    per_journal = collections.Counter(j for e in signals.values() for j in e["journals"])
    return {
        "journaled": len(signals),
        "journaled_at_end": at_end,
        "journals": dict(sorted(per_journal.items())),
        "executed": len(executed),
        "dead_lettered": sum(dead.values()),
        "canceled_unsent": len(canceled_unsent),
        "dead_by_reason": dict(dead),
        "lost": len(lost),
        "lost_detail": lost[:20],
        "accounted_twice": len(twice),
        "accounted_twice_detail": twice[:20],
        "dead_lettered_twice": len(dl_twice),
        "dead_lettered_twice_detail": dl_twice[:20],
        "broker_orders": len(broker_orders),
        "broker_rejects": sum(1 for o in broker_orders if o["status"] == "REJECTED"),
        "broker_duplicates": len(duplicates),
        "duplicate_detail": dict(list(duplicates.items())[:20]),
        "broker_orphans": len(orphans),
        "orphan_detail": orphans[:20],
        "fills_after_expiry": len(late),
        "fills_after_expiry_detail": late[:20],
        "signals_from_old_ticks": len(from_old_ticks),
        "signals_from_old_ticks_detail": from_old_ticks[-20:],
        "oldest_tick_signaled_ms": oldest_tick_ms,
        "broker_orders_after_expiry": late_any,
        "broker_orders_handed_late": len(handed_late),
        "broker_orders_handed_late_detail": handed_late[:20],
        "broker_orders_no_expiry": no_expiry,
        "unacked_in_journal": len(unacked),
        "unacked_detail": unacked[:20],
        "dead_letters_by_detail": letter_book.by_detail,
        "detail_disagrees": len(letter_book.detail_disagrees),
        "detail_disagrees_detail": letter_book.detail_disagrees[:20],
        "dead_letter_line_missing": len(dl_missing),
        "dead_letter_missing_detail": [(sid, what, due and utc(due)) for sid, what, due in dl_missing[:20]],
        "dead_letter_missing_all": dl_missing,
        "outcome_letters_stored": len(stored_letters),
        "outcome_letters_due": len(due),
        "outcome_letter_lines": sum(n for (source, _), n in letter_book.keys.items() if source == "executor"),
        "outcome_letter_missing_all": letter_missing,
        "outcome_letter_twice": len(letter_twice),
        "outcome_letter_twice_detail": letter_twice[:20],
        "executor_orders": len(orders),
    }


def figures_table(title, books, extra_rows=()):
    rows = [
        ("signals journaled (seen while running)", books["journaled"]),
        ("  still in a journal at the end", books["journaled_at_end"]),
        ("  per journal", ", ".join(f"{j}={n}" for j, n in books["journals"].items()) or "-"),
        ("executed once", books["executed"]),
        ("dead-lettered", books["dead_lettered"]),
        ("canceled before sent (held, no dead letter)", books["canceled_unsent"]),
        *((f"  reason {r}", n) for r, n in sorted(books["dead_by_reason"].items())),
        ("lost", books["lost"]),
        ("accounted for twice", books["accounted_twice"]),
        ("dead-lettered twice (same signal)", books["dead_lettered_twice"]),
        ("broker orders (sim journal lines)", books["broker_orders"]),
        ("  of which refused (REJECTED)", books["broker_rejects"]),
        ("broker duplicates", books["broker_duplicates"]),
        ("broker orders with no signal", books["broker_orphans"]),
        ("oldest tick a signal was made from (ms before the emit)", books["oldest_tick_signaled_ms"]),
        ("broker orders decided at/after expiry (refused there)", books["broker_orders_after_expiry"]),
        (f"  of which handed to the broker {HANDOVER_MS} ms or more after it", books["broker_orders_handed_late"]),
        ("fills at/after expiry", books["fills_after_expiry"]),
        ("journaled, never acked nor given up", books["unacked_in_journal"]),
        ("dead letter missing for an outcome", books["dead_letter_line_missing"]),
        ("  of them lost with the disk full", books.get("dead_letter_lost_disk_full", "-")),
        ("dead letters matched by the id in their detail", books["dead_letters_by_detail"]),
        *extra_rows,
    ]
    w = max(len(r[0]) for r in rows)
    out = [f"== {title} ==", *(f"  {k:<{w}}  {v}" for k, v in rows)]
    return "\n".join(out)


# A letter due this long before a disk-full episode may still be waiting in
# its sender's queue or the sink's write buffer when the disk fills; one due
# this long after it may be in the buffer whose write failed.
DISK_FULL_SLACK_NS = (1_000_000_000, 500_000_000)


def lost_with_full_disk(missing, windows, lines_lost):
    """Splits dead_letter_missing_all into (lost with the disk full, the
    rest). A missing letter is put down to a full disk only when it was due
    (the executor recorded the refusal or the order's outcome) during a
    disk-full episode (`windows`: (start_ns, end_ns), with
    DISK_FULL_SLACK_NS), and only as many as the sink counted as lines_lost:
    the rest (any excess among them) stay unexplained."""
    before, after = DISK_FULL_SLACK_NS
    during = [m for m in missing if m[2] and any(a - before <= m[2] <= b + after for a, b in windows)]
    lost = during[:lines_lost]
    rest = [m for m in missing if m not in lost]
    return lost, rest


def book_checks(books, disk_full_windows=(), lines_lost=0):
    """(name, ok, detail) for each bound the books must meet. With the
    disk-full episodes of the run and the sink's lines_lost, a dead letter
    missing because the sink could not write it then is not a failure
    (lost_with_full_disk)."""
    lost, missing = lost_with_full_disk(books["dead_letter_missing_all"], disk_full_windows, lines_lost)
    books["dead_letter_lost_disk_full"] = len(lost)
    return [
        ("signals journaled", books["journaled"] > 0, "no signal was journaled"),
        ("no signal lost", books["lost"] == 0, books["lost_detail"]),
        ("no signal accounted for twice", books["accounted_twice"] == 0, books["accounted_twice_detail"]),
        ("no signal dead-lettered twice", books["dead_lettered_twice"] == 0, books["dead_lettered_twice_detail"]),
        ("no broker duplicate", books["broker_duplicates"] == 0, books["duplicate_detail"]),
        ("no broker order without a signal", books["broker_orphans"] == 0, books["orphan_detail"]),
        (f"no signal from a tick older than {MAX_SIGNAL_TICK_AGE_MS} ms", books["signals_from_old_ticks"] == 0,
         "(age ms, signal, emitted; UTC), the oldest: " + repr(books["signals_from_old_ticks_detail"])),
        (f"no order handed to the broker {HANDOVER_MS} ms or more after its expiry",
         books["broker_orders_handed_late"] == 0,
         "(cid, received, expiry, status, reason; UTC): " + repr(books["broker_orders_handed_late_detail"])),
        ("no fill at/after expiry", books["fills_after_expiry"] == 0,
         "(cid, broker time, expiry, late ms; UTC): " + repr(books["fills_after_expiry_detail"])),
        ("every journaled signal acked or given up", books["unacked_in_journal"] == 0, books["unacked_detail"]),
        ("every dead-letter outcome has its line" + (
            f" (but {len(lost)} lost with the disk full, of {lines_lost} lines the sink lost)" if lost else ""),
         not missing, [(sid, what, due and utc(due)) for sid, what, due in missing[:20]]),
        ("every letter's detail names the signal of its original", books["detail_disagrees"] == 0,
         "(original's id, detail's id): " + repr(books["detail_disagrees_detail"])),
        ("outcomes add up", books["executed"] + books["dead_lettered"] + books["canceled_unsent"] ==
         books["journaled"], f"{books['executed']} + {books['dead_lettered']} + {books['canceled_unsent']} "
                             f"!= {books['journaled']}"),
    ]


def outcome_letter_checks(books, disk_full_windows=(), lines_lost=0):
    """(name, ok, detail) for the executor's outcome letters (reconcile's
    outcome_letter_*): each one it stored, and each signal it refused, has
    exactly one line in the sink's files, by key, across kills of the
    executor and of the sink. A letter due during a disk-full episode may be
    one the sink lost (lost_with_full_disk, as for book_checks)."""
    lost, missing = lost_with_full_disk(books["outcome_letter_missing_all"], disk_full_windows, lines_lost)
    return [
        ("outcome letters stored by the executor", books["outcome_letters_stored"] > 0,
         "executor.db's letters table is empty"),
        ("every outcome letter the executor stored or signal it refused has its line (by key)" + (
            f" (but {len(lost)} lost with the disk full, of {lines_lost} lines the sink lost)" if lost else ""),
         not missing, f"{len(missing)} of {books['outcome_letters_due']} (key, reason, due UTC): " +
         repr([(key, reason, due and utc(due)) for key, reason, due in missing[:20]])),
        ("no keyed letter written twice (the sink writes a key once)", books["outcome_letter_twice"] == 0,
         "(source, key, lines): " + repr(books["outcome_letter_twice_detail"])),
    ]


def assert_books_balance(test, books, what):
    failed = [f"{name}: {detail}" for name, ok, detail in book_checks(books) if not ok]
    test.assertFalse(failed, f"{what}: " + "\n".join(failed))


# --------------------------------------------------------------------------
# Orders with a life: fills, execution reports, open orders and cancels
# reconciled across the three books that hold them (the sim broker's journal,
# dll_gateway.db, executor.db). Read the databases after the programs stop:
# both are held exclusively while they run.

OPEN_STATUSES = ("ACCEPTED", "PARTIALLY_FILLED")
# proto::OrderStatus as dll_gateway.db stores it (a number).
STATUS_NAMES = {1: "NEW", 2: "ACCEPTED", 3: "PARTIALLY_FILLED", 4: "FILLED", 5: "REJECTED", 6: "CANCELED",
                7: "UNKNOWN", 8: "EXPIRED"}
FILL_REL_TOL = 1e-9


def same_quantity(a, b):
    return abs(a - b) <= FILL_REL_TOL * max(abs(a), abs(b), 1.0)


def _rows(con, sql):
    cur = con.execute(sql)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur]


def read_dll_gateway_db(run_dir):
    """dll_gateway.db of a stopped run: {"stream", "orders": cid -> row
    (status as its name), "reports": [row by seq], "cancels": cid -> row};
    empty books when there is no file."""
    path = os.path.join(run_dir, "dll_gateway.db")
    out = {"stream": None, "orders": {}, "reports": [], "cancels": {}}
    if not os.path.exists(path):
        return out
    con = sqlite3.connect(path)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
        out["stream"] = meta.get("stream")
        for r in _rows(con, "SELECT client_order_id, state, status, filled_quantity, order_type, limit_price "
                            "FROM orders"):
            r["status"] = STATUS_NAMES.get(r["status"], str(r["status"]))
            out["orders"][r["client_order_id"]] = r
        out["reports"] = _rows(con, "SELECT seq, client_order_id, instrument, side, status, last_quantity, "
                                    "last_price, filled_quantity, broker_ts_ns, quote_seq, quote_ts_ns "
                                    "FROM reports ORDER BY seq")
        out["cancels"] = {r["client_order_id"]: r for r in _rows(con, "SELECT client_order_id, state FROM cancels")}
    finally:
        con.close()
    return out


def read_executor_life(run_dir):
    """executor.db of a stopped run: {"orders": cid -> row (state, status,
    filled_quantity, cancel_state, time_in_force), "reports": report id ->
    row, "cursor": (stream, next_seq) or None}."""
    path = os.path.join(run_dir, "executor.db")
    out = {"orders": {}, "reports": {}, "cursor": None}
    if not os.path.exists(path):
        return out
    con = sqlite3.connect(path)
    try:
        out["orders"] = {r["client_order_id"]: r for r in _rows(
            con, "SELECT client_order_id, state, status, filled_quantity, cancel_state, time_in_force FROM orders")}
        out["reports"] = {r["report_id"]: r for r in _rows(
            con, "SELECT report_id, stream, seq, client_order_id, status, filled_quantity, applied FROM reports")}
        cursor = con.execute("SELECT stream, next_seq FROM report_cursor").fetchone()
        out["cursor"] = tuple(cursor) if cursor else None
    finally:
        con.close()
    return out


class TickRecorder:
    """Subscribes to the gateway's ticks for the whole run (a thread) and
    keeps, for every (instrument, seq), the gateway_ts_ns of each tick
    published with it (a restarted gateway numbers from 1 again): the
    evidence that a fill matched a tick the gateway published, and how old
    that tick was. Start it before the gateway.

    A seq not above the last one of its instrument begins a new gateway life.
    Like every subscriber, the recorder may miss the first ticks of a
    restarted gateway while it reconnects (joined_late: how many); such a
    tick was published after the previous life's last tick and before the
    first one seen of the new life, which still bounds its age
    (fill_quote_age). gaps counts jumps within one life (ticks missed while
    connected: a failure of the recorder)."""

    def __init__(self, endpoint):
        import threading
        self.endpoint = endpoint
        self.started_ns = now_ns()
        self.ticks = collections.defaultdict(list)  # (instrument, seq) -> [gateway_ts_ns]
        # (instrument, seq, gateway_ts_ns) -> (bid, ask, bid_volume, ask_volume): what a fill may take
        self.quotes = {}
        # instrument -> [(after_ns, first seq seen, its gateway_ts_ns)] per gateway life:
        # ticks of that life before the first seen were published within (after_ns, that ts).
        self.lives = collections.defaultdict(list)
        self.count = self.gaps = self.joined_late = 0
        self.gap_detail = []  # (instrument, last seq, seq) of the first gaps
        self.last = {}  # instrument -> (seq, gateway_ts_ns)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        import zmq
        ctx = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 0)  # keep every tick: a missed one cannot vouch for a fill
        sock.setsockopt(zmq.RECONNECT_IVL, 5)  # back within ms of a restarted gateway's bind
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"TICK.")
        sock.connect(self.endpoint)
        try:
            while not self.stop_event.is_set():
                if not sock.poll(100):
                    continue
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) == 2:
                        self.add(frames[1])
        finally:
            sock.close(0)
            ctx.term()

    def add(self, payload):
        name, t = _decode(payload)
        if name != "tick":
            return
        inst, seq, ts = t["instrument"], t["seq"], t["gateway_ts_ns"]
        last = self.last.get(inst)
        if last is None or seq <= last[0]:
            self.lives[inst].append((last[1] if last else self.started_ns, seq, ts))
            self.joined_late += seq - 1
        elif seq != last[0] + 1:
            self.gaps += 1
            if len(self.gap_detail) < 20:
                self.gap_detail.append((inst, last[0], seq))
        self.last[inst] = (seq, ts)
        self.ticks[(inst, seq)].append(ts)
        self.quotes[(inst, seq, ts)] = (t["bid"], t["ask"], t["bid_volume"], t["ask_volume"])
        self.count += 1

    def restarts(self):
        """Gateway restarts seen (lives of the instrument seen most often)."""
        return max((len(v) - 1 for v in self.lives.values()), default=0)

    def fill_quote_age(self, instrument, seq, fill_ns):
        """(age in ns, how) of the freshest tick published as (instrument,
        seq) by fill_ns: a recorded one's exact age, else an upper bound
        from a life whose first ticks were missed; (None, why) when none."""
        # Every life may have published this seq: the freshest candidate counts.
        ages = [(fill_ns - ts, "recorded") for ts in self.ticks.get((instrument, seq), ()) if ts <= fill_ns]
        ages += [(fill_ns - after, "at most (published before the recorder rejoined a restarted gateway)")
                 for after, first_seq, _ in self.lives.get(instrument, ()) if seq < first_seq and after <= fill_ns]
        return min(ages) if ages else (None, "no such tick seen")

    def published(self, instrument, seq, ts):
        """True when (instrument, seq) at gateway time ts is a tick the
        gateway published: recorded, or in the missed first ticks of a life."""
        if ts in self.ticks.get((instrument, seq), ()):
            return True
        return any(seq < first_seq and after < ts < first_ts for after, first_seq, first_ts in
                   self.lives.get(instrument, ()))

    def stop(self):
        self.stop_event.set()
        self.thread.join(10)


def broker_fills(events):
    """The fills in the sim broker's journal: (event, quantity) for every
    FILL line and every ORDER line that filled something at once."""
    prev, out = {}, []
    for e in events:
        before = prev.get(e["cid"], 0.0)
        prev[e["cid"]] = e["filled"]
        if e["kind"] in ("ORDER", "FILL") and e["filled"] > before:
            out.append((e, e["filled"] - before))
    return out


def reconcile_life(run_dir, ticks=None, max_quote_age_ms=0):
    """Orders with a life across the three books of a stopped run; returns
    figures and, for each guarantee, the offending ids (at most 20 each):
      fill_mismatch       an order whose cumulative filled differs between the
                          broker (its last journal line), dll_gateway.db and
                          executor.db (a fill lost or applied twice);
      reports_missing     a dll_gateway report seq the executor never stored
                          (or stored for another order / filled quantity:
                          reports_differ), dll_gateway's own seqs with a hole,
                          the executor's cursor not just past the last seq;
      open_broker_only / open_executor_only  open at the broker (last line
                          ACCEPTED or PARTIALLY_FILLED) but not a working
                          order in executor.db (state SENT, status open), and
                          the reverse; the same against dll_gateway.db;
      cancel_twice        more than one CANCEL line for an id; cancel_unasked:
                          a CANCEL line with no cancels row at dll_gateway or
                          no cancel asked in executor.db;
      stale_fills         a fill whose quote_seq names no tick the gateway
                          published (`ticks`: a TickRecorder) within
                          max_quote_age_ms before the broker's time of the
                          fill, or names none at all (quote_seq 0)."""
    events = read_broker_events(run_dir)
    dll = read_dll_gateway_db(run_dir)
    ex = read_executor_life(run_dir)
    last = {}
    cancels_at_broker = collections.Counter()
    for e in events:
        last[e["cid"]] = e
        if e["kind"] == "CANCEL":
            cancels_at_broker[e["cid"]] += 1

    # Every fill applied once: the cumulative filled of each order agrees.
    fill_mismatch = []
    sums = [0.0, 0.0, 0.0]
    for cid in sorted(set(last) | set(dll["orders"]) | set(ex["orders"])):
        b = last[cid]["filled"] if cid in last else 0.0
        d = dll["orders"][cid]["filled_quantity"] if cid in dll["orders"] else 0.0
        x = ex["orders"][cid]["filled_quantity"] if cid in ex["orders"] else 0.0
        sums = [sums[0] + b, sums[1] + d, sums[2] + x]
        if not (same_quantity(b, d) and same_quantity(b, x)):
            fill_mismatch.append((cid, {"broker": b, "dll_gateway": d, "executor": x,
                                        "broker status": last[cid]["status"] if cid in last else "-",
                                        "executor status": ex["orders"].get(cid, {}).get("status", "-")}))

    # Every report of dll_gateway's stream stored once by the executor, the
    # same report (order, cumulative filled), none missing at the end.
    stream = dll["stream"]
    seqs = [r["seq"] for r in dll["reports"]]
    holes = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))[:20] if seqs else []
    missing, differ = [], []
    for r in dll["reports"]:
        mine = ex["reports"].get(f"{stream}:{r['seq']}")
        if mine is None:
            missing.append((r["seq"], r["client_order_id"], STATUS_NAMES.get(r["status"], r["status"])))
        elif mine["client_order_id"] != r["client_order_id"] or \
                not same_quantity(mine["filled_quantity"], r["filled_quantity"]):
            differ.append((r["seq"], r["client_order_id"], r["filled_quantity"], mine["client_order_id"],
                           mine["filled_quantity"]))
    known = {f"{stream}:{s}" for s in seqs}
    foreign = sorted(rid for rid in ex["reports"] if rid not in known)
    want_cursor = (stream, (seqs[-1] if seqs else 0) + 1)
    cursor_ok = not seqs or ex["cursor"] == want_cursor

    # Open at the broker <=> working in the executor (and open at dll_gateway).
    open_broker = {cid for cid, e in last.items() if e["status"] in OPEN_STATUSES}
    working = {cid for cid, o in ex["orders"].items() if o["state"] == "SENT" and o["status"] in OPEN_STATUSES}
    open_dll = {cid for cid, o in dll["orders"].items() if o["status"] in OPEN_STATUSES}

    def describe(cid):
        b, d, x = last.get(cid), dll["orders"].get(cid), ex["orders"].get(cid)
        return (cid, {"broker": b and f"{b['kind']} {b['status']} {b['filled']:g}",
                      "dll_gateway": d and f"{d['state']} {d['status']} {d['filled_quantity']:g}",
                      "executor": x and f"{x['state']} {x['status']} {x['filled_quantity']:g} "
                                        f"cancel '{x['cancel_state']}'"})

    # No cancel sent twice; none the pipeline did not ask for.
    cancel_twice = sorted((cid, n) for cid, n in cancels_at_broker.items() if n > 1)
    cancel_unasked = [describe(cid) for cid in sorted(cancels_at_broker)
                      if cid not in dll["cancels"] or not (ex["orders"].get(cid) or {}).get("cancel_state")]

    # No fill from a stale quote, each from a tick the gateway published.
    # dll_gateway's reports name the exact tick (seq and its time): a fill is
    # at that tick's touch (the ask for a buy, the bid for a sell), at the
    # order's limit or better, and no larger than the size the tick displayed.
    # A fill at once (an ORDER line) is at one price, its avg_price; its line
    # names the tick by seq only: the freshest recorded one by the broker's
    # time of the fill.
    max_age_ns = max_quote_age_ms * 1_000_000
    fills = broker_fills(events)
    stale = []
    ages = []
    off_quote, priced = [], 0

    def judge(cid, what, instrument, buy, seq, quote, price, quantity):
        bid, ask, bid_volume, ask_volume = quote
        touch, shown = (ask, ask_volume) if buy else (bid, bid_volume)
        order = dll["orders"].get(cid) or {}
        limit = order.get("limit_price") if order.get("order_type") == ORDER_TYPE_LIMIT else None
        why = []
        if price != touch:
            why.append(f"price {price} is not the {'ask' if buy else 'bid'} {touch}")
        if limit is not None and (price > limit if buy else price < limit):
            why.append(f"beyond the limit {limit}")
        if shown > 0 and quantity > shown:
            why.append(f"{quantity:g} > the {shown:g} displayed")
        if why:
            off_quote.append((cid, what, "BUY" if buy else "SELL", f"{instrument} seq {seq}", "; ".join(why)))

    # The broker's fills, once: each one's quote age, then an ORDER line's
    # price and size against its tick.
    for e, qty in fills:
        if e["quote_seq"] == 0:
            stale.append((e["cid"], e["kind"], qty, "quote_seq 0: names no tick"))
            continue
        if ticks is None:
            continue
        age, how = ticks.fill_quote_age(e["instrument"], e["quote_seq"], e["ts_ns"])
        if age is None or (max_age_ns and age > max_age_ns):
            stale.append((e["cid"], e["kind"], qty, f"{e['instrument']} seq {e['quote_seq']}: " +
                          (how if age is None else f"{how} {age / 1e6:.0f} ms old")))
        else:
            ages.append(age)
        if e["kind"] != "ORDER":
            continue
        seen = [ts for ts in ticks.ticks.get((e["instrument"], e["quote_seq"]), ()) if ts <= e["ts_ns"]]
        if seen:
            priced += 1
            judge(e["cid"], "ORDER line", e["instrument"], e["side"] == "BUY", e["quote_seq"],
                  ticks.quotes[(e["instrument"], e["quote_seq"], max(seen))], e["avg_price"], qty)
    for r in dll["reports"]:
        quote = ticks and ticks.quotes.get((r["instrument"], r["quote_seq"], r["quote_ts_ns"]))
        if r["last_quantity"] > 0 and quote:
            priced += 1
            judge(r["client_order_id"], f"report {r['seq']}", r["instrument"], r["side"] == SIDE_BUY,
                  r["quote_seq"], quote, r["last_price"], r["last_quantity"])
        if r["quote_seq"] and ticks is not None:
            if not ticks.published(r["instrument"], r["quote_seq"], r["quote_ts_ns"]):
                stale.append((r["client_order_id"], f"report {r['seq']}", r["last_quantity"],
                              f"{r['instrument']} seq {r['quote_seq']} at {utc(r['quote_ts_ns'])}: not published"))
            elif max_age_ns and r["broker_ts_ns"] - r["quote_ts_ns"] > max_age_ns:
                stale.append((r["client_order_id"], f"report {r['seq']}", r["last_quantity"],
                              f"{(r['broker_ts_ns'] - r['quote_ts_ns']) / 1e6:.0f} ms old"))

    statuses = collections.Counter(e["status"] for e in last.values())
    kinds = collections.Counter(e["kind"] for e in events)
    return {
        "broker_events": dict(kinds),
        "broker_final_status": dict(statuses),
        "broker_fills": len(fills),
        "resting_fills": sum(1 for e, _ in fills if e["kind"] == "FILL"),
        "filled_sums": sums,
        "fill_mismatch": len(fill_mismatch),
        "fill_mismatch_detail": fill_mismatch[:20],
        "report_stream": stream,
        "reports": len(seqs),
        "report_holes": holes,
        "reports_missing": len(missing),
        "reports_missing_detail": missing[:20],
        "reports_differ": len(differ),
        "reports_differ_detail": differ[:20],
        "reports_foreign": len(foreign),
        "reports_foreign_detail": foreign[:20],
        "executor_reports": len(ex["reports"]),
        "cursor": ex["cursor"],
        "cursor_want": want_cursor,
        "cursor_ok": cursor_ok,
        "open_at_broker": len(open_broker),
        "open_broker_only": [describe(c) for c in sorted(open_broker - working)][:20],
        "open_executor_only": [describe(c) for c in sorted(working - open_broker)][:20],
        "open_dll_differs": [describe(c) for c in sorted(open_broker ^ open_dll)][:20],
        "cancels_at_broker": sum(cancels_at_broker.values()),
        "cancel_rows": len(dll["cancels"]),
        "cancel_twice": cancel_twice[:20],
        "cancel_unasked": cancel_unasked[:20],
        "stale_fills": len(stale),
        "stale_fills_detail": stale[:20],
        "fills_priced": priced,
        "fills_off_quote": len(off_quote),
        "fills_off_quote_detail": off_quote[:20],
        "quote_age_max_ms": max(ages) / 1e6 if ages else 0.0,
        "max_quote_age_ms": max_quote_age_ms,
    }


def life_checks(life, counters=None):
    """(name, ok, detail) for each guarantee of orders with a life
    (reconcile_life), and with `counters` (stats summed over every life of a
    program: "executor invalid_transitions"...) the state machines' counts."""
    b, d, x = life["filled_sums"]
    checks = [
        ("every broker fill applied once (filled: broker = dll_gateway.db = executor.db per order)",
         life["fill_mismatch"] == 0, f"{life['fill_mismatch']} orders: {life['fill_mismatch_detail']}"),
        ("filled in all: broker = dll_gateway.db = executor.db", same_quantity(b, d) and same_quantity(b, x),
         f"broker {b:g}, dll_gateway {d:g}, executor {x:g}"),
        ("dll_gateway's report seqs without a hole", not life["report_holes"], f"holes {life['report_holes']}"),
        ("every dll_gateway report stored once by the executor", life["reports_missing"] == 0,
         f"{life['reports_missing']} missing (seq, order, status): {life['reports_missing_detail']}"),
        ("the executor's reports are dll_gateway's (order, filled) and of its stream",
         life["reports_differ"] == 0 and life["reports_foreign"] == 0,
         f"differ (seq, order, filled, executor's order, filled): {life['reports_differ_detail']}; "
         f"not of stream {life['report_stream']}: {life['reports_foreign_detail']}"),
        ("the executor's report cursor just past the last seq", life["cursor_ok"],
         f"cursor {life['cursor']}, want {life['cursor_want']}"),
        ("every order open at the broker is working in the executor", not life["open_broker_only"],
         life["open_broker_only"]),
        ("every working order in the executor is open at the broker", not life["open_executor_only"],
         life["open_executor_only"]),
        ("open at the broker = open in dll_gateway.db", not life["open_dll_differs"], life["open_dll_differs"]),
        ("no cancel sent twice (one CANCEL line per id)", not life["cancel_twice"], life["cancel_twice"]),
        ("every cancel at the broker asked for (executor cancel_state, dll_gateway cancels row)",
         not life["cancel_unasked"], life["cancel_unasked"]),
        (f"no fill from a stale quote (each names a published tick <= {life['max_quote_age_ms']} ms old)",
         life["stale_fills"] == 0, f"{life['stale_fills']} (id, line, qty, why): {life['stale_fills_detail']}"),
        (f"every fill at its tick's touch, at the limit or better, within the displayed size "
         f"({life['fills_priced']} fills against a recorded tick)",
         life["fills_off_quote"] == 0, f"{life['fills_off_quote']} (id, report, side, tick, why): "
                                       f"{life['fills_off_quote_detail']}"),
    ]
    if counters is not None:
        for key in ("executor invalid_transitions", "dll_gateway invalid_transitions",
                    "executor reports_unknown_order", "dll_gateway reports_unknown_order"):
            checks.append((f"{key} == 0 (all lives)", counters.get(key, 0) == 0, counters.get(key, 0)))
    return checks


def life_rows(life):
    """Figure rows (name, value) of reconcile_life for a table."""
    return [
        ("broker journal lines by kind", ", ".join(f"{k}={v}" for k, v in sorted(life["broker_events"].items()))),
        ("orders by final broker status", ", ".join(f"{k}={v}" for k, v in
                                                    sorted(life["broker_final_status"].items()))),
        ("broker fills (of them on resting orders)", f"{life['broker_fills']} ({life['resting_fills']})"),
        ("filled broker / dll_gateway / executor", " / ".join(f"{v:g}" for v in life["filled_sums"])),
        ("reports (dll_gateway / executor.db)", f"{life['reports']} / {life['executor_reports']} "
                                                 f"(stream {life['report_stream']})"),
        ("open at the broker at the end", life["open_at_broker"]),
        ("cancels at the broker / dll_gateway rows", f"{life['cancels_at_broker']} / {life['cancel_rows']}"),
        ("oldest quote a fill matched", f"{life['quote_age_max_ms']:.0f} ms (bound {life['max_quote_age_ms']} ms)"),
        ("fills checked against their tick's quote (touch, limit, size) / off it",
         f"{life['fills_priced']} / {life['fills_off_quote']}"),
    ]


# --------------------------------------------------------------------------
# Trading controls (the kill switch, risk over open orders, throttles):
# commands to the executor's control socket, and their guarantees
# reconciled from the files of a stopped run (the sim broker's journal,
# executor.db with its control_log, the journals and the dead letters).

def has_trading_controls():
    """True when this tree's programs have the trading controls
    (risk.max_open_orders is their first config key)."""
    return "max_open_orders" in default_keys("risk")
CLOSING_PREFIX = "flatten."  # the signal ids of a flatten's closing orders


def control(config, command, reason=None, timeout=30):
    """An operator's trading command, as one is given: `tpctl --config
    CONFIG <command> [--reason REASON] --json` (command: halt, resume,
    flatten, trading...; tpctl finds the executor's control endpoint in the
    config and retries as Lazy Pirate). Returns the ControlReply's fields
    (state by name, rc: tpctl's exit code, 0 applied, 1 refused), or None
    when the executor did not answer (exit 2)."""
    import json
    args = [sys.executable, TPCTL, "--config", config, command, "--json"]
    if reason is not None:
        args += ["--reason", reason]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    try:
        reply = json.loads(r.stdout)
    except ValueError:
        return None
    reply["rc"] = r.returncode
    return reply


IN_FLIGHT_SLACK_NS = 100_000_000


def read_dll_gateway_received(run_dir):
    """client order id -> (when dll_gateway first stored the order: its
    created_ts_ns, the request's arrival; when the executor sent it: the
    request's sent_ts_ns, 0 when unknown), from dll_gateway.db."""
    path = os.path.join(run_dir, "dll_gateway.db")
    if not os.path.exists(path):
        return {}
    con = sqlite3.connect(path)
    try:
        return {cid: (got, sent) for cid, got, sent in
                con.execute("SELECT client_order_id, created_ts_ns, sent_ts_ns FROM orders")}
    finally:
        con.close()


def read_controls_db(run_dir):
    """executor.db of a stopped run, what the trading controls left:
    {"control_log": [(ts_ns, command, state, cause)] in order, "signals":
    [row: signal_id, strategy, instrument, status, reason, received_ns] by
    received_ns, "orders": cid -> row (signal_id, strategy, instrument,
    side, filled_quantity, state, status, reason, created_ns)}."""
    path = os.path.join(run_dir, "executor.db")
    out = {"control_log": [], "signals": [], "orders": {}}
    if not os.path.exists(path):
        return out
    con = sqlite3.connect(path)
    try:
        out["control_log"] = [tuple(r) for r in con.execute(
            "SELECT ts_ns, command, state, cause FROM control_log ORDER BY rowid")]
        out["signals"] = _rows(con, "SELECT signal_id, strategy, instrument, status, reason, received_ns "
                                    "FROM signals ORDER BY received_ns")
        out["orders"] = {r["client_order_id"]: r for r in _rows(
            con, "SELECT client_order_id, signal_id, strategy, instrument, side, filled_quantity, state, "
                 "status, reason, created_ns FROM orders")}
    finally:
        con.close()
    return out


def state_windows(control_log, state):
    """[(from_ns, to_ns)] while the stored trading state was `state`, from
    the control_log (to_ns None: still so at the end)."""
    out, since = [], None
    for ts, _, st, _ in control_log:
        if st == state and since is None:
            since = ts
        elif st != state and since is not None:
            out.append((since, ts))
            since = None
    if since is not None:
        out.append((since, None))
    return out


def _within(ts, windows):
    return any(a <= ts and (b is None or ts <= b) for a, b in windows)


def max_in_window(times, restarts_ns, window_ns=1_000_000_000):
    """The most of `times` (sorted, ns) in any window of `window_ns`: (within
    one life, (count, at)), (across a restart, (count, at)); a life ends at
    each of `restarts_ns` (a throttle starts full in a new process)."""
    lives = [sum(1 for r in restarts_ns if r <= t) for t in times]
    best = {True: (0, None), False: (0, None)}
    j = 0
    for i, t in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < t + window_ns:
            j += 1
        one_life = lives[i] == lives[j - 1]
        if j - i > best[one_life][0]:
            best[one_life] = (j - i, utc(t))
    return best[True], best[False]


def broker_positions(events, group_of):
    """Positions at the broker from its journal's fills, in order: (peak |net|
    per instrument, peak |position| per (group, instrument), final net per
    instrument, final position per (group, instrument)); `group_of(cid)`
    names an order's group."""
    net, per_group = collections.defaultdict(float), collections.defaultdict(float)
    peak_net, peak_group = collections.defaultdict(float), collections.defaultdict(float)
    for e, qty in broker_fills(events):
        signed = qty if e["side"] == "BUY" else -qty
        key = (group_of(e["cid"]), e["instrument"])
        net[e["instrument"]] += signed
        per_group[key] += signed
        peak_net[e["instrument"]] = max(peak_net[e["instrument"]], abs(net[e["instrument"]]))
        peak_group[key] = max(peak_group[key], abs(per_group[key]))
    return dict(peak_net), dict(peak_group), dict(net), dict(per_group)


def max_open_at_broker(events):
    """(most orders open at the broker at once, when), from its journal."""
    open_now, best = set(), (0, None)
    for e in events:
        if e["status"] in OPEN_STATUSES:
            open_now.add(e["cid"])
        else:
            open_now.discard(e["cid"])
        if len(open_now) > best[0]:
            best = (len(open_now), utc(e["ts_ns"]))
    return best


def reconcile_controls(run_dir, halts, flattens, limits, restarts_ns, journals=None, letters=None):
    """The trading controls' guarantees over a stopped run:
      halts       [(halt reply ts_ns, resume reply ts_ns)] the nemesis saw
                  answered ok: no ORDER line at the broker between the two
                  but a flatten's closing orders and at most
                  limits["orders_in_flight"] (default 1) in flight at the
                  HALT (made and sent by the executor before its ok: the
                  executor answers while it waits on dll_gateway)
                  (orders_in_halt, in_flight_at_halt); no signal
                  accepted while the stored state was HALTED (control_log);
                  every signal refused trading_halted refused while HALTED,
                  dead-lettered trading_halted and acked in its journal;
      flattens    [(flatten reply ts_ns, resume reply ts_ns)]: the stored
                  state REDUCING with the flatten done (FLATTENED) in
                  between, the account flat at the end (the broker's net
                  per instrument, and the executor's: its group books
                  summed; groups holding opposite positions offset each
                  other and need not be flat);
      limits      {"rates": group -> max_orders_per_second, "max_position":
                  group -> its max_position, "risk_max_position": x,
                  "max_open_orders": n}: accepted signals of a throttled
                  group in any 1 s <= rate + burst (burst = the bucket's
                  depth, max(rate, 1)) within one executor life
                  (`restarts_ns`: when one ended; across a restart the new
                  bucket starts full: + one more burst); the broker's
                  position of a limited group and instrument, and its net
                  per instrument, never past the limit; never more orders
                  open at the broker than max_open_orders.
    `journals` (a JournalBook) and `letters` (a DeadLetterBook) as reconcile
    takes them."""
    db = read_controls_db(run_dir)
    events = read_broker_events(run_dir)
    log = db["control_log"]
    orders, signals = db["orders"], db["signals"]
    halted = state_windows(log, "HALTED")
    letters = letters or read_dead_letter_book(run_dir)
    book = JournalBook()
    book.signals, book.acked, book.given_up, _ = read_journal_signals(run_dir)
    if journals is not None:
        book.merge(journals)

    def group_of(cid):
        o = orders.get(cid)
        return o["strategy"] if o else "?"

    # HALT: nothing new reaches the broker, nothing is accepted, each refusal
    # dead-lettered and acked.
    # An ORDER line between a HALT's ok and the RESUME's is one in flight at
    # the HALT when the executor made it before the ok and sent it before
    # the ok too (the request's sent_ts_ns, kept by dll_gateway: a resend
    # repeats it, and the executor makes none while HALTED), however late a
    # busy dll_gateway read it (the executor answers a command while it
    # waits on dll_gateway); without a sent time, when dll_gateway had it by
    # the ok (IN_FLIGHT_SLACK_NS: a request sent just before the ok may be
    # stored by a busy dll_gateway just after it). Made after the ok, or
    # sent only later (while HALTED), it is an order the HALT let through.
    received = read_dll_gateway_received(run_dir)
    in_flight, let_through = collections.Counter(), []
    for e in events:
        o = orders.get(e["cid"]) or {}
        window = next(((a, b) for a, b in halts if a < e["ts_ns"] < b), None)
        if e["kind"] != "ORDER" or window is None or o.get("signal_id", "").startswith(CLOSING_PREFIX):
            continue
        made = o.get("created_ns") or 0
        got, sent = received.get(e["cid"]) or (0, 0)
        before_ok = sent < window[0] if sent else got < window[0] + IN_FLIGHT_SLACK_NS
        if made and got and made < window[0] and before_ok:
            in_flight[window] += 1
        else:
            let_through.append((e["cid"], utc(e["ts_ns"]), e["status"], f"made {made and utc(made)}, "
                                f"sent {sent and utc(sent)}, at dll_gateway {got and utc(got)}, "
                                f"HALT ok {utc(window[0])}"))
    strategy_signals = [s for s in signals if not s["signal_id"].startswith(CLOSING_PREFIX)]
    accepted_halted = [(s["signal_id"], utc(s["received_ns"])) for s in strategy_signals
                       if s["status"] == "ACCEPTED" and _within(s["received_ns"], halted)]
    refused = [s for s in strategy_signals if s["status"] == "REJECTED" and s["reason"].startswith("trading_halted")]
    refused_outside = [(s["signal_id"], utc(s["received_ns"])) for s in refused
                       if not _within(s["received_ns"], halted)]
    refused_no_letter = [s["signal_id"] for s in refused
                         if "trading_halted" not in letters.by_signal.get(s["signal_id"], {})]
    refused_unacked = [s["signal_id"] for s in refused
                       if s["signal_id"] in book.signals and s["signal_id"] not in book.acked]
    held_given_up = [o for o in orders.values() if o["state"] == "DONE" and o["status"] == "REJECTED" and
                     (o["reason"] or "").startswith(HALTED_UNSENT)]
    # Every order working at the broker when a HALT was answered is done
    # (canceled, or filled or expired meanwhile) by the RESUME.
    working_at_halt, still_open = 0, []
    for a, b in halts:
        def open_at(t):
            last = {}
            for e in events:
                if e["ts_ns"] >= t:
                    break
                last[e["cid"]] = e["status"]
            return {cid for cid, st in last.items() if st in OPEN_STATUSES}
        working_at_halt += len(open_at(a))
        still_open += sorted(open_at(b))

    # Throttles: accepted signals per group in any second.
    rates = {}
    for group, rate in limits.get("rates", {}).items():
        times = [s["received_ns"] for s in strategy_signals if s["strategy"] == group and s["status"] == "ACCEPTED"]
        depth = max(rate, 1)
        life, across = max_in_window(times, restarts_ns)
        limited = sum(1 for s in strategy_signals if s["strategy"] == group and s["reason"].startswith("rate_limited"))
        rates[group] = {"rate": rate, "bound": rate + depth, "bound_across": rate + 2 * depth, "max": life,
                        "max_across": across, "accepted": len(times), "rate_limited": limited}

    # Positions at the broker, and orders open there at once.
    peak_net, peak_group, net, per_group = broker_positions(events, group_of)
    positions = {}
    for group, limit in limits.get("max_position", {}).items():
        peaks = {i: p for (g, i), p in peak_group.items() if g == group}
        positions[group] = {"limit": limit, "peak": peaks, "over": {i: p for i, p in peaks.items()
                                                                    if p > limit * (1 + FILL_REL_TOL)}}
    risk_limit = limits.get("risk_max_position")
    net_over = {i: p for i, p in peak_net.items() if risk_limit and p > risk_limit * (1 + FILL_REL_TOL)}
    open_max = max_open_at_broker(events)

    # FLATTEN: REDUCING and flattened in between, flat at the end.
    flat = []
    for start, end in flattens:
        rows = [(ts, cmd, st) for ts, cmd, st, _ in log if start - 1_000_000_000 <= ts <= (end or ts)]
        flat.append({"states": [f"{cmd}->{st}" for _, cmd, st in rows],
                     "flattened": any(cmd == "FLATTENED" and st == "REDUCING" for _, cmd, st in rows)})
    closing = [o for o in orders.values() if o["signal_id"].startswith(CLOSING_PREFIX)]
    exec_books, exec_net = collections.defaultdict(float), collections.defaultdict(float)
    for o in orders.values():
        signed = o["filled_quantity"] * (1 if o["side"] == "BUY" else -1)
        exec_books[(o["strategy"], o["instrument"])] += signed
        exec_net[o["instrument"]] += signed

    def not_flat(book):
        return {k: round(v, 6) for k, v in book.items() if abs(v) > 1e-6}

    reasons = collections.Counter(s["reason"].split(":", 1)[0] for s in strategy_signals if s["status"] == "REJECTED")
    return {
        "control_log": [(utc(ts), cmd, st) for ts, cmd, st, _ in log],
        "automatic": [(utc(ts), st, cause) for ts, cmd, st, cause in log if cmd == "AUTO"],
        "halts": len(halts),
        "halted_windows": [(utc(a), b and utc(b)) for a, b in halted],
        "orders_in_halt": let_through[:20],
        "orders_in_halt_count": len(let_through),
        "in_flight_at_halt": sum(in_flight.values()),
        "in_flight_max": max(in_flight.values(), default=0),
        "orders_in_flight": limits.get("orders_in_flight", 1),
        "accepted_halted": accepted_halted[:20],
        "refused_halted": len(refused),
        "refused_outside": refused_outside[:20],
        "refused_no_letter": refused_no_letter[:20],
        "refused_unacked": refused_unacked[:20],
        "held_given_up": len(held_given_up),
        "working_at_halt": working_at_halt,
        "working_at_resume": still_open[:20],
        "rates": rates,
        "positions": positions,
        "peak_net": peak_net,
        "net_over": net_over,
        "risk_max_position": risk_limit,
        "open_max": open_max,
        "max_open_orders": limits.get("max_open_orders"),
        "flattens": flat,
        "closing_orders": len(closing),
        "closing_filled": sum(o["filled_quantity"] for o in closing),
        "net_at_end": not_flat(net),
        "executor_net_at_end": not_flat(exec_net),
        "groups_at_end_broker": not_flat(per_group),
        "groups_at_end_executor": not_flat(exec_books),
        "rejected_by_reason": dict(reasons),
    }


def control_checks(c, flatten_expected):
    """(name, ok, detail) for each guarantee reconcile_controls reads."""
    checks = [
        # No daily loss limit is set: an automatic state is a start-up
        # mismatch, and the books (every fill applied once) say there was none.
        ("no automatic state change (a start-up position or open-orders mismatch)", not c["automatic"],
         f"(UTC, state, cause): {c['automatic']}"),
        ("no order made or sent while HALTED reached the broker (between a HALT's ok and the RESUME's; "
         "closing orders aside)", c["orders_in_halt_count"] == 0,
         f"{c['orders_in_halt_count']} (cid, broker time, status, when; UTC): {c['orders_in_halt']}"),
        (f"at most executor.orders_in_flight ({c['orders_in_flight']}) in flight at a HALT landed after it",
         c["in_flight_max"] <= c["orders_in_flight"], f"{c['in_flight_max']} at one HALT"),
        ("no signal accepted while the stored state was HALTED", not c["accepted_halted"], c["accepted_halted"]),
        ("every trading_halted refusal made while HALTED", not c["refused_outside"], c["refused_outside"]),
        ("every trading_halted refusal dead-lettered trading_halted", not c["refused_no_letter"],
         c["refused_no_letter"]),
        ("every trading_halted refusal acked in its journal", not c["refused_unacked"], c["refused_unacked"]),
        ("every order working at the broker at a HALT done (canceled) by the RESUME", not c["working_at_resume"],
         f"still open: {c['working_at_resume']}"),
    ]
    for group, r in sorted(c["rates"].items()):
        checks.append((f"group {group}: accepted signals in any 1 s <= rate + burst ({r['bound']:g}) within an "
                       f"executor life", r["max"][0] <= r["bound"], f"{r['max'][0]} at {r['max'][1]} UTC"))
        checks.append((f"group {group}: ... and <= {r['bound_across']:g} across a restart (a new bucket is full)",
                       r["max_across"][0] <= r["bound_across"], f"{r['max_across'][0]} at {r['max_across'][1]} UTC"))
    for group, p in sorted(c["positions"].items()):
        checks.append((f"group {group}: its position at the broker never past its max_position {p['limit']:g}",
                       not p["over"], f"peaks {p['over']}"))
    if c["risk_max_position"]:
        checks.append((f"net position at the broker never past risk.max_position {c['risk_max_position']:g}",
                       not c["net_over"], f"peaks {c['net_over']}"))
    if c["max_open_orders"]:
        checks.append((f"orders open at the broker at once <= risk.max_open_orders {c['max_open_orders']}",
                       c["open_max"][0] <= c["max_open_orders"], f"{c['open_max'][0]} at {c['open_max'][1]} UTC"))
    if flatten_expected:
        checks += [
            ("FLATTEN: REDUCING, flattened (closing orders filled)",
             bool(c["flattens"]) and all(f["flattened"] for f in c["flattens"]), c["flattens"]),
            ("FLATTEN: the account flat at the end (net per instrument at the broker and in the executor)",
             not c["net_at_end"] and not c["executor_net_at_end"],
             f"broker {c['net_at_end']}, executor {c['executor_net_at_end']}"),
            ("FLATTEN: the group books agree with the broker's fills per group",
             c["groups_at_end_broker"] == c["groups_at_end_executor"],
             f"broker {c['groups_at_end_broker']}, executor {c['groups_at_end_executor']}"),
        ]
    return checks


def control_rows(c):
    """Figure rows (name, value) of reconcile_controls for a table."""
    rows = [
        ("trading states stored (control_log)", "; ".join(f"{t} {cmd}->{st}" for t, cmd, st in c["control_log"])
         or "-"),
        ("halts (HALT ok -> RESUME ok)", c["halts"]),
        ("orders at the broker during a halt: made or sent while HALTED / in flight at the HALT",
         f"{c['orders_in_halt_count']} / {c['in_flight_at_halt']}"),
        ("signals refused while halted (trading_halted)", c["refused_halted"]),
        ("orders working at the broker at a HALT (all canceled by the RESUME)",
         f"{c['working_at_halt']} ({len(c['working_at_resume'])} still open)"),
        ("held orders given up at a halt", c["held_given_up"]),
        ("refusals by reason (executor.db)", ", ".join(f"{k}={v}" for k, v in sorted(c["rejected_by_reason"].items()))
         or "-"),
    ]
    for group, r in sorted(c["rates"].items()):
        rows.append((f"group {group}: throttle {r['rate']:g}/s", f"{r['accepted']} accepted, {r['rate_limited']} "
                     f"rate_limited; most in 1 s {r['max'][0]} (bound {r['bound']:g}), across a restart "
                     f"{r['max_across'][0]} (bound {r['bound_across']:g})"))
    for group, p in sorted(c["positions"].items()):
        rows.append((f"group {group}: peak position at the broker (max_position {p['limit']:g})",
                     ", ".join(f"{i}={v:g}" for i, v in sorted(p["peak"].items())) or "-"))
    rows += [
        ("peak net position at the broker per instrument", ", ".join(f"{i}={v:g}" for i, v in
                                                                     sorted(c["peak_net"].items())) or "-"),
        ("most orders open at the broker at once", f"{c['open_max'][0]} at {c['open_max'][1]} UTC"
                                                   f" (max_open_orders {c['max_open_orders']})"),
        ("flatten: closing orders (filled)", f"{c['closing_orders']} ({c['closing_filled']:g})"),
        ("positions not flat at the end (broker net)", c["net_at_end"] or "none"),
        ("group positions at the end (executor.db)", ", ".join(f"{g}/{i}={v:g}" for (g, i), v in
                                                             sorted(c["groups_at_end_executor"].items())) or "none"),
    ]
    return rows


# --------------------------------------------------------------------------
# Faults besides kill -9: garbage floods, resource sampling.

FLOOD_FRAME_BYTES = 60 * 1024   # under the 64 KiB ZMQ_MAXMSGSIZE of every reading socket


def garbage_frames(rng, count, size=FLOOD_FRAME_BYTES):
    """`count` garbage frames of `size` bytes from a seeded rng: a few kinds of
    bad msgpack (a never-used byte, a huge array header, a plausible array
    of junk, plain noise), each frame different."""
    blobs = [rng.randbytes(size) for _ in range(8)]
    prefixes = [b"\xc1", b"\xdd\xff\xff\xff\xff", b"\x9c\x03\x01", b""]
    for i in range(count):
        head = prefixes[i % len(prefixes)] + i.to_bytes(4, "little")
        yield head + blobs[i % len(blobs)][len(head):]


def flood(endpoint, frames, deadline_s, stop=None):
    """PUSHes `frames` (an iterable of bytes) to `endpoint` until they are all
    queued, `deadline_s` has passed or `stop` (a threading.Event) is set.
    A peer that does not read (stopped) makes the sends wait at the
    high-water mark, so each send waits at most 100 ms. Returns (frames,
    bytes) queued; whatever is still queued at the end is dropped (linger 0)."""
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 200)
    sock.setsockopt(zmq.SNDTIMEO, 100)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sent = nbytes = 0
    end = time.monotonic() + deadline_s
    try:
        for frame in frames:
            while True:
                if time.monotonic() >= end or (stop is not None and stop.is_set()):
                    return sent, nbytes
                try:
                    sock.send(frame, copy=False)
                    break
                except zmq.Again:
                    continue
            sent += 1
            nbytes += len(frame)
        return sent, nbytes
    finally:
        sock.close(0)
        ctx.term()


def proc_memory_kb(pid):
    """(VmRSS, VmHWM) in kB of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            vals[key] = int(rest.split()[0])
    if "VmRSS" not in vals:
        return None  # a zombie
    return vals["VmRSS"], vals.get("VmHWM", vals["VmRSS"])


def mount_tmpfs(path, size_bytes):
    """Mounts a tmpfs of `size_bytes` on `path` (root only); False when it
    cannot."""
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", path],
                           capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def unmount(path):
    subprocess.run(["umount", "-l", path], capture_output=True, timeout=10)


def fill_filesystem(path, block=1 << 20):
    """Writes `path` until its filesystem is full; returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        chunk = b"\0" * block
        while True:
            try:
                written += f.write(chunk)
            except OSError:
                if block <= 4096:
                    return written
                block //= 16
                chunk = b"\0" * block
    return written


def disk_usage(path, skip=("chaos-filler",)):
    """Bytes `path` takes on disk, as `du -s` counts them (allocated blocks),
    and the largest file (name, apparent bytes); `skip` names files not
    counted (the nemesis' own filler)."""
    total, largest = 0, ("", 0)
    for root, _, files in os.walk(path):
        for name in files:
            if name in skip:
                continue
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # rotated or replaced meanwhile
            total += st.st_blocks * 512
            if st.st_size > largest[1]:
                largest = (os.path.relpath(os.path.join(root, name), path), st.st_size)
    return total, largest


# --------------------------------------------------------------------------
# Plain processes (for crash points: the test decides each start's environment).

class Processes:
    """Programs started directly; close() kills whatever is left."""

    def __init__(self, d, config):
        self.d, self.config = d, config
        self.logs = os.path.join(d, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.procs = {}

    def start(self, name, *args, env=None):
        program = name.split(":")[0]
        full_env = dict(os.environ)
        full_env.pop("TP_CRASH_POINT", None)
        full_env.update(env or {})
        with open(os.path.join(self.logs, stats_file_name(name) + ".log"), "ab") as log:
            p = subprocess.Popen([os.path.join(BIN_DIR, program), "--config", self.config, *args],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=full_env, start_new_session=True, preexec_fn=_no_core)
        self.procs[name] = p
        return p

    def stop(self, name, timeout=15):
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        return p.wait(timeout)

    def log(self, name):
        try:
            with open(os.path.join(self.logs, stats_file_name(name) + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)


def _no_core():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the crash points abort()


def now_ns():
    return time.time_ns()
