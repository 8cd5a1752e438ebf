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

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PROGRAMS = ("gateway", "strategy", "executor", "dll_gateway", "dead_letter")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")

SIM_JOURNAL = "sim_broker.journal"


def config_text(d, run_dir, *, rate=1000, every_nth=20, instances=2, broker_latency_ms=0, extra=""):
    """A deployment on ipc:// endpoints in `d`; the sim broker journals every
    order. A broker latency keeps orders in flight longer, so that a kill
    lands between request and reply more often."""
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    return "\n".join([
        "[run]", f'dir = "{run_dir}"', "stats_interval_ms = 100",
        "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
        "[gateway]", f"rate = {rate}", "heartbeat_ms = 200",
        "[strategy]", 'name = "every_nth"', f"instances = {instances}", "resend_ms = 300",
        "signal_ttl_ms = 5000", "feed_timeout_ms = 1000",
        "[strategy.every_nth]", f"n = {every_nth}",
        "[executor]", "order_timeout_ms = 300", "order_retries = 3",
        "[dll_gateway.settings]", f'journal_path = "{os.path.join(run_dir, SIM_JOURNAL)}"',
        f"latency_ms = {broker_latency_ms}",
        # Planned kills must not look like flapping; restarts come fast.
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 100", "flap_window_s = 1",
        "flap_max_restarts = 1000", "stop_grace_ms = 5000", "healthy_after_ms = 500",
        extra, "",
    ])


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


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

def _decode_signal_id(payload):
    try:
        name, fields = tp_proto.decode(payload)
    except tp_proto.ProtocolError:
        return None
    if name in ("signal", "order_request"):
        return fields["signal_id"]
    return None


def read_journals(run_dir):
    """signal ids journaled (S), acked (A), given up (X), over every instance."""
    journaled, acked, given_up = set(), set(), set()
    for path in sorted(glob.glob(os.path.join(run_dir, "strategy-*.journal"))):
        with open(path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n") or len(raw) < 3:
                    continue  # a torn last line was never acted on
                kind, arg = raw[:1], raw[2:-1].decode(errors="replace")
                if kind == b"S":
                    sid = _decode_signal_id(bytes.fromhex(arg))
                    if sid:
                        journaled.add(sid)
                elif kind == b"A":
                    acked.add(arg)
                elif kind == b"X":
                    given_up.add(arg)
    return journaled, acked, given_up


def read_broker_journal(run_dir):
    """client order id -> how many times the sim broker received it as a new order."""
    counts = collections.Counter()
    path = os.path.join(run_dir, SIM_JOURNAL)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if line.endswith("\n") and len(parts) >= 8:
                    counts[urllib.parse.unquote(parts[1])] += 1
    return counts


def read_executor_db(run_dir):
    """(signals: id -> (status, reason), orders: client id -> row dict)."""
    path = os.path.join(run_dir, "executor.db")
    if not os.path.exists(path):
        return {}, {}
    con = sqlite3.connect(path)
    try:
        sigs = {r[0]: (r[1], r[2]) for r in con.execute("SELECT signal_id, status, reason FROM signals")}
        cols = ["client_order_id", "signal_id", "state", "status", "reason"]
        orders = {r[0]: dict(zip(cols, r)) for r in con.execute(f"SELECT {', '.join(cols)} FROM orders")}
    finally:
        con.close()
    return sigs, orders


def read_dead_letters(run_dir):
    """signal id -> set of reasons (from the original bytes: a signal or an order request)."""
    by_signal = collections.defaultdict(set)
    path = os.path.join(run_dir, "dead_letters.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                sid = _decode_signal_id(base64.b64decode(d.get("original_b64", "")))
                if sid:
                    by_signal[sid].add(d.get("reason", "?"))
    return by_signal


def reconcile(run_dir):
    """The books of a finished run. Returns a dict of figures and details."""
    journaled, acked, given_up = read_journals(run_dir)
    broker = read_broker_journal(run_dir)
    sigs, orders = read_executor_db(run_dir)
    letters = read_dead_letters(run_dir)

    executed, lost, unacked, dl_missing = [], [], [], []
    dead = collections.Counter()
    for sid in sorted(journaled):
        cid = "C-" + sid
        rec, order, n = sigs.get(sid), orders.get(cid), broker.get(cid, 0)
        if sid not in acked and sid not in given_up:
            unacked.append(sid)
        if rec and rec[0] == "ACCEPTED" and order:
            if order["state"] == "DONE" and order["reason"].startswith("expired: held"):
                dead["expired (held)"] += 1
                if n:
                    lost.append((sid, f"given up while held but {n} at the broker"))
                if "expired" not in letters.get(sid, ()):
                    dl_missing.append(sid)
            elif n >= 1 and order["state"] in ("DONE", "SENT"):
                executed.append(sid)  # n > 1 is counted as a duplicate below
            else:
                lost.append((sid, f"accepted, order {order['state']}, {n} at the broker"))
        elif rec and rec[0] == "REJECTED":
            reason = rec[1].split(":", 1)[0]
            dead[reason] += 1
            if reason not in letters.get(sid, ()):
                dl_missing.append(sid)
        elif sid in given_up and "unacked" in letters.get(sid, ()):
            dead["unacked"] += 1
        else:
            lost.append((sid, "never recorded by the executor"))

    duplicates = {cid: n for cid, n in broker.items() if n > 1}
    known = {"C-" + s for s in journaled} | set(orders)
    orphans = sorted(cid for cid in broker if cid not in known)
    return {
        "journaled": len(journaled),
        "executed": len(executed),
        "dead_lettered": sum(dead.values()),
        "dead_by_reason": dict(dead),
        "lost": len(lost),
        "lost_detail": lost[:20],
        "broker_orders": sum(broker.values()),
        "broker_duplicates": len(duplicates),
        "duplicate_detail": dict(list(duplicates.items())[:20]),
        "broker_orphans": len(orphans),
        "unacked_in_journal": len(unacked),
        "dead_letter_line_missing": len(dl_missing),
        "executor_orders": len(orders),
    }


def figures_table(title, books, extra_rows=()):
    rows = [
        ("signals journaled", books["journaled"]),
        ("executed once", books["executed"]),
        ("dead-lettered", books["dead_lettered"]),
        *((f"  reason {r}", n) for r, n in sorted(books["dead_by_reason"].items())),
        ("lost", books["lost"]),
        ("broker orders (sim journal lines)", books["broker_orders"]),
        ("broker duplicates", books["broker_duplicates"]),
        ("broker orders with no signal", books["broker_orphans"]),
        ("journaled, never acked", books["unacked_in_journal"]),
        ("rejected, dead-letter line missing", books["dead_letter_line_missing"]),
        *extra_rows,
    ]
    w = max(len(r[0]) for r in rows)
    out = [f"== {title} ==", *(f"  {k:<{w}}  {v}" for k, v in rows)]
    return "\n".join(out)


def assert_books_balance(test, books, what):
    test.assertGreater(books["journaled"], 0, f"{what}: no signal was journaled")
    test.assertEqual(books["lost"], 0, f"{what}: lost signals: {books['lost_detail']}")
    test.assertEqual(books["broker_duplicates"], 0, f"{what}: duplicates at the broker: {books['duplicate_detail']}")
    test.assertEqual(books["broker_orphans"], 0, f"{what}: broker orders no signal explains")
    test.assertEqual(books["unacked_in_journal"], 0, f"{what}: signals left unacked in a journal")
    test.assertEqual(books["executed"] + books["dead_lettered"], books["journaled"], what)


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
