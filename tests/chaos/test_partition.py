"""Three hosts and their links cut: the pipeline spread over three Linux
network namespaces as config/samples/three_hosts.toml spreads it (md: the
gateway; strat: the strategy group's two shards; exec: executor, dll_gateway
and the dead-letter sink), each host under its own supervisor
(`supervisor.py --host NAME`), tcp with CURVE on every link between them.

While it trades (synthetic feed, every_nth shards, market orders at the sim
broker), the test cuts links and restores them (both ends down, as a pulled
cable; tests/support/netns.py):
  1. strat <-> exec for 8 s (longer than the signal TTL and than the
     keepalive takes to drop a connection), and kills -9 a strategy
     shard meanwhile (its supervisor restarts it; it resends its journal);
  2. exec <-> md (the sim broker's quotes and the executor's prices go stale)
     and kills -9 dll_gateway meanwhile;
  3. md <-> strat for less than the keepalive's 3 s, so that the ticks queued
     during the cut arrive when it returns: the strategies must see their
     feed dead during the cut, make no signal while it is, and make none
     from the backlog (every signal within strategy.max_signal_tick_age_ms
     of the tick it was made from);
  4. strat <-> exec for half a second (a flap);
  5. a seeded deck (TP_CHAOS_SEED, default 1; DECK_S of it): links cut for
     0.3-4 s, kill -9 of a program on its host (alone, or while a link is
     down), SIGSTOP for 0.2-2 s, one after another, dealt at random over
     every link and every program of the three hosts.
After each scripted return the time to the first new fill at the broker is
printed and must stay under 2 s; after the deck, a fill must come again.
Then the feed stops, the hosts settle and stop, and
the books are reconciled from the three hosts' files as the chaos test
reconciles one host's (tests/chaos/chaoslib.py): no signal lost, none twice,
no broker order doubled, no fill at or after its signal's expiry, every
fill in the three books once, and every outcome letter the executor stored
(or signal it refused) written once by key in the exec host's dead-letter
files (chaoslib.outcome_letter_checks).

Needs root (ip netns, veth); skips saying why where namespaces cannot be
made; removes its namespaces whatever happens."""

import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import chaoslib as cl
from svtest import SupervisorRun, wait_for

sys.path.insert(0, os.path.join(cl.REPO, "tests", "support"))
import netns  # noqa: E402

PREFIX = "tppn"
HOSTS = ["md", "strat", "exec"]
SIGNAL_TTL_MS = 2500
FRESH_MS = 250          # strategy.max_signal_tick_age_ms (its default)
FEED_TIMEOUT_MS = 500   # strategy.feed_timeout_ms: the feed is dead after this long without a tick
FEED_CUT_S = 1.6        # < the strategies' keepalive (1 s idle + 2 probes): the connection survives,
                        # and the gateway's retransmission delivers the ticks queued during the cut
RECOVERY_LIMIT_S = 2.0
LONG_CUT_S = 8.0        # > the TTL and > the keepalive's 3 s: connections dropped, dialled again
GROUP = "trend"
SHARDS = 2
SEED = int(os.environ.get("TP_CHAOS_SEED", "1"))
DECK_S = float(os.environ.get("TP_PARTITION_DECK_S", "20"))
LINKS = [("strat", "exec"), ("exec", "md"), ("md", "strat")]


def read_key(path):
    with open(path) as f:
        return next(line.strip() for line in f if line.strip() and not line.startswith("#"))


class Partition(unittest.TestCase):
    def setUp(self):
        if cl.SKIP_WHY:
            self.skipTest(cl.SKIP_WHY)
        why = netns.unavailable()
        if why:
            self.skipTest(why)
        netns.sweep(PREFIX)
        self.net = netns.Hosts(PREFIX, HOSTS, net=219)
        self.addCleanup(self.net.remove)
        self.net.make()
        self.tmp = tempfile.mkdtemp(prefix="tp-partition-")
        self.addCleanup(self.cleanup_tmp)
        self.run_dirs = {h: os.path.join(self.tmp, h, "run") for h in HOSTS}
        for d in self.run_dirs.values():
            os.makedirs(d)
        self.config = os.path.join(self.tmp, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(self.config_text())
        self.sups = {}

    def cleanup_tmp(self):
        if os.environ.get("TP_CHAOS_KEEP") == "1":
            print(f"\nkept: {self.tmp}", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def config_text(self):
        keys = os.path.join(self.tmp, "keys")
        subprocess.run([os.path.join(cl.BIN_DIR, "tp_keygen"), "--out", keys, "server", "client"], check=True,
                       capture_output=True, timeout=30)
        with open(os.path.join(keys, "authorized"), "w") as f:
            f.write(read_key(os.path.join(keys, "client.key")) + "\n")
        a = self.net.address
        exec_run = self.run_dirs["exec"]
        return f"""
[run]
dir = "{self.run_dirs['md']}"
stats_interval_ms = 100

[endpoints]
ticks = "tcp://{a('md')}:7101"
signals = "tcp://{a('exec')}:7102"
order_events = "tcp://{a('exec')}:7103"
orders = "tcp://{a('exec')}:7104"
dead_letters = "tcp://{a('exec')}:7105"

[gateway]
rate = 400
heartbeat_ms = 200

[strategy]
resend_ms = 300
signal_ttl_ms = {SIGNAL_TTL_MS}
feed_timeout_ms = {FEED_TIMEOUT_MS}
max_signal_tick_age_ms = {FRESH_MS}

[[strategy.groups]]
name = "{GROUP}"
kind = "every_nth"
instances = {SHARDS}
hosts = ["strat"]

[strategy.every_nth]
n = 20

[executor]
order_timeout_ms = 300
order_retries = 3

[dll_gateway.settings]
journal_path = "{cl.broker_journal_path(exec_run)}"
latency_ms = 5
max_quote_age_ms = 1500

[supervisor]
backoff_min_ms = 100
backoff_max_ms = 100
flap_window_s = 1
flap_max_restarts = 1000
stop_grace_ms = 5000
healthy_after_ms = 500

[security]
curve = true
server_public_key = "{keys}/server.key"
server_secret_key = "{keys}/server.key_secret"
client_public_key = "{keys}/client.key"
client_secret_key = "{keys}/client.key_secret"
authorized_clients = "{keys}/authorized"
""" + cl.three_hosts_toml(a("md"), a("strat"), a("exec"))

    # -- the hosts' supervisors ------------------------------------------

    def start_host(self, host):
        run = SupervisorRun(os.path.join(self.tmp, host), cl.BIN_DIR, wrap=self.net.command(host, []),
                            args=("--config", self.config, "--host", host), run_dir=self.run_dirs[host])
        self.addCleanup(run.close)
        self.sups[host] = run
        return run

    def stats(self, host, name, pid=None, after_ns=None):
        return cl.stats(self.run_dirs[host], cl.stats_file_name(name), pid, after_ns=after_ns)

    def shards(self):
        return [f"{GROUP}-{k}" for k in range(SHARDS)]

    def broker_fills_after(self, ts_ns):
        """The broker's time of its first new order filled after `ts_ns`, or None."""
        for o in cl.read_broker_orders(self.run_dirs["exec"]):
            if o["ts_ns"] > ts_ns and o["status"] in cl.FILL_STATUSES:
                return o["ts_ns"]
        return None

    def kill(self, host, name):
        """kill -9 of `name` on `host` once it runs; returns its pid (its
        supervisor restarts it)."""
        pid = self.running_pid(host, name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def running_pid(self, host, name):
        return self.sups[host].wait_state(name, "RUNNING", timeout=20)[name]["pid"]

    def wait_restarted(self, host, name, old_pid):
        self.sups[host].wait_state(name, "RUNNING", timeout=20, pred=lambda p: p["pid"] not in (None, old_pid))

    def cut(self, a, b, seconds, during=None, watch=None):
        """Cuts a <-> b for `seconds` (the scenario's length, not a wait for a
        state), calling `during()` once the link is down and `watch()` every
        50 ms while it is; returns (when the link was down, when it began to
        come back) in wall-clock ns."""
        self.net.cut(a, b)
        start = time.time_ns()
        end = time.monotonic() + seconds
        if during:
            during()
        while time.monotonic() < end:
            if watch:
                watch()
            time.sleep(0.05)
        back = time.time_ns()  # before the first end comes up: traffic may flow before restore() returns
        self.net.restore(a, b)
        return start, back

    def programs(self):
        """(host, name) of every program the three supervisors run."""
        return [("md", "gateway"), *(("strat", n) for n in self.shards()),
                ("exec", "executor"), ("exec", "dll_gateway"), ("exec", "dead_letter")]

    def pause(self, host, name, seconds):
        """SIGSTOP of `name` on `host` for `seconds` (shorter than the
        supervisor's hang timeout), then SIGCONT."""
        cl.pause_for(self.running_pid(host, name), seconds)

    def deal(self, rng, seconds):
        """The seeded deck: faults one after another until `seconds` of
        them are dealt; returns what was done, in order, and the windows of
        the md <-> strat cuts (the feed's)."""
        done, feed_cuts = [], []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            kind = rng.choice(("cut", "cut+kill", "kill", "pause"))
            if kind.startswith("cut"):
                a, b = rng.choice(LINKS)
                length = round(rng.uniform(0.3, 4.0), 2)
                victim = rng.choice(self.programs()) if kind == "cut+kill" else None
                killed = {}
                during = (lambda: killed.setdefault("pid", self.kill(*victim))) if victim else None
                window = self.cut(a, b, length, during=during)
                if {a, b} == {"md", "strat"}:
                    feed_cuts.append(window)
                if victim:
                    self.wait_restarted(*victim, killed["pid"])
                done.append(f"cut {a} <-> {b} {length:g} s" + (f", kill -9 {victim[1]}" if victim else ""))
            elif kind == "kill":
                victim = rng.choice(self.programs())
                self.wait_restarted(*victim, self.kill(*victim))
                done.append(f"kill -9 {victim[1]}")
            else:
                victim = rng.choice(self.programs())
                length = round(rng.uniform(0.2, 2.0), 2)
                self.pause(*victim, length)
                done.append(f"SIGSTOP {victim[1]} {length:g} s")
            time.sleep(rng.uniform(0.2, 1.0))  # the gap between two faults, part of the deck
        return done, feed_cuts

    def recovery_s(self, back_ns, what):
        first = wait_for(lambda: self.broker_fills_after(back_ns), timeout=30, interval=0.02,
                         what=f"a fill after {what}", detail=self.status_text)
        return (first - back_ns) / 1e9

    def status_text(self):
        return "\n".join(f"[{h}] {s.status_text()}" for h, s in self.sups.items())

    # -- the books ---------------------------------------------------------

    def merged_books_dir(self):
        """One run directory of symlinks to the files of every host's, as
        the reconciliation reads a one-host run: the strategies' journals
        (strat), the databases and the dead letters (exec), and the sim
        broker's journal beside it."""
        books = os.path.join(self.tmp, "books", "run")
        os.makedirs(books)
        for host, pattern in (("strat", "*-*.journal"), ("exec", "executor.db*"), ("exec", "dll_gateway.db*"),
                              ("exec", "dead_letters*.jsonl*")):
            for path in glob.glob(os.path.join(self.run_dirs[host], pattern)):
                os.symlink(path, os.path.join(books, os.path.basename(path)))
        os.symlink(cl.broker_journal_path(self.run_dirs["exec"]), cl.broker_journal_path(books))
        return books

    # -- the test ----------------------------------------------------------

    def test_links_cut_between_three_hosts_lose_and_double_nothing(self):
        for h in ("exec", "md", "strat"):
            self.start_host(h)
        for h, s in self.sups.items():
            s.wait_all_running(timeout=30)
        wait_for(lambda: self.broker_fills_after(0), timeout=30, what="a first fill across the hosts",
                 detail=self.status_text)

        recoveries = []
        # 1. strat <-> exec longer than the TTL, a shard killed meanwhile.
        killed = {}
        start, back = self.cut("strat", "exec", LONG_CUT_S,
                               during=lambda: killed.setdefault("shard", self.kill("strat", f"{GROUP}-0")))
        self.wait_restarted("strat", f"{GROUP}-0", killed["shard"])
        recoveries.append((f"strat <-> exec, {LONG_CUT_S:g} s, a shard killed", self.recovery_s(back, "strat <-> exec")))

        # 2. exec <-> md, dll_gateway killed meanwhile.
        start, back = self.cut("exec", "md", 4.0,
                               during=lambda: killed.setdefault("dll_gateway", self.kill("exec", "dll_gateway")))
        self.wait_restarted("exec", "dll_gateway", killed["dll_gateway"])
        recoveries.append(("exec <-> md, 4 s, dll_gateway killed", self.recovery_s(back, "exec <-> md")))

        # 3. md <-> strat, shorter than the keepalive: the backlog arrives on return.
        dead_seen = set()

        def watch_feed():
            for name in self.shards():
                s = self.stats("strat", name)
                if s and s.get("feed_alive") is False:
                    dead_seen.add(name)

        feed_cut = self.cut("md", "strat", FEED_CUT_S, watch=watch_feed)
        recoveries.append((f"md <-> strat, {FEED_CUT_S:g} s (feed cut)", self.recovery_s(feed_cut[1], "md <-> strat")))
        # Counted now: the deck's kills restart the shards, and their counters with them.
        try:
            stale = wait_for(lambda: sum((self.stats("strat", n) or {}).get("signals_stale", 0)
                                         for n in self.shards()), timeout=5, what="signals_stale > 0")
        except AssertionError:
            stale = 0  # the check below says so

        # 4. a flap.
        start, back = self.cut("strat", "exec", 0.5)
        recoveries.append(("strat <-> exec, 0.5 s flap", self.recovery_s(back, "the flap")))

        # 5. the seeded deck over every link and program of the three hosts.
        deck, deck_feed_cuts = self.deal(random.Random(SEED), DECK_S)
        deck_end = time.time_ns()
        print(f"\nseed {SEED}, {len(deck)} faults dealt: " + "; ".join(deck), flush=True)
        after_deck = self.recovery_s(deck_end, "the deck")

        # The feed stops; everything settles; every host stops cleanly.
        self.sups["md"].tpctl("stop", "gateway")
        stop_ns = time.time_ns()

        def settled():
            st = self.sups["strat"].status()
            for name in self.shards():
                s = self.stats("strat", name, st[name]["pid"], after_ns=stop_ns)
                if not s or s.get("signals_pending", 1) != 0:
                    return False
            e = self.stats("exec", "executor", self.sups["exec"].status()["executor"]["pid"], after_ns=stop_ns)
            return bool(e) and all(e.get(k, 1) == 0 for k in ("orders_unknown", "orders_intent", "orders_held_now"))

        wait_for(settled, timeout=60, what="every signal settled", detail=self.status_text)
        for h in ("strat", "md", "exec"):
            r = self.sups[h].tpctl("shutdown")
            self.assertEqual(r.returncode, 0, f"{h}: {r.stdout}{r.stderr}")
            self.sups[h].wait_exit(timeout=30)

        books_dir = self.merged_books_dir()
        books = cl.reconcile(books_dir)
        life = cl.reconcile_life(books_dir)
        signals = cl.JournalBook()
        signals.signals, *_ = cl.read_journal_signals(books_dir)
        # Every cut of the feed's link, the scripted one and the deck's.
        made_while_dead = sorted(
            (sid, round((e["created_ts_ns"] - cut[0]) / 1e6), round((e["causation_ts_ns"] - cut[0]) / 1e6))
            for cut in [feed_cut, *deck_feed_cuts] for sid, e in signals.signals.items()
            if cut[0] + (FEED_TIMEOUT_MS + FRESH_MS) * 1_000_000 < e["created_ts_ns"] < cut[1])
        too_old = sorted((sid, round((e["created_ts_ns"] - e["causation_ts_ns"]) / 1e6, 1))
                         for sid, e in signals.signals.items()
                         if e["causation_ts_ns"] and e["created_ts_ns"] - e["causation_ts_ns"] > FRESH_MS * 1_000_000)

        # Signals the cuts hold up reach the executor past their expiry: it
        # refuses them, each with a letter keyed by its signal id, so the
        # letters' check has letters to find (none refused fails it).
        checks = cl.book_checks(books) + cl.outcome_letter_checks(books) + cl.life_checks(life) + [
            ("the feed seen dead by every shard during the feed cut", dead_seen == set(self.shards()),
             sorted(dead_seen)),
            ("no signal made while the feed was dead (every cut of md <-> strat)", not made_while_dead,
             f"(id, ms after its cut it was made, its tick's ms after the cut): {made_while_dead[:20]}"),
            (f"no signal from a tick older than {FRESH_MS} ms (the backlog)", not too_old, too_old[:20]),
            ("the backlog arrived and was refused (signals_stale > 0): the check above is not vacuous", stale > 0,
             "no signal refused as stale: the feed cut delivered no backlog"),
            *((f"a fill within {RECOVERY_LIMIT_S:g} s of the return: {what}", s < RECOVERY_LIMIT_S, f"{s:.2f} s")
              for what, s in recoveries),
        ]
        print("\n" + cl.figures_table("three hosts, links cut", books, extra_rows=[
            *((f"first fill after the return: {what}", f"{s:.2f} s") for what, s in recoveries),
            (f"seeded deck (seed {SEED}): faults dealt / first fill after it", f"{len(deck)} / {after_deck:.2f} s"),
            ("signals refused by the strategies as stale after the feed cut (signals_stale)", stale),
            ("executor outcome letters: stored (executor.db) / due by key / lines",
             f"{books['outcome_letters_stored']} / {books['outcome_letters_due']} / {books['outcome_letter_lines']}"),
            *cl.life_rows(life),
        ]), flush=True)
        failed = [f"{name}: {detail}" for name, ok, detail in checks if not ok]
        self.assertFalse(failed, "\n".join(failed))


if __name__ == "__main__":
    unittest.main()
