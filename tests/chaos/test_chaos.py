"""The chaos test: the whole pipeline under the real supervisor, kill -9 on a
seeded random schedule, then reconciliation from the files.

Synthetic feed at ~1,000 ticks/s, two every_nth strategy instances (a signal
every 20th tick of an instrument: up to ~50 signals/s), the sim broker
journaling every order it receives and answering after 10 ms (so that a kill
often lands while an order is in flight). Each round kills, in a seeded
random order, the gateway, one strategy instance (chosen by the seed), the
executor and dll_gateway with SIGKILL; the supervisor restarts each. Then the feed stops
(`tpctl stop gateway`), the system settles (bounded wait: no strategy has a
pending signal, the executor has no order with an unknown outcome), the run
stops cleanly (`tpctl shutdown`) and the books are reconciled from the files
(see chaoslib.reconcile). The figures are printed as a table; the test fails
when a signal is lost, an order reaches the broker twice, a process that was
not killed changed pid, or a restart took a second or more (kill -> new pid
in the supervisor's status; kill -> the new process's first stats file is
reported too and bounded at 2 s, as it includes the program's own start-up
on a loaded machine).

Environment: TP_CHAOS_SECONDS (default 60) and TP_CHAOS_SEED (default 1);
scripts/chaos runs it with --seconds/--seed. TP_CHAOS_KEEP=1 keeps the run
directory for inspection."""

import os
import random
import shutil
import signal
import sys
import tempfile
import time
import unittest

import chaoslib as cl

CHAOS_S = float(os.environ.get("TP_CHAOS_SECONDS", "60"))
SEED = int(os.environ.get("TP_CHAOS_SEED", "1"))
KEEP = os.environ.get("TP_CHAOS_KEEP") == "1"
GAP_S = (1.0, 3.0)          # between kills
BROKER_LATENCY_MS = 10      # an order is in flight ~20-40% of the time: kills land mid-request
RESTART_BOUND_S = 1.0       # kill -> the supervisor has started the new process (new pid)
READY_BOUND_S = 2.0         # kill -> the new process has written its stats file (its loop runs)
WAIT_S = 30.0
SETTLE_S = 60.0

if cl.MISSING:
    print(cl.SKIP_WHY, file=sys.stderr)


@unittest.skipIf(cl.MISSING, cl.SKIP_WHY)
class ChaosTest(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="chaos", dir="/tmp")
        if not KEEP:
            self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.run_dir = os.path.join(self.tmp, "run")
        self.config = os.path.join(self.tmp, "chaos.toml")
        with open(self.config, "w") as f:
            f.write(cl.config_text(self.tmp, self.run_dir, broker_latency_ms=BROKER_LATENCY_MS))
        self.sv = cl.SupervisorRun(self.tmp, cl.BIN_DIR, ["--config", self.config, "--summary"],
                                   run_dir=self.run_dir)
        self.addCleanup(self.sv.close)

    def detail(self):
        logs = []
        for name in ("executor", "dll_gateway", "strategy-0", "strategy-1", "gateway"):
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

    # Counters summed over every life of a program (a kill ends a life; the
    # stats file is at most stats_interval_ms old when it does).
    SUMMED = {"executor": ("order_retries", "order_timeouts", "breaker_opens", "duplicates"),
              "dll_gateway": ("duplicates", "queries")}

    def add_counters(self, name, pid):
        for key in self.SUMMED.get(name, ()):
            data = cl.stats(self.run_dir, name, pid) or {}
            self.summed[f"{name} {key}"] = self.summed.get(f"{name} {key}", 0) + data.get(key, 0)

    def kill_and_time(self, name):
        """SIGKILL the current `name`; returns (spawn_s, ready_s): kill -> new
        pid in the supervisor's status, kill -> that pid's stats file."""
        pid = cl.wait_for(lambda: self.running_pid(name), WAIT_S, what=f"{name} RUNNING", detail=self.detail)
        self.add_counters(name, pid)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        def new_pid():
            st = self.sv.try_status()
            p = st.get(name, {}).get("pid") if st else None
            return p if p and p != pid else None
        new = cl.wait_for(new_pid, WAIT_S, interval=0.02, what=f"{name} restarted", detail=self.detail)
        spawn_s = time.monotonic() - t0
        cl.wait_for(lambda: cl.stats(self.run_dir, cl.stats_file_name(name), new), WAIT_S, interval=0.02,
                    what=f"{name} pid {new} stats", detail=self.detail)
        return spawn_s, time.monotonic() - t0

    def test_kill9_anywhere_books_balance(self):
        rng = random.Random(SEED)
        self.summed = {}
        instance = f"strategy:{rng.randrange(2)}"
        victims = ["gateway", instance, "executor", "dll_gateway"]
        bystanders = ["dead_letter", "strategy:0" if instance == "strategy:1" else "strategy:1"]

        st = self.sv.wait_all_running(timeout=WAIT_S, count=6)
        before = {n: p["pid"] for n, p in st.items()}
        cl.wait_for(lambda: (cl.stats(self.run_dir, "executor") or {}).get("fills", 0) > 0, WAIT_S,
                    what="the first fills", detail=self.detail)

        kills = {v: 0 for v in victims}
        spawn_max = ready_max = 0.0
        worst = ""
        end = time.monotonic() + CHAOS_S
        while time.monotonic() < end:
            order = victims[:]
            rng.shuffle(order)
            for name in order:
                time.sleep(rng.uniform(*GAP_S))  # the schedule itself, not a synchronisation
                if time.monotonic() >= end:
                    break
                spawn_s, ready_s = self.kill_and_time(name)
                kills[name] += 1
                spawn_max = max(spawn_max, spawn_s)
                if ready_s > ready_max:
                    ready_max, worst = ready_s, name

        # Stop the feed and let the system settle.
        cl.tpctl(self.run_dir, "stop", "gateway")
        stopped_ns = cl.now_ns()
        st = self.sv.status()
        strategies = {n: p["pid"] for n, p in st.items() if n.startswith("strategy:")}
        cl.wait_for(lambda: cl.settled(self.run_dir, strategies, st["executor"]["pid"], stopped_ns), SETTLE_S,
                    what="the system to settle", detail=self.detail)
        for name in bystanders:
            self.assertEqual(st[name]["pid"], before[name], f"{name} was not killed but its pid changed")
            self.assertEqual(st[name]["restarts"], 0, name)

        cl.tpctl(self.run_dir, "shutdown")
        self.assertEqual(self.sv.wait_exit(timeout=WAIT_S), 0)
        for name in self.SUMMED:
            self.add_counters(name, None)  # the last life's final stats

        books = cl.reconcile(self.run_dir)
        table = cl.figures_table(
            f"chaos: {CHAOS_S:.0f} s, seed {SEED}", books,
            [("kills per program", ", ".join(f"{n}={k}" for n, k in kills.items())),
             ("max restart (kill -> new pid)", f"{spawn_max:.3f} s"),
             ("max restart (kill -> stats of new pid)", f"{ready_max:.3f} s ({worst})"),
             ("pids unchanged", ", ".join(bystanders)),
             *((f"{k} (all lives)", v) for k, v in sorted(self.summed.items()))])
        print("\n" + table, file=sys.stderr, flush=True)
        if KEEP:
            print(f"run dir kept: {self.run_dir}", file=sys.stderr)

        cl.assert_books_balance(self, books, "chaos")
        for name, k in kills.items():
            self.assertGreaterEqual(k, 2 if CHAOS_S >= 30 else 1, f"{name} killed only {k} times")
        self.assertLess(spawn_max, RESTART_BOUND_S)
        self.assertLess(ready_max, READY_BOUND_S, f"slowest restart: {worst}")
        self.assertGreater(books["executed"], 0)


if __name__ == "__main__":
    unittest.main()
