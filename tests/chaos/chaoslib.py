"""Helpers for the fault tests: a whole deployment under the real supervisor
(or as plain processes), and the reconciliation of a finished run FROM ITS
FILES: the strategies' signal journals, the executor's SQLite database, the
simulated broker's order journal and the dead-letter file.

The books balance when every signal a strategy journaled is either executed
once (its client order id "C-<signal_id>" reached the broker exactly once and
the executor recorded the outcome) or dead-lettered with a reason, and no
client order id reached the broker as a new order twice."""

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
from svtest import SupervisorRun, pid_alive, wait_for  # noqa: E402,F401
from waiting import read_json  # noqa: E402  (tests/support, on sys.path through svtest)

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
                order_timeout_ms=300, extra=""):
    """A deployment on ipc:// endpoints in `d`; the sim broker journals every
    order. A broker latency keeps orders in flight longer, so that a kill
    lands between request and reply more often. `extra` is appended (TOML
    lines; its own section headers)."""
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    rotation = dead_letter_rotation()
    return "\n".join([
        "[run]", f'dir = "{run_dir}"', "stats_interval_ms = 100",
        "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
        "[gateway]", f"rate = {rate}", "heartbeat_ms = 200",
        "[strategy]", 'name = "every_nth"', f"instances = {instances}", "resend_ms = 300",
        f"signal_ttl_ms = {signal_ttl_ms}", "feed_timeout_ms = 1000",
        "[strategy.every_nth]", f"n = {every_nth}",
        "[executor]", f"order_timeout_ms = {order_timeout_ms}", "order_retries = 3",
        "[dll_gateway.settings]", f'journal_path = "{broker_journal_path(run_dir)}"',
        f"latency_ms = {broker_latency_ms}",
        *(["[dead_letter]", f"max_file_bytes = {rotation[0]}", f"max_files = {rotation[1]}"] if rotation else []),
        # Planned kills must not look like flapping; restarts come fast.
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 100", "flap_window_s = 1",
        "flap_max_restarts = 1000", "stop_grace_ms = 5000", "healthy_after_ms = 500",
        extra, "",
    ])


def stats(run_dir, name, pid=None):
    data = read_json(os.path.join(run_dir, f"{name}.stats.json"))
    if data is None or (pid is not None and data.get("pid") != pid):
        return None
    return data


def stats_file_name(proc_name):
    return proc_name.replace(":", "-")


def tpctl(run_dir, *args, timeout=60):
    r = subprocess.run([sys.executable, TPCTL, "--run-dir", run_dir, *args], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"tpctl {' '.join(args)}: rc {r.returncode}: {r.stdout}{r.stderr}")
    return r.stdout


def settled(run_dir, strategy_pids, executor_pid, since_ns):
    """True once every strategy has nothing pending and the executor has no
    order whose outcome it does not know, in stats written after `since_ns`."""
    for name, pid in strategy_pids.items():
        s = stats(run_dir, stats_file_name(name), pid)
        if not s or s.get("ts_ns", 0) < since_ns or s.get("signals_pending", 1) != 0:
            return False
    e = stats(run_dir, "executor", executor_pid)
    if not e or e.get("ts_ns", 0) < since_ns:
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
    signal id to {"expires_ts_ns", "created_ts_ns", "journals": {names}}."""

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
                "journals": set()})
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
    of reasons (from the original bytes: a signal or an order request)."""

    def __init__(self):
        self.by_signal = collections.defaultdict(collections.Counter)
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
      unacked             given up by a strategy (X record), dead letter `unacked`.
    None is `lost`; more than one is `accounted_twice` (e.g. given up as
    unacked although the executor executed it). No broker fill may be at or
    after its signal's expiry. A signal is left unacked when a journal as it
    is at the end holds it with neither an A nor an X record. Given up means
    an X record, or an `unacked` dead letter (an X record may be compacted
    away before a follower sees it)."""
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

    executed, lost, unacked, dl_missing, twice, dl_twice = [], [], [], [], [], []
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
                    EXPIRED_ORDER.search(order["reason"] or ""):
                label = "expired (held)" if order["reason"].startswith("expired: held") else "expired (order)"
                outcomes.append(label)
                if "expired" not in dl:
                    dl_missing.append((sid, label, order["updated_ns"]))
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
            else:
                dead[o] += 1

    # A fill at or after the signal's expiry: the broker's own time of the
    # order against the expiry in the journaled signal bytes (the executor's
    # expires_ns when the journal no longer has the signal).
    late, late_any, no_expiry = [], 0, 0
    for o in broker_orders:
        sid = o["cid"][2:] if o["cid"].startswith("C-") else None
        exp = signals.get(sid, {}).get("expires_ts_ns") or (orders.get(o["cid"]) or {}).get("expires_ns") or 0
        if not exp:
            no_expiry += 1
            continue
        if o["ts_ns"] >= exp:
            late_any += 1
            if o["status"] in FILL_STATUSES:
                late.append((o["cid"], utc(o["ts_ns"]), utc(exp), round((o["ts_ns"] - exp) / 1e6, 1)))

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
        "dead_by_reason": dict(dead),
        "lost": len(lost),
        "lost_detail": lost[:20],
        "accounted_twice": len(twice),
        "accounted_twice_detail": twice[:20],
        "dead_lettered_twice": len(dl_twice),
        "dead_lettered_twice_detail": dl_twice[:20],
        "broker_orders": len(broker_orders),
        "broker_rejects": sum(1 for o in broker_orders if o["status"] not in FILL_STATUSES),
        "broker_duplicates": len(duplicates),
        "duplicate_detail": dict(list(duplicates.items())[:20]),
        "broker_orphans": len(orphans),
        "orphan_detail": orphans[:20],
        "fills_after_expiry": len(late),
        "fills_after_expiry_detail": late[:20],
        "broker_orders_after_expiry": late_any,
        "broker_orders_no_expiry": no_expiry,
        "unacked_in_journal": len(unacked),
        "unacked_detail": unacked[:20],
        "dead_letters_by_detail": letter_book.by_detail,
        "detail_disagrees": len(letter_book.detail_disagrees),
        "detail_disagrees_detail": letter_book.detail_disagrees[:20],
        "dead_letter_line_missing": len(dl_missing),
        "dead_letter_missing_detail": [(sid, what, due and utc(due)) for sid, what, due in dl_missing[:20]],
        "dead_letter_missing_all": dl_missing,
        "executor_orders": len(orders),
    }


def figures_table(title, books, extra_rows=()):
    rows = [
        ("signals journaled (seen while running)", books["journaled"]),
        ("  still in a journal at the end", books["journaled_at_end"]),
        ("  per journal", ", ".join(f"{j}={n}" for j, n in books["journals"].items()) or "-"),
        ("executed once", books["executed"]),
        ("dead-lettered", books["dead_lettered"]),
        *((f"  reason {r}", n) for r, n in sorted(books["dead_by_reason"].items())),
        ("lost", books["lost"]),
        ("accounted for twice", books["accounted_twice"]),
        ("dead-lettered twice (same signal)", books["dead_lettered_twice"]),
        ("broker orders (sim journal lines)", books["broker_orders"]),
        ("  of which not filled (refused)", books["broker_rejects"]),
        ("broker duplicates", books["broker_duplicates"]),
        ("broker orders with no signal", books["broker_orphans"]),
        ("broker orders at/after expiry", books["broker_orders_after_expiry"]),
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
        ("no fill at/after expiry", books["fills_after_expiry"] == 0,
         "(cid, broker time, expiry, late ms; UTC): " + repr(books["fills_after_expiry_detail"])),
        ("every journaled signal acked or given up", books["unacked_in_journal"] == 0, books["unacked_detail"]),
        ("every dead-letter outcome has its line" + (
            f" (but {len(lost)} lost with the disk full, of {lines_lost} lines the sink lost)" if lost else ""),
         not missing, [(sid, what, due and utc(due)) for sid, what, due in missing[:20]]),
        ("every letter's detail names the signal of its original", books["detail_disagrees"] == 0,
         "(original's id, detail's id): " + repr(books["detail_disagrees_detail"])),
        ("outcomes add up", books["executed"] + books["dead_lettered"] == books["journaled"],
         f"{books['executed']} + {books['dead_lettered']} != {books['journaled']}"),
    ]


def assert_books_balance(test, books, what):
    failed = [f"{name}: {detail}" for name, ok, detail in book_checks(books) if not ok]
    test.assertFalse(failed, f"{what}: " + "\n".join(failed))


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
