"""Clocks apart across hosts (libfaketime): no order reaches the broker after
its signal's expiry in true time, and every program shows the skew it sees.

A deployment of three hosts on loopback addresses ([[hosts]]: md =
gateway, strat = the strategy, exec = executor, dll_gateway and the sink),
each program under its own clock: the market-data and strategy hosts 0.5 s
ahead of true time, the execution host 0.45 s behind (0.95 s apart, inside
the default max_clock_skew_ms of 1 s), signals living 3 s. While it trades,
the executor is stopped (SIGSTOP) for 4.5 s, longer than the TTL, and
continued: what waited for it must not be traded late.

Each broker order's true time is the sim broker's stamp (the execution
host's clock) + 0.45 s; its signal's true creation is created_ts_ns (the
strategy's clock) - 0.5 s. Checked from the files: no order at the broker at
or after true creation + TTL, the books balance (chaoslib.reconcile), and
every outcome letter the executor stored (or signal it refused) is written
once by key (chaoslib.outcome_letter_checks);
and from the stats: the executor sees the strategy's clock ~0.95 s ahead of
its own (clock_lag_min_ms.strategy), the strategy sees the gateway on its
own clock, dll_gateway sees the executor on its own.

With one clock per deployment (no [[hosts]]) the executor gives no margin;
across hosts an order's deadline is its signal's expiry less
max_clock_skew_ms (executor/decision.hpp expiry_margin_ns). Without that
margin this scenario put orders at the broker up to ~0.95 s after their true
expiry."""

import os
import tempfile
import shutil
import unittest

import chaoslib as cl
from ports import free_port_base  # noqa: E402  (tests/support, on sys.path through chaoslib)
from svtest import wait_for

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
AHEAD_S, BEHIND_S = 0.5, 0.45  # md and strat ahead of true time; exec behind
TTL_MS = 3000
PAUSE_S = 4.5
HOSTS = {"md": "127.0.0.1", "strat": "127.0.0.2", "exec": "127.0.0.3"}


def clock(offset_s):
    """The environment that runs a program `offset_s` from true time."""
    return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": f"{offset_s:+g}", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_NO_CACHE": "1"}


class ClockSkew(unittest.TestCase):
    def setUp(self):
        if cl.SKIP_WHY:
            self.skipTest(cl.SKIP_WHY)
        if not os.path.exists(LIBFAKETIME):
            self.skipTest(f"libfaketime is not installed ({LIBFAKETIME}; Debian package faketime)")
        self.tmp = tempfile.mkdtemp(prefix="tp-skew-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir)
        self.config = os.path.join(self.tmp, "skew.toml")
        with open(self.config, "w") as f:
            f.write(self.config_text())
        self.p = cl.Processes(self.tmp, self.config)
        self.addCleanup(self.p.close)

    def config_text(self):
        md, ex = HOSTS["md"], HOSTS["exec"]
        base = free_port_base(7, addresses=(md, ex))
        ports = dict(zip(("ticks", "signals", "order_events", "orders", "dead_letters", "reports", "control"),
                         range(base, base + 7)))
        return f"""
[run]
dir = "{self.run_dir}"
stats_interval_ms = 100

[endpoints]
ticks = "tcp://{md}:{ports['ticks']}"
signals = "tcp://{ex}:{ports['signals']}"
order_events = "tcp://{ex}:{ports['order_events']}"
orders = "tcp://{ex}:{ports['orders']}"
dead_letters = "tcp://{ex}:{ports['dead_letters']}"
reports = "tcp://{ex}:{ports['reports']}"
control = "tcp://{ex}:{ports['control']}"

[gateway]
rate = 400
heartbeat_ms = 200

[strategy]
name = "every_nth"
instances = 1
resend_ms = 300
signal_ttl_ms = {TTL_MS}

[strategy.every_nth]
n = 20

[executor]
order_timeout_ms = 300
order_retries = 3

[dll_gateway.settings]
journal_path = "{cl.broker_journal_path(self.run_dir)}"
""" + cl.three_hosts_toml(md, HOSTS["strat"], ex)

    def start(self, name, offset_s, *args):
        proc = self.p.start(name, *args, env=clock(offset_s))
        wait_for(lambda: cl.stats(self.run_dir, cl.stats_file_name(name), proc.pid), 20, what=f"{name} up",
                 detail=self.detail)
        return proc

    def detail(self):
        return "\n".join(f"-- {n}.log:\n" + "".join(self.p.log(n).splitlines(True)[-6:])
                         for n in ("executor", "dll_gateway", "strategy:0", "gateway"))

    def lag_ms(self, name, source):
        return (cl.stats(self.run_dir, cl.stats_file_name(name)) or {}).get("clock_lag_min_ms", {}).get(source)

    def filled(self):
        return sum(1 for o in cl.read_broker_orders(self.run_dir) if o["status"] in cl.FILL_STATUSES)

    def test_no_order_reaches_the_broker_after_its_true_expiry(self):
        self.start("dead_letter", -BEHIND_S)
        self.start("dll_gateway", -BEHIND_S)
        ex = self.start("executor", -BEHIND_S)
        self.start("strategy:0", AHEAD_S, "--shard", "0", "--shards", "1")
        self.start("gateway", AHEAD_S)
        wait_for(lambda: self.filled() >= 10, 30, what="fills with the clocks apart", detail=self.detail)
        lags = {
            "executor sees the strategy": self.lag_ms("executor", "strategy"),
            "strategy sees the gateway": self.lag_ms("strategy:0", "gateway"),
            "dll_gateway sees the executor": self.lag_ms("dll_gateway", "executor"),
            "the sink sees the senders": self.lag_ms("dead_letter", "senders"),
        }

        # What waits for a stopped executor must not be traded late.
        cl.pause_for(ex.pid, PAUSE_S)
        before = self.filled()
        wait_for(lambda: self.filled() >= before + 10, 30, what="fills after the pause", detail=self.detail)

        self.p.stop("gateway")
        since = cl.now_ns() - int(BEHIND_S * 1e9)  # the executor's stats are stamped by its own clock
        strategies = {"strategy:0": self.p.procs["strategy:0"].pid}
        wait_for(lambda: cl.settled(self.run_dir, strategies, ex.pid, since), 60, what="settled",
                 detail=self.detail)
        for name in ("strategy:0", "executor", "dll_gateway", "dead_letter"):
            self.assertEqual(self.p.stop(name), 0, f"{name} exit code:\n{self.detail()}")

        books = cl.reconcile(self.run_dir)
        signals, *_ = cl.read_journal_signals(self.run_dir)
        late, checked = [], 0
        for o in cl.read_broker_orders(self.run_dir):
            sig = signals.get(o["cid"][2:])
            if not sig:
                continue
            checked += 1
            true_at_broker = o["ts_ns"] + int(BEHIND_S * 1e9)
            true_expiry = sig["created_ts_ns"] - int(AHEAD_S * 1e9) + TTL_MS * 1_000_000
            if true_at_broker >= true_expiry:
                late.append((o["cid"], o["status"], round((true_at_broker - true_expiry) / 1e6, 1)))
        apart_ms = (AHEAD_S + BEHIND_S) * 1000
        print("\n" + cl.figures_table("clocks apart: md/strat +0.5 s, exec -0.45 s", books, extra_rows=[
            ("broker orders checked against their true expiry", checked),
            ("  at or after it (cid, status, ms late)", late[:10] or 0),
            *((f"clock_lag_min_ms: {k}", v) for k, v in lags.items()),
            ("executor outcome letters: stored (executor.db) / due by key / lines",
             f"{books['outcome_letters_stored']} / {books['outcome_letters_due']} / {books['outcome_letter_lines']}"),
        ]), flush=True)
        # What waited for the stopped executor reaches it expired: it refuses
        # it, each signal with a letter keyed by its id, so the letters' check
        # has letters to find (none refused fails it).
        checks = cl.book_checks(books) + cl.outcome_letter_checks(books) + [
            ("orders checked", checked > 0, "no broker order matched a journaled signal"),
            ("no order at the broker at/after its signal's true expiry", not late, late[:20]),
            # Transit on loopback is well under 50 ms; the lag is the clocks' difference plus it.
            (f"the executor sees the strategy's clock {apart_ms:.0f} ms ahead",
             lags["executor sees the strategy"] is not None and
             -apart_ms <= lags["executor sees the strategy"] <= -apart_ms + 50, lags),
            ("the strategy sees the gateway on its clock",
             lags["strategy sees the gateway"] is not None and 0 <= lags["strategy sees the gateway"] <= 50, lags),
            ("dll_gateway sees the executor on its clock",
             lags["dll_gateway sees the executor"] is not None and 0 <= lags["dll_gateway sees the executor"] <= 50,
             lags),
        ]
        failed = [f"{name}: {detail}" for name, ok, detail in checks if not ok]
        self.assertFalse(failed, "\n".join(failed))


if __name__ == "__main__":
    unittest.main()
