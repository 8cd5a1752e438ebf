"""The chaos test: the whole pipeline under the real supervisor, faults of
several kinds on a seeded random schedule, then reconciliation from the files.

Synthetic feed at ~1,000 ticks/s, two every_nth strategy instances at the
start (group "strategy": a signal every 20th tick of an instrument, up to
~50 signals/s, as limit GTC orders 3 bp passive that mostly rest a while and
fill on a later tick, the rest canceled by the strategy after 1.5 s), one
every_nth instance of group "gtd" (every 40th tick: limit GTD orders good for
1 s, filled or expired at the broker) and one Python strategy instance (py-0,
python3 -m tp_strategy, the same rule on every instrument: up to ~50
market orders/s more), the sim broker journaling every order and every later
change (fill, cancel, expiry), answering after 10 ms (so that a kill often
lands while an order is in flight) and refusing, or holding, against a quote
older than 1.5 s (max_quote_age_ms). Signals live 2.5 s
(strategy.signal_ttl_ms), an order attempt times out after 300 ms.

The nemesis deals a shuffled deck of faults per round (seeded), with a short
random gap between two faults:
  kill      SIGKILL of gateway, a strategy instance, executor, dll_gateway,
            the dead_letter sink; the supervisor restarts it (kill -> new pid
            is timed); dll_gateway is killed while orders rest at the broker
            (the executor's orders_working > 0: they must survive in the sim
            broker's journal and keep matching), the executor while reports
            flow to it (its reports_received growing: it must catch up by
            seq), the sink with executor letters unread (stopped, for less
            than the hang timeout, until the executor's dead_letters has
            grown: ZeroMQ handed them over, the kill takes them; the
            executor must send its stored letters again once its connection
            to the sink is back, its dead_letters_replayed growing);
  pause     SIGSTOP of gateway, dll_gateway, executor, a strategy instance,
            the dead_letter sink for longer than the signal TTL (and so than
            the order timeout and max_quote_age_ms), then SIGCONT: a paused
            feed or dll_gateway leaves the sim broker's quotes stale;
  scale     `tpctl scale strategy N`, once up and once down per round, while
            signals are pending: the executor is stopped (`tpctl stop`) or
            paused first, so that the journals hold unacked signals when the
            instances are replaced (a scale-down leaves strategy-<k>.journal
            of departed instances behind);
  flood     the dead-letter sink is stalled (SIGSTOP) while thousands of
            ~60 KB garbage frames are pushed at one entry point: the
            executor's signal endpoint or the dead-letter endpoint itself.
  halt      (trading controls, at a random moment of the first round, from
            an rng of its own so that the deck a seed deals is unchanged)
            an operator HALT (`tpctl halt`), a kill -9
            of the executor while HALTED (signals being refused), RESUME
            2-4 s after its restart;
  flatten   after the last round, while the feed runs: FLATTEN, waited
            for until the executor says it is done; RESUME once the run
            has settled (the feed stopped, no position can change).
The first round is always dealt in full; further rounds run until
TP_CHAOS_SECONDS have passed. The gtd group trades under a throttle
(max_orders_per_second 10 of ~25 offered) and a max_position of two
orders that binds at its orders' worst case; risk.max_open_orders (100)
and risk.max_position (20,000) bind at times too.

A sampler thread reads the supervisor's status
every 250 ms and, for every pid it names (restarted ones included), VmRSS and
VmHWM from /proc; it also measures the run directory as `du` does, and reads
every strategy journal and dead-letter file as it grows (every 50 ms), since
a compaction (an adopted journal is compacted to its boot record once
nothing in it is pending) drops the records of settled signals, and a
dead-letter rotation deletes the oldest file.

A tick recorder (chaoslib.TickRecorder) subscribes to the feed for the
whole run: (instrument, seq) -> the gateway's time of each tick published.

Then the feed stops (`tpctl stop gateway`), the system settles (bounded
wait: no strategy has a pending signal or cancel, the executor has no order
whose outcome it does not know, every GTD order is past its good-till time,
and the executor's report cursor stands just past dll_gateway's last report
seq for a second), the run stops cleanly (`tpctl shutdown`) and the books
are reconciled from the files.
  chaoslib.reconcile: every journaled signal, in every <group>-<k>.journal,
    has exactly one outcome with its dead letter where one is due; no
    duplicate at the broker (one ORDER line per client order id); no signal
    made from a tick older than strategy.max_signal_tick_age_ms at its emit
    (created_ts_ns - causation_ts_ns: a paused strategy or gateway leaves a
    backlog of ticks that must not be traded on); no order
    handed to the broker chaoslib.HANDOVER_MS (5 ms) or more after its
    signal's expiry (one the sim broker decided late, 10 ms after the
    hand-over, says in its refusal when it was received) and no broker
    fill at or after it.
  chaoslib.outcome_letter_checks (the executor's outcome letters, by key,
    across kills of the executor and of the sink): every signal executor.db
    holds REJECTED and every letter its `letters` table holds (the newest
    4096) has exactly one line from source "executor" with its key in the
    sink's files (read while they grow), and no keyed line is written twice.
  chaoslib.reconcile_life (orders with a life: the sim broker's journal,
    dll_gateway.db and executor.db, read after the programs stopped):
    every broker fill applied exactly once (each order's cumulative filled
    equal in the three books, and the totals); every report of dll_gateway's
    stream, seqs without a hole, stored once by the executor as dll_gateway
    made it, its cursor just past the last; every order open at the broker a
    working order in the executor (SENT, ACCEPTED/PARTIALLY_FILLED) and in
    dll_gateway.db, and the reverse; no cancel sent twice (one CANCEL line
    per id at most) nor unasked; no fill from a stale quote (every fill's
    quote_seq names a tick the recorder saw the gateway publish at most
    max_quote_age_ms before the broker's time of the fill), and every fill
    at that tick's touch (the ask for a buy, the bid for a sell), at the
    order's limit or better, no larger than the tick's displayed size; no invalid
    state transition nor report for an unknown order at the executor or
    dll_gateway (stats summed over every life).
  chaoslib.reconcile_controls (the trading controls, from the broker's
    journal, executor.db's signals, orders and control_log, and
    dll_gateway.db): no automatic state change (no daily loss limit is
    set, so it would be a start-up mismatch the books at the end do not
    show); no ORDER line at the broker between a HALT's ok reply and the
    next RESUME's (a flatten's closing orders aside) but at most
    executor.orders_in_flight in flight at the HALT (made, and at
    dll_gateway, before its ok: the executor answers a command while it
    waits on dll_gateway); no signal accepted while the stored state was
    HALTED; every order working at the broker at the HALT canceled (or
    done) by the RESUME; every trading_halted refusal made while HALTED,
    dead-lettered and acked (the refusals by every new reason count as
    dead-lettered in the books: rate_limited, max_open_orders,
    reduce_only, trading_halted, group_position_limit; a held order given
    up at a HALT or a FLATTEN is the outcome "halted (held)" or
    "flattening (held)"); the HALT kept across the
    executor's kill (its next life HALTED); gtd's accepted signals in any
    1 s <= rate + burst within an executor life (+ one burst across a
    restart: a new process's bucket starts full); gtd's position at the
    broker (its fills in journal order) never past its max_position, nor
    an instrument's net position past risk.max_position; never more
    orders open at the broker than max_open_orders; the flatten done
    (FLATTENED, state REDUCING) and the account flat at the end (the net
    per instrument at the broker and in the executor: groups holding
    opposite positions offset each other and may stay so), the group
    books equal to the broker's fills per group.
  The faults did what they are for: a dll_gateway kill while orders rested,
    orders resting at it filled after it; an executor kill while reports
    flowed, reports fetched by seq; a sink kill with executor letters
    unread, and every sink kill followed by the executor's resend; a
    gateway pause longer than max_quote_age_ms; fills of resting orders,
    cancels and expiries at the broker.
The figures and every check are printed as a table; the test fails when any
check fails (all are evaluated first): the books, peak RSS <= 30 MB for
every program, the run directory within a bound derived from the
configuration, restart times (kill -> new pid < 1 s, kill -> its first
stats file < 2 s), no program exiting on its own, every fault kind dealt.

A dead letter (or an outcome letter) the sink could not write while the
disk was full (its lines_lost) is not counted missing when it was due
during a disk-full episode (chaoslib.lost_with_full_disk); any other
missing line fails.

Environment: TP_CHAOS_SECONDS (default 90: about two minutes in all),
TP_CHAOS_SEED (default 1), TP_CHAOS_FLOOD_FRAMES (default 3000),
TP_CHAOS_PY_INSTRUMENTS (the py group's instruments, comma-separated, or
"all": every configured one, the default);
scripts/chaos runs it with --seconds/--seed. TP_CHAOS_KEEP=1 keeps the run
directory for inspection (a tmpfs one is copied to run-kept before it is
unmounted)."""

import collections
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

import chaoslib as cl

CHAOS_S = float(os.environ.get("TP_CHAOS_SECONDS", "90"))
SEED = int(os.environ.get("TP_CHAOS_SEED", "1"))
KEEP = os.environ.get("TP_CHAOS_KEEP") == "1"
FLOOD_FRAMES = int(os.environ.get("TP_CHAOS_FLOOD_FRAMES", "3000"))
# The py group's instruments (comma-separated; "all": every configured one).
PY_INSTRUMENTS = os.environ.get("TP_CHAOS_PY_INSTRUMENTS", "all")

RATE = 1000                 # ticks/s
EVERY_NTH = 20              # a signal every 20th tick of an instrument
GAP_S = (0.5, 1.5)          # between two faults (the schedule, not a synchronisation)
BROKER_LATENCY_MS = 10      # an order is in flight ~20-40% of the time: kills land mid-request
ORDER_TIMEOUT_MS = 300
SIGNAL_TTL_MS = 2500
PAUSE_S = (max(SIGNAL_TTL_MS, ORDER_TIMEOUT_MS) / 1000 + 0.5, max(SIGNAL_TTL_MS, ORDER_TIMEOUT_MS) / 1000 + 2.0)
HANG_TIMEOUT_MS = 2000      # when the supervisor watches heartbeats: shorter than every pause
STALL_S = (3.0, 5.0)        # the dead-letter sink stopped while a flood starts
FLOOD_DEADLINE_S = 10.0     # a flood ends after this long even if not every frame was queued
MAX_INSTANCES = 3
RSS_BOUND_KB = 30 * 1024
RESTART_BOUND_S = 1.0       # kill -> the supervisor has started the new process (new pid)
READY_BOUND_S = 2.0         # kill -> the new process has written its stats file (its loop runs)
WAIT_S = 30.0
MOMENT_S = 10.0             # a kill waits at most this long for its moment (orders resting, reports flowing)
UNREAD_S = HANG_TIMEOUT_MS / 2000  # the sink stopped at most this long before its kill (letters unread): not HUNG
SETTLE_S = 60.0
SAMPLE_S = 0.25             # supervisor status, RSS of every pid
JOURNAL_POLL_S = 0.05       # strategy journals read as they grow (compactions drop records)

DECK = ["kill:gateway", "kill:strategy", "kill:executor", "kill:dll_gateway", "kill:dead_letter",
        "pause:gateway", "pause:dll_gateway", "pause:executor", "pause:strategy", "pause:dead_letter",
        "scale:up", "scale:down", "flood:executor", "flood:dead_letter"]
# With root the run directory is its own tmpfs and the nemesis also fills it
# for a while (every program's files at once: databases, journals, dead
# letters, stats, logs).
DISK_FAULT = "disk:full"
RUN_DIR_FS_BYTES = 512 * 1024 * 1024
FULL_S = (2.0, 3.5)         # how long the run directory stays full
FILLER = "chaos-filler"     # the fault's own file: not counted in the run directory's size
PIPELINE = ("gateway", "strategy", "executor", "dll_gateway", "dead_letter")


def program_of(name):
    """The program of a supervisor process name: strategy-<k> (the one-group
    shorthand's instances) is "strategy"."""
    return "strategy" if name.startswith("strategy-") else name


# Run-directory budget (see run_dir_budget).
PER_SIGNAL_BYTES = 2 * 1024   # measured ~0.9 KB: executor.db signal+order rows (~0.4 KB), dll_gateway.db row
                              # (~0.15 KB), sim journal line (~0.1 KB), journal S+A records (~0.25 KB)
WAL_BYTES = 34 * 1024 * 1024  # per SQLite store: a commit checkpoints past 8,000 frames (4 KiB + 24 B each)
LOGS_BYTES = 2 * 1024 * 1024  # program logs (rate-limited; ~20 KB in a CI-sized run) and stats files
DL_LINE_MAX = (2 * 64 * 1024) * 4 // 3 + 1024   # one dead-letter line: a 128 KiB letter in base64

# Orders with a life. The every_nth group "strategy" (the shorthand's name,
# scaled by the nemesis) sends limit GTC orders LIMIT_OFFSET_BPS passive of
# the trigger: the synthetic walk moves ~7 bp a second, so most rest a while
# (well past a kill and restart) and then fill on a later tick, reported
# asynchronously, and the rest are canceled by the strategy after
# CANCEL_AFTER_MS. A smaller every_nth group "gtd" (every GTD_NTH-th tick)
# sends limit GTD orders good for GOOD_TILL_MS: some fill, some expire at the
# broker. The sim broker refuses (market) or holds (resting) against a quote
# older than MAX_QUOTE_AGE_MS: a pause of the gateway or dll_gateway longer
# than that must not give a fill from a stale quote.
LIMIT_OFFSET_BPS = 3
CANCEL_AFTER_MS = 1500
GTD_NTH = 40
GOOD_TILL_MS = 1000
MAX_QUOTE_AGE_MS = 1500
GTD_INSTANCES = 1
# Beside them, a Python group "py" (python3 -m tp_strategy, the same every-nth
# rule, market orders as before) on every instrument (full batches of
# signals at the executor after a pause, where a drain that found the queue
# empty once published the last batch again):
# kill:strategy and pause:strategy pick among every group's instances, and
# their journals (py-0.journal, gtd-0.journal) are reconciled with the others.
PY_INSTANCES = 1
# Trading controls, when this tree has them (risk.max_open_orders is their
# first key). The gtd group (~25 signals/s offered) gets a throttle and a
# max_position that both bind: GTD orders good for a second leave up to ~3 of
# a side open per instrument, more than two orders' worth at their worst
# case. The nemesis halts trading once at a random moment of the first round
# (its own rng: a seed deals the deck it always dealt), kills the executor
# while HALTED, resumes HALT_HOLD_S later; after the last round it flattens
# every position, and resumes once the run has settled.
CONTROLS = cl.has_trading_controls()
GTD_RATE = 10                # gtd's max_orders_per_second
GTD_MAX_POSITION = 2000      # gtd's max_position (its orders are strategy.quantity = 1000)
MAX_OPEN_ORDERS = 100        # risk.max_open_orders (~80 rest at the broker at times)
RISK_MAX_POSITION = 20000    # risk.max_position (net positions wander past 30,000 without it)
HALT_HOLD_S = (2.0, 4.0)     # HALTED this long after the executor's restart
FLATTEN_S = 20.0             # the flatten's closing orders filled within this
# Signals per instrument tick over the groups (run-dir budget).
SIGNAL_GROUPS = 1 + EVERY_NTH / GTD_NTH + (1 if PY_INSTRUMENTS == "all" else 0)
OTHER_INSTANCES = PY_INSTANCES + GTD_INSTANCES  # strategy instances not scaled by the nemesis
PY_GROUPS = f"""
[[strategy.groups]]
name = "strategy"
kind = "every_nth"
instances = 2
order_type = "limit"
time_in_force = "gtc"
limit_offset_bps = {LIMIT_OFFSET_BPS}
cancel_after_ms = {CANCEL_AFTER_MS}
[[strategy.groups]]
name = "gtd"
kind = "every_nth"
instances = {GTD_INSTANCES}
order_type = "limit"
time_in_force = "gtd"
limit_offset_bps = {LIMIT_OFFSET_BPS}
good_till_ms = {GOOD_TILL_MS}
{f"max_orders_per_second = {GTD_RATE}" if CONTROLS else ""}
{f"max_position = {GTD_MAX_POSITION}" if CONTROLS else ""}
[strategy.groups.params]
n = {GTD_NTH}
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "{os.path.join(cl.REPO, "tests", "python_strategy")}"
instances = {PY_INSTANCES}
{"" if PY_INSTRUMENTS == "all" else "instruments = " + repr(PY_INSTRUMENTS.split(",")).replace("'", '"')}
[strategy.groups.params]
n = {EVERY_NTH}
{f"[risk]{chr(10)}max_open_orders = {MAX_OPEN_ORDERS}{chr(10)}max_position = {RISK_MAX_POSITION}"
   if CONTROLS else ""}
"""

if cl.MISSING:
    print(cl.SKIP_WHY, file=sys.stderr)


def extra_config():
    """Supervisor keys this tree knows: a heartbeat watch shorter than every
    pause, so that each pause is seen as HUNG (and not restarted)."""
    keys = cl.default_keys("supervisor")
    return f"hang_timeout_ms = {HANG_TIMEOUT_MS}" if "hang_timeout_ms" in keys else ""


def run_dir_budget(seconds):
    """(bound in bytes, breakdown) for a run of `seconds` at RATE / EVERY_NTH
    signals per group on every instrument: dead letters (rotation cap:
    max_files x max_file_bytes and one line), per-signal rows of both SQLite
    stores, the broker journal and the strategy journals, two WALs, logs and
    stats."""
    rotation = cl.dead_letter_rotation()
    max_file, files = rotation or (cl.DL_MAX_FILE_BYTES, cl.DL_MAX_FILES)
    parts = {
        "dead letters" + ("" if rotation else " (no rotation here: the cap it would get)"):
            max_file * files + DL_LINE_MAX,
        "signals x per-signal bytes": int(SIGNAL_GROUPS * RATE * seconds / EVERY_NTH) * PER_SIGNAL_BYTES,
        "SQLite WALs": 2 * WAL_BYTES,
        "logs, stats": LOGS_BYTES,
    }
    return sum(parts.values()), parts


def resting_survivors(events, kills_ns):
    """Per dll_gateway kill: how many orders resting at the broker when it
    was killed (their last journal line before it open) filled after it."""
    out = []
    for k in kills_ns:
        state, filled_after = {}, set()
        for e in events:
            if e["ts_ns"] < k:
                state[e["cid"]] = e["status"]
            elif e["kind"] == "FILL" and state.get(e["cid"]) in cl.OPEN_STATUSES:
                filled_after.add(e["cid"])
        out.append(len(filled_after))
    return out


def mb(n_bytes):
    return f"{n_bytes / 1e6:.1f} MB"


class Sampler(threading.Thread):
    """Polls the supervisor's status: every pid's VmRSS/VmHWM (peak per
    program and per pid), every state seen per process, and the run
    directory's size (as du counts it)."""

    def __init__(self, sv, run_dir):
        super().__init__(daemon=True)
        self.sv, self.run_dir = sv, run_dir
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.peak_kb = {}                         # program -> (kB, pid, UTC time)
        self.pids = collections.defaultdict(set)  # program -> pids seen
        self.states = collections.defaultdict(set)  # process name -> states seen
        self.du_max = (0, 0.0, ("", 0))           # (bytes, at s, largest file)
        self.journals = cl.JournalFollower(run_dir)
        self.letters = cl.DeadLetterFollower(run_dir)
        self.samples = 0
        self.t0 = time.monotonic()

    def note(self, program, pid):
        mem = cl.proc_memory_kb(pid)
        if mem is None:
            return
        kb = max(mem)
        with self.lock:
            self.pids[program].add(pid)
            if kb > self.peak_kb.get(program, (0, 0))[0]:
                self.peak_kb[program] = (kb, pid, cl.utc(time.time_ns()))

    def sample(self):
        try:
            reply = self.sv.ctl({"cmd": "status"}, timeout=5.0)
        except (OSError, ValueError):
            reply = None
        if reply and reply.get("ok"):
            self.note("supervisor", reply["pid"])
            for p in reply["processes"]:
                with self.lock:
                    self.states[p["name"]].add(p["state"])
                if p["pid"]:
                    self.sv.seen.add(p["pid"])
                    self.note(p["program"], p["pid"])
        self.samples += 1

    def sample_disk(self):
        used, largest = cl.disk_usage(self.run_dir)
        with self.lock:
            if used > self.du_max[0]:
                self.du_max = (used, time.monotonic() - self.t0, largest)

    def run(self):
        next_disk = next_status = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_status:
                self.sample()
                next_status = now + SAMPLE_S
            if now >= next_disk:
                self.sample_disk()
                next_disk = now + 1.0
            self.journals.poll()
            self.letters.poll()
            self.stop_event.wait(JOURNAL_POLL_S)

    def finish(self):
        self.stop_event.set()
        self.join(10)
        self.sample_disk()  # the final state of the run directory counts too
        self.journals.poll()
        self.letters.poll()


@unittest.skipIf(cl.MISSING, cl.SKIP_WHY)
class ChaosTest(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="chaos", dir="/tmp")
        if not KEEP:
            self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir)
        self.deck = DECK[:]
        if cl.mount_tmpfs(self.run_dir, RUN_DIR_FS_BYTES):
            self.addCleanup(cl.unmount, self.run_dir)
            if KEEP:  # cleanups run last-in first: copied before the unmount
                self.addCleanup(shutil.copytree, self.run_dir, self.run_dir + "-kept",
                                ignore=shutil.ignore_patterns(FILLER), dirs_exist_ok=True)
            self.deck.append(DISK_FAULT)
        else:
            print("chaos: no tmpfs for the run directory (root needed): no disk-full fault", file=sys.stderr)
        self.config = os.path.join(self.tmp, "chaos.toml")
        with open(self.config, "w") as f:
            f.write(cl.config_text(self.tmp, self.run_dir, rate=RATE, every_nth=EVERY_NTH,
                                   broker_latency_ms=BROKER_LATENCY_MS, signal_ttl_ms=SIGNAL_TTL_MS,
                                   order_timeout_ms=ORDER_TIMEOUT_MS, max_quote_age_ms=MAX_QUOTE_AGE_MS,
                                   extra=extra_config() + PY_GROUPS))  # appended to [supervisor]
        self.endpoints = {k: f"ipc://{self.tmp}/{k}.ipc" for k in ("signals", "dead_letters", "ticks")}
        self.ticks = cl.TickRecorder(self.endpoints["ticks"]).start()  # before the gateway's first tick
        self.addCleanup(self.ticks.stop)
        self.sv = cl.SupervisorRun(self.tmp, cl.BIN_DIR, ["--config", self.config, "--summary"],
                                   run_dir=self.run_dir)
        self.addCleanup(self.sv.close)
        self.paused = set()  # pids stopped by the nemesis, continued on any way out
        self.addCleanup(self.continue_paused)

    def continue_paused(self):
        for pid in list(self.paused):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused.clear()

    def detail(self):
        logs = []
        names = ["executor", "dll_gateway", "gateway", "dead_letter"] + sorted(
            os.path.basename(p)[:-4] for p in cl.glob.glob(os.path.join(self.run_dir, "logs", "strategy-*.log")))
        for name in names:
            try:
                with open(os.path.join(self.run_dir, "logs", name + ".log"), errors="replace") as f:
                    logs.append(f"-- {name}.log:\n" + "".join(f.readlines()[-6:]))
            except OSError:
                pass
        return "\n".join(logs) + "\n" + self.sv.status_text()

    def running_pid(self, name):
        st = self.sv.try_status()
        if st and st.get(name, {}).get("state") == "RUNNING" and st[name]["pid"]:
            return st[name]["pid"]
        if st and any(p["state"] == "FATAL" for p in st.values()):
            self.fail("a program is FATAL\n" + self.detail())
        return None

    def wait_running(self, name):
        return cl.wait_for(lambda: self.running_pid(name), WAIT_S, what=f"{name} RUNNING", detail=self.detail)

    def instances(self):
        st = self.sv.status()
        return sorted(n for n in st if n.startswith("strategy-"))

    def other_instances(self):
        """The instances of the groups the nemesis does not scale."""
        return [f"py-{k}" for k in range(PY_INSTANCES)] + [f"gtd-{k}" for k in range(GTD_INSTANCES)]

    # Counters summed over every life of a program (a kill ends a life; the
    # stats file is at most stats_interval_ms old when it does).
    SUMMED = {"executor": ("order_retries", "order_timeouts", "breaker_opens", "duplicates", "held_expired",
                           "dead_letters_dropped", "invalid_transitions", "reports_unknown_order",
                           "reports_fetched", "report_gaps", "cancels_sent", "stale_updates",
                           "dead_letters_replayed"),
              "dead_letter": ("lines_lost", "duplicates_dropped"),
              "dll_gateway": ("duplicates", "queries", "refused_orders", "invalid_transitions",
                              "reports_unknown_order", "cancels_sent", "cancel_duplicates")}

    def add_counters(self, name, pid):
        data = cl.stats(self.run_dir, name, pid) or {}
        for key in self.SUMMED.get(name, ()):
            self.summed[f"{name} {key}"] = self.summed.get(f"{name} {key}", 0) + data.get(key, 0)
        if name == "dll_gateway":  # the sim broker's refusals, by the first word(s) of their reason
            key = "dll_gateway stale quote rejects"
            self.summed[key] = self.summed.get(key, 0) + (data.get("rejects_by_reason") or {}).get("stale quote", 0)

    # -- the faults ------------------------------------------------------------

    def kill(self, name):
        """SIGKILL the current `name`; records (spawn_s, ready_s): kill -> new
        pid in the supervisor's status, kill -> that pid's stats file."""
        pid = self.wait_running(name)
        self.add_counters(name, pid)
        t0 = time.monotonic()
        self.kill_ns[name].append(cl.now_ns())
        os.kill(pid, signal.SIGKILL)

        def new_pid():
            st = self.sv.try_status()
            p = st.get(name, {}).get("pid") if st else None
            return p if p and p != pid else None
        new = cl.wait_for(new_pid, WAIT_S, interval=0.02, what=f"{name} restarted", detail=self.detail)
        spawn_s = time.monotonic() - t0
        cl.wait_for(lambda: cl.stats(self.run_dir, cl.stats_file_name(name), new), WAIT_S, interval=0.02,
                    what=f"{name} pid {new} stats", detail=self.detail)
        ready_s = time.monotonic() - t0
        self.kills[program_of(name)] += 1
        self.spawn_max = max(self.spawn_max, spawn_s)
        if ready_s > self.ready_max[0]:
            self.ready_max = (ready_s, name)
        return f"kill {name} (pid {pid} -> {new} in {spawn_s:.3f} s)"

    def stop_process(self, pid):
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(pid)

    def continue_process(self, pid):
        self.paused.discard(pid)
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # the supervisor killed it meanwhile (restart_hung)

    def pause(self, name):
        pid = self.wait_running(name)
        seconds = self.rng.uniform(*PAUSE_S)
        cl.pause_for(pid, seconds)
        after = self.wait_running(name)  # RUNNING again: its next heartbeat came
        self.pauses[program_of(name)] += 1
        self.pause_max = max(self.pause_max, seconds)
        return f"pause {name} (pid {pid}) {seconds:.1f} s" + (f", pid now {after}" if after != pid else "")

    def pending_signals(self, since_ns):
        """signals_pending per live instance, from stats written after `since_ns`."""
        st = self.sv.try_status() or {}
        out = {}
        for n, p in st.items():
            if n.startswith("strategy-") and p["pid"]:
                s = cl.stats(self.run_dir, cl.stats_file_name(n), p["pid"], after_ns=since_ns)
                if s:
                    out[n] = (s.get("signals_pending", 0), bool(s.get("instruments")))
        return out

    def scale(self, direction):
        cur = len(self.instances())
        if direction == "up" and cur < MAX_INSTANCES or cur == 1:
            n = self.rng.randint(cur + 1, MAX_INSTANCES)
        else:
            n = self.rng.randint(1, cur - 1)
        how = self.rng.choice(["executor stopped", "executor paused"] + (["running"] if n > cur else []))
        ex_pid = self.wait_running("executor")
        since = cl.now_ns()
        if how == "executor stopped":
            self.add_counters("executor", ex_pid)
            self.executor_stops_ns.append(cl.now_ns())
            cl.tpctl(self.run_dir, "stop", "executor")
            self.starts["executor"] += 1
        elif how == "executor paused":
            self.stop_process(ex_pid)
        try:
            # Signals pending in every instance that trades something (awaited
            # on the stats, bounded; a shortfall is reported, not waited out).
            def pending_everywhere():
                p = self.pending_signals(since)
                return p and all(k >= 2 for k, trades in p.values() if trades) and p
            if how != "running":
                try:
                    cl.wait_for(pending_everywhere, 10.0, interval=0.05, what="pending signals")
                except AssertionError:
                    pass
            pending = sum(k for k, _ in self.pending_signals(since).values())
            cl.tpctl(self.run_dir, "scale", "strategy", str(n), timeout=WAIT_S)
        finally:
            if how == "executor stopped":
                cl.tpctl(self.run_dir, "start", "executor")
            elif how == "executor paused":
                self.continue_process(ex_pid)
        self.sv.wait_all_running(timeout=WAIT_S, count=4 + n + OTHER_INSTANCES)
        self.scales.append(f"{cur}->{n} ({how}, {pending} pending)")
        actual = "up" if n > cur else "down"  # "up" from MAX_INSTANCES goes down
        self.scaled[actual] += 1
        self.scaled_with_pending[actual] += 1 if pending else 0
        self.max_instances = max(self.max_instances, n)
        return f"scale {cur} -> {n} ({how}, {pending} signals pending)"

    def flood(self, target):
        """Stalls the dead-letter sink and floods `target`'s entry point with
        garbage; the sink is continued while the flood goes on."""
        endpoint = self.endpoints["signals" if target == "executor" else "dead_letters"]
        sink = self.wait_running("dead_letter")
        frames = cl.garbage_frames(random.Random(SEED * 1000 + len(self.flood_log)), FLOOD_FRAMES)
        result = []
        sender = threading.Thread(target=lambda: result.append(cl.flood(endpoint, frames, FLOOD_DEADLINE_S)),
                                  daemon=True)
        stall = self.rng.uniform(*STALL_S)
        self.stop_process(sink)
        try:
            sender.start()
            time.sleep(stall)  # the fault itself
        finally:
            self.continue_process(sink)
        sender.join(FLOOD_DEADLINE_S + 10)
        self.assertFalse(sender.is_alive(), "the flood did not end")
        sent, nbytes = result[0]
        f = self.floods[target]
        f[0], f[1], f[2] = f[0] + 1, f[1] + sent, f[2] + nbytes
        self.pauses["dead_letter (stall)"] += 1
        self.flood_log.append(target)
        self.wait_running("dead_letter")
        return f"flood {target}: {sent} frames, {mb(nbytes)}, sink stalled {stall:.1f} s"

    def fill_disk(self):
        """Fills the run directory's filesystem, holds it full, frees it."""
        path = os.path.join(self.run_dir, FILLER)
        hold = self.rng.uniform(*FULL_S)
        start = cl.now_ns()
        written = cl.fill_filesystem(path)
        try:
            time.sleep(hold)  # the fault itself
        finally:
            os.remove(path)
            self.disk_full_windows.append((start, cl.now_ns()))
        self.disk_fulls += 1
        return f"disk full for {hold:.1f} s ({mb(written)} of filler)"

    def executor_stats(self, pred, what, timeout=MOMENT_S, after_ns=None):
        """Waits (bounded) until pred(the running executor's stats, written
        after `after_ns` when given) is true; returns that value, or None when
        it did not come (the fault is then dealt anyway: the reconciliation
        and the run's checks tell)."""
        def ready():
            pid = self.running_pid("executor")
            s = cl.stats(self.run_dir, "executor", pid, after_ns=after_ns) if pid else None
            return s and pred(s)
        try:
            return cl.wait_for(ready, timeout, interval=0.05, what=what)
        except AssertionError:
            return None

    def kill_moment(self, name):
        """Waits for the moment a kill of `name` tests what it should: orders
        resting at the broker (dll_gateway), reports flowing to the executor
        (executor); returns a note for the log."""
        if name == "dll_gateway":
            working = self.executor_stats(lambda s: s.get("orders_working", 0) > 0 and s["orders_working"],
                                          "orders resting")
            self.dll_kills_resting += 1 if working else 0
            return f", {working or 0} orders working"
        if name == "executor":
            first = self.executor_stats(lambda s: s, "executor stats") or {}
            flowing = self.executor_stats(
                lambda s: s.get("pid") == first.get("pid") and
                s.get("reports_received", 0) > first.get("reports_received", 0), "reports flowing")
            self.executor_kills_flowing += 1 if flowing else 0
            return ", reports flowing" if flowing else ", no report seen coming"
        return ""

    def kill_sink(self):
        """kill -9 of the dead-letter sink with outcome letters unread: it is
        stopped (SIGSTOP, for at most UNREAD_S: not yet HUNG) until the
        executor has sent letters since, which the kill takes with it
        (ZeroMQ handed them over); then waits (bounded) for the executor to
        send its stored letters again, its connection to the sink made
        again (dead_letters_replayed growing in the same life)."""
        sink = self.wait_running("dead_letter")
        before = self.executor_stats(lambda s: s, "executor stats") or {}
        deadline = time.monotonic() + UNREAD_S
        stopped_ns = cl.now_ns()
        self.stop_process(sink)
        # Letters counted in a stats file written after the stop may have
        # been sent before it: only those sent after that file count.
        base = self.executor_stats(lambda s: s, "executor stats after the stop", UNREAD_S, after_ns=stopped_ns) or before
        unread = self.executor_stats(
            lambda s: s.get("pid") == base.get("pid") and s.get("dead_letters", 0) > base.get("dead_letters", 0) and
            s["dead_letters"] - base["dead_letters"], "outcome letters unread", max(0.05, deadline - time.monotonic()))
        killed = self.kill("dead_letter")
        self.paused.discard(sink)
        replayed = base.get("dead_letters_replayed", 0)
        resent = self.executor_stats(
            lambda s: s.get("pid") == base.get("pid") and s.get("dead_letters_replayed", 0) > replayed and
            s["dead_letters_replayed"] - replayed, "stored letters sent again")
        self.sink_kills_unread += 1 if unread else 0
        self.sink_kills_resent += 1 if resent else 0
        return (f"{killed}, {unread or 'no'} executor letters unread, "
                + (f"{resent} stored letters sent again" if resent else "no resend seen"))

    def deal(self, fault):
        kind, arg = fault.split(":")
        if kind == "disk":
            return self.fill_disk()
        if fault == "kill:dead_letter":
            return self.kill_sink()
        if kind == "kill" or kind == "pause":
            name = self.rng.choice(self.instances() + self.other_instances()) if arg == "strategy" else arg
            if kind == "pause":
                return self.pause(name)
            moment = self.kill_moment(name)
            return self.kill(name) + moment
        if kind == "scale":
            return self.scale(arg)
        return self.flood(arg)

    # -- trading controls -------------------------------------------------------

    def command(self, command, reason=None):
        """tpctl's trading command to the executor; returns the reply (None
        when unanswered), and records a refusal or no answer as a failure."""
        reply = cl.control(self.config, command, reason)
        if not reply or not reply["ok"]:
            self.control_failures.append((command, cl.utc(cl.now_ns()), reply))
        return reply

    def executor_state(self, pid=None):
        s = cl.stats(self.run_dir, "executor", pid) or {}
        return s.get("trading_state")

    def halt(self):
        """HALT (stored before the ok), a kill -9 of the executor while
        HALTED (its next life must start HALTED), RESUME a few seconds later."""
        pid = self.wait_running("executor")
        reply = self.command("halt", "chaos nemesis: halt")
        halted = reply and reply["ok"] and reply["state"] == "HALTED"
        # The kill lands once signals are being refused (a bounded wait).
        refusing = self.executor_stats(
            lambda s: s.get("pid") == pid and s.get("trading_state") == "HALTED" and
            (s.get("rejected") or {}).get("trading_halted", 0) > 0, "signals refused while HALTED")
        killed = self.kill("executor")
        new = self.wait_running("executor")
        after = self.executor_state(new)
        status = self.command("trading")
        status = status and status["state"]
        self.halts_kept.append(after == "HALTED" and status == "HALTED")
        hold = self.ctl_rng.uniform(*HALT_HOLD_S)
        time.sleep(hold)  # the fault itself
        resumed = self.command("resume", "chaos nemesis: resume")
        if reply and reply["ok"] and resumed and resumed["ok"]:
            self.halt_windows.append((reply["ts_ns"], resumed["ts_ns"]))
        return (f"HALT {'ok' if halted else f'NOT ok: {reply}'}, {refusing and 'refusing' or 'no refusal seen'}; "
                f"{killed}: came back {after} (tpctl trading: {status}); RESUME after {hold:.1f} s: "
                f"{resumed and resumed['state']}")

    def flatten(self):
        """FLATTEN while the feed runs; returns once the executor says the
        flatten is done (state REDUCING, flatten_pending false)."""
        reply = self.command("flatten", "chaos nemesis: flatten")
        if not reply or not reply["ok"]:
            return f"FLATTEN NOT ok: {reply}"
        self.flatten_start = reply["ts_ns"]
        done = self.executor_stats(
            lambda s: s.get("trading_state") == "REDUCING" and s.get("flatten_pending") is False and s,
            "the flatten done", FLATTEN_S, after_ns=reply["ts_ns"])
        self.flattened = bool(done)
        return (f"FLATTEN ok ({reply['state']}, {reply['open_orders']} open): "
                + (f"done, {done.get('open_orders')} open" if done else f"not done within {FLATTEN_S:.0f} s"))

    # -- the run -----------------------------------------------------------------

    def exits(self):
        """Exits the supervisor logged (name -> [reason]), from its output."""
        out = collections.defaultdict(list)
        try:
            with open(self.sv.log_path, errors="replace") as f:
                for line in f:
                    m = re.match(r"supervisor \S+ (\S+): (.*); restarting in", line)
                    if m:
                        out[program_of(m.group(1))].append(m.group(2))
        except OSError:
            pass
        return out

    def test_faults_on_a_schedule_books_balance(self):
        self.rng = random.Random(SEED)
        self.summed = {}
        self.kills, self.pauses, self.starts = collections.Counter(), collections.Counter(), collections.Counter()
        self.floods = {"executor": [0, 0, 0], "dead_letter": [0, 0, 0]}
        self.flood_log, self.scales = [], []
        self.scaled, self.scaled_with_pending = collections.Counter(), collections.Counter()
        self.spawn_max, self.ready_max, self.pause_max = 0.0, (0.0, ""), 0.0
        self.max_instances = 2
        self.disk_fulls = 0
        self.disk_full_windows = []  # (start, end) in wall ns: the fill began, the filler was removed
        self.kill_ns = collections.defaultdict(list)  # process name -> wall ns of each SIGKILL
        self.dll_kills_resting = self.executor_kills_flowing = 0
        self.sink_kills_unread = self.sink_kills_resent = 0
        self.executor_stops_ns = []   # tpctl stop executor (a scale): a life ends, as at a kill
        # Trading controls: their own rng (the deck's stays what a seed dealt).
        self.ctl_rng = random.Random(SEED * 7919 + 14)
        self.control_failures, self.halts_kept, self.halt_windows = [], [], []
        self.flatten_start, self.flattened, resume_end = None, False, None
        dealt = collections.Counter()
        run_t0 = time.monotonic()
        ticks = self.ticks

        self.sv.wait_all_running(timeout=WAIT_S, count=6 + OTHER_INSTANCES)
        sampler = Sampler(self.sv, self.run_dir)
        sampler.start()
        self.addCleanup(sampler.stop_event.set)
        cl.wait_for(lambda: (cl.stats(self.run_dir, "executor") or {}).get("fills", 0) > 0, WAIT_S,
                    what="the first fills", detail=self.detail)

        def log(what):
            print(f"chaos {time.monotonic() - run_t0:6.1f} s  {cl.utc(time.time_ns())} UTC  {what}",
                  file=sys.stderr, flush=True)

        end = time.monotonic() + CHAOS_S
        rounds = 0
        halt_after = self.ctl_rng.randrange(len(self.deck)) if CONTROLS else None
        while rounds == 0 or time.monotonic() < end:
            deck = self.deck[:]
            self.rng.shuffle(deck)
            for k, fault in enumerate(deck):
                time.sleep(self.rng.uniform(*GAP_S))  # the schedule itself, not a synchronisation
                if rounds > 0 and time.monotonic() >= end:
                    break
                what = self.deal(fault)
                dealt[fault] += 1
                log(what)
                if rounds == 0 and k == halt_after:
                    time.sleep(self.ctl_rng.uniform(*GAP_S))
                    log(self.halt())
            rounds += 1

        # The Python group's instance is killed once more, outside the seeded
        # deck (which stays what each seed always dealt), while the feed runs.
        log(self.kill("py-0"))
        if CONTROLS:
            self.sv.wait_all_running(timeout=WAIT_S)
            log(self.flatten())

        # Stop the feed and let the system settle.
        self.sv.wait_all_running(timeout=WAIT_S)
        cl.tpctl(self.run_dir, "stop", "gateway")
        stopped_ns = cl.now_ns()
        st = self.sv.status()
        strategies = {n: p["pid"] for n, p in st.items() if n.startswith(("strategy-", "py-", "gtd-"))}
        # Settled also means nothing more can change at the broker: every GTD
        # order is past its good-till time (expired or filled), no cancel is
        # pending, and the executor holds every report dll_gateway made.
        quiet_after = stopped_ns + (GOOD_TILL_MS + 500) * 1_000_000
        reports_settled = cl.ReportsSettled(self.run_dir, strategies, st["executor"]["pid"],
                                            st["dll_gateway"]["pid"], quiet_after)
        cl.wait_for(lambda: cl.settled(self.run_dir, strategies, st["executor"]["pid"], quiet_after) and
                    reports_settled(), SETTLE_S, what="the system to settle", detail=self.detail)
        if CONTROLS:
            resumed = self.command("resume", "chaos nemesis: resume after the flatten")
            resume_end = resumed and resumed["ts_ns"]
            log(f"RESUME: {resumed and resumed['state']}")
        cl.tpctl(self.run_dir, "shutdown")
        self.assertEqual(self.sv.wait_exit(timeout=WAIT_S), 0)
        sampler.finish()
        ticks.stop()
        run_s = time.monotonic() - run_t0
        for name in self.SUMMED:
            self.add_counters(name, None)  # the last life's final stats

        books = cl.reconcile(self.run_dir, sampler.journals.book, sampler.letters.book)
        life = cl.reconcile_life(self.run_dir, ticks, MAX_QUOTE_AGE_MS)
        limits = {"rates": {"gtd": GTD_RATE}, "max_position": {"gtd": GTD_MAX_POSITION},
                  "max_open_orders": MAX_OPEN_ORDERS, "risk_max_position": RISK_MAX_POSITION,
                  "orders_in_flight": cl.default_keys("executor").get("orders_in_flight", 1)}
        executor_lives_end = sorted(self.kill_ns["executor"] + self.executor_stops_ns)
        controls = cl.reconcile_controls(
            self.run_dir, self.halt_windows, [(self.flatten_start, resume_end)] if self.flatten_start else [],
            limits, executor_lives_end, sampler.journals.book, sampler.letters.book) if CONTROLS else None
        survived = resting_survivors(cl.read_broker_events(self.run_dir), self.kill_ns["dll_gateway"])
        dl_reasons, dl_sources, dl_files = cl.dead_letter_summary(self.run_dir)
        seen_dl = sampler.letters.book
        bound, budget = run_dir_budget(run_s)
        du_max, du_at, largest = sampler.du_max
        exits = self.exits()
        unexplained = {p: [r for r in rs if r != "killed by SIGKILL" and not r.endswith("(hung)")]
                       for p, rs in exits.items()}
        unexplained = {p: rs for p, rs in unexplained.items() if rs}
        extra_kills = {p: sum(r == "killed by SIGKILL" for r in rs) - self.kills[p] for p, rs in exits.items()}
        extra_kills = {p: n for p, n in extra_kills.items() if n > 0}
        hang_watched = bool(extra_config())
        hung_seen = sorted({program_of(n) for n, s in sampler.states.items() if "HUNG" in s})

        lines_lost = self.summed.get("dead_letter lines_lost", 0)
        checks = cl.book_checks(books, self.disk_full_windows, lines_lost) + \
            cl.outcome_letter_checks(books, self.disk_full_windows, lines_lost) + \
            cl.life_checks(life, self.summed) + [
            ("a dll_gateway kill while orders rested", self.dll_kills_resting >= 1,
             f"{self.dll_kills_resting} of {self.kills['dll_gateway']} kills"),
            ("resting orders survived a dll_gateway kill and filled after it", sum(survived) >= 1,
             f"per kill: {survived}"),
            ("an executor kill while reports flowed, caught up by seq (reports fetched)",
             self.executor_kills_flowing >= 1 and self.summed.get("executor reports_fetched", 0) >= 1,
             f"{self.executor_kills_flowing} of {self.kills['executor']} kills, "
             f"{self.summed.get('executor reports_fetched', 0)} reports fetched"),
            ("a dead_letter kill with executor letters unread; every sink kill followed by the executor's resend",
             self.sink_kills_unread >= 1 and self.sink_kills_resent == self.kills["dead_letter"],
             f"{self.sink_kills_unread} of {self.kills['dead_letter']} kills with letters unread, "
             f"{self.sink_kills_resent} followed by a resend"),
            ("a gateway pause longer than max_quote_age_ms",
             self.pauses["gateway"] >= 1 and self.pause_max * 1000 > MAX_QUOTE_AGE_MS,
             f"{self.pauses['gateway']} pauses"),
            ("fills of resting orders (reported later) and cancels at the broker",
             life["resting_fills"] > 0 and life["cancels_at_broker"] > 0 and
             life["broker_events"].get("EXPIRE", 0) > 0, f"{life['broker_events']}"),
            ("the tick recorder missed no tick", ticks.gaps == 0,
             f"{ticks.gaps} gaps in {ticks.count} ticks (instrument, last seq, seq): {ticks.gap_detail}"),
            ("every fault kind dealt", all(dealt[f] >= 1 for f in self.deck), dict(dealt)),
            ("scaled up and down", self.scaled["up"] >= 1 and self.scaled["down"] >= 1, self.scales),
            ("a scale-down while signals were pending", self.scaled_with_pending["down"] >= 1, self.scales),
            *((f"peak RSS {p} <= {RSS_BOUND_KB // 1024} MB", sampler.peak_kb.get(p, (0, 0))[0] <= RSS_BOUND_KB,
               "{:.1f} MB (pid {}, first seen at that peak {} UTC)".format(
                   sampler.peak_kb.get(p, (0,))[0] / 1024, *sampler.peak_kb.get(p, (0, 0, "-"))[1:]))
              for p in PIPELINE),
            ("every program sampled", all(p in sampler.peak_kb for p in PIPELINE), sorted(sampler.peak_kb)),
            (f"run dir <= {mb(bound)}", du_max <= bound,
             f"max {mb(du_max)} at {du_at:.0f} s, largest file {largest[0]} {mb(largest[1])}"),
            (f"restart (kill -> new pid) < {RESTART_BOUND_S} s", self.spawn_max < RESTART_BOUND_S,
             f"{self.spawn_max:.3f} s"),
            (f"restart (kill -> stats of new pid) < {READY_BOUND_S} s", self.ready_max[0] < READY_BOUND_S,
             f"{self.ready_max[0]:.3f} s ({self.ready_max[1]})"),
            ("no program exited on its own", not unexplained and not extra_kills,
             f"exits not ours: {unexplained}, SIGKILLs beyond ours: {extra_kills}"),
            ("executed > 0", books["executed"] > 0, ""),
            ("the python strategy killed and reconciled", self.kills["py-0"] >= 1 and
             books["journals"].get("py-0.journal", 0) > 0, f"kills {self.kills['py-0']}, {books['journals']}"),
        ]
        if CONTROLS:
            checks += [
                ("every control command answered ok", not self.control_failures,
                 f"(command, UTC, reply): {self.control_failures}"),
                ("a HALT kept across a kill -9 of the executor (its next life HALTED, in stats and tpctl trading)",
                 bool(self.halts_kept) and all(self.halts_kept) and len(self.halt_windows) == len(self.halts_kept),
                 f"kept {self.halts_kept}, HALT..RESUME answered ok {len(self.halt_windows)}"),
                ("signals refused while HALTED", controls["refused_halted"] > 0, controls["refused_halted"]),
                ("the flatten done within {:.0f} s (executor stats: REDUCING, not pending)".format(FLATTEN_S),
                 self.flattened, ""),
                *cl.control_checks(controls, flatten_expected=True),
            ]
        if hang_watched:
            paused = sorted(p for p, n in self.pauses.items() if n and p in PIPELINE) + (
                ["dead_letter"] if self.flood_log else [])
            checks.append(("every paused program seen HUNG", set(paused) <= set(hung_seen),
                           f"paused {sorted(set(paused))}, seen HUNG {hung_seen}"))

        def per(counter):
            return ", ".join(f"{k}={v}" for k, v in sorted(counter.items()) if v) or "-"
        rows = [
            ("rounds / faults dealt", f"{rounds} / {sum(dealt.values())}"),
            ("kills per program", per(self.kills)),
            ("pauses per program", per(self.pauses)),
            ("longest pause", f"{self.pause_max:.1f} s (signal TTL {SIGNAL_TTL_MS} ms, order timeout "
                              f"{ORDER_TIMEOUT_MS} ms)"),
            ("scale changes", "; ".join(self.scales) or "-"),
            ("disk full episodes", self.disk_fulls if DISK_FAULT in self.deck else "(no tmpfs: not dealt)"),
            ("floods per program", ", ".join(f"{t}={n} ({fr} frames, {mb(b)})"
                                             for t, (n, fr, b) in self.floods.items())),
            ("max restart (kill -> new pid)", f"{self.spawn_max:.3f} s"),
            ("max restart (kill -> stats of new pid)", f"{self.ready_max[0]:.3f} s ({self.ready_max[1]})"),
            ("exits logged by the supervisor", per({p: len(rs) for p, rs in exits.items()})),
            ("seen HUNG", ", ".join(hung_seen) if hang_watched else "(no hang watch on this tree)"),
            ("peak RSS per program (VmHWM)", ", ".join(
                f"{p}={peak[0] / 1024:.1f} MB" for p, peak in sorted(sampler.peak_kb.items()))),
            ("journal files re-read (compacted)", sampler.journals.rereads),
            ("pids sampled per program", per({p: len(s) for p, s in sampler.pids.items()})),
            ("max run-dir size (du)", f"{mb(du_max)} at {du_at:.0f} s (bound {mb(bound)}); "
                                      f"largest file {largest[0]} {mb(largest[1])}"),
            *((f"  budget: {k}", mb(v)) for k, v in budget.items()),
            ("dead-letter files", ", ".join(f"{n} {mb(b)}" for n, b in dl_files) or "-"),
            ("dead-letter lines written, by reason", per(seen_dl.reasons)),
            ("dead-letter lines written, by source", per(seen_dl.sources)),
            ("dead-letter lines kept without original", seen_dl.without_original),
            ("executor outcome letters: stored (executor.db) / due by key / lines",
             f"{books['outcome_letters_stored']} / {books['outcome_letters_due']} / {books['outcome_letter_lines']}"),
            ("dead_letter kills: letters unread / resend seen",
             f"{self.sink_kills_unread} / {self.sink_kills_resent} of {self.kills['dead_letter']}"),
            ("dead-letter lines in the files at the end", f"{sum(dl_reasons.values())} of {seen_dl.lines} "
                                                          "(the rest rotated away)"),
            *cl.life_rows(life),
            *(cl.control_rows(controls) if controls else [("trading controls", "(not in this tree)")]),
            ("resting orders filled after each dll_gateway kill", survived or "-"),
            ("ticks recorded (gateway restarts seen, ticks missed joining)",
             f"{ticks.count} ({ticks.restarts()}, {ticks.joined_late})"),
            ("run length", f"{run_s:.0f} s (chaos {CHAOS_S:.0f} s)"),
            *((f"{k} (all lives)", v) for k, v in sorted(self.summed.items())),
        ]
        table = cl.figures_table(f"chaos: {CHAOS_S:.0f} s, seed {SEED}", books, rows)
        verdicts = "\n".join(f"  {'PASS' if ok else 'FAIL'}  {name}" + ("" if ok else f": {detail}")
                             for name, ok, detail in checks)
        print("\n" + table + "\n== checks ==\n" + verdicts, file=sys.stderr, flush=True)
        if KEEP:
            print(f"run dir kept: {self.run_dir}", file=sys.stderr)
        failed = [f"{name}: {detail}" for name, ok, detail in checks if not ok]
        self.assertFalse(failed, "\n".join(failed))


if __name__ == "__main__":
    unittest.main()
