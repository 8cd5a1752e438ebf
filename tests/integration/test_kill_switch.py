"""The kill switch end to end (issue 14, item 2): the real programs under the
supervisor on ipc:// endpoints, two every_nth groups trading all along ("mkt":
market orders, filled at once; "rest": GTC limits 2% away from the market, so
that orders are working at the broker), a group of the test's own ("manual":
one market buy, a position known to be open when flatten comes), and
scripts/tpctl as the operator types it. The sim broker's journal is the broker's own book of what reached
it.

  halt    -> HALTED; every working order canceled at the broker; no new order
             reaches it afterwards while the strategies keep emitting (their
             signals refused trading_halted, dead-lettered); tpctl status
             shows it.
  resume  -> ACTIVE; fills again.
  halt + kill -9 of the executor right after the reply -> the restarted
             executor is still HALTED and still refusing.
  flatten -> REDUCING with a flatten pending; the account's position in every
             instrument, at the executor and at the broker, back to 0 (the
             groups' books adding up to it); then flatten_pending false, and
             signals that would add refused reduce_only.
  a stopped executor -> tpctl exits 2 within its 3 attempts of 2 s.

Every wait is on a file or a counter, bounded."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import chaoslib  # noqa: E402  (the sim broker journal's reader)
from svtest import TPCTL, SupervisorRun, endpoints_toml, wait_for  # noqa: E402
import tp_proto  # noqa: E402  (scripts/, put on the path by svtest)

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PROGRAMS = ("gateway", "strategy", "executor", "dll_gateway", "dead_letter")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 15.0
MANUAL = "manual"   # the group the test itself trades as, to hold a known position
WORKING = ("ACCEPTED", "PARTIALLY_FILLED", "NEW")


def config_text(d, run_dir):
    return "\n".join([
        "[run]", f'dir = "{run_dir}"', "stats_interval_ms = 100",
        *endpoints_toml(d),
        "[gateway]", "rate = 400", "heartbeat_ms = 200",
        "[strategy]", "resend_ms = 300", "feed_timeout_ms = 1000",
        "[[strategy.groups]]", 'name = "mkt"', 'kind = "every_nth"', "instances = 1",
        "[strategy.groups.params]", "n = 10",
        "[[strategy.groups]]", 'name = "rest"', 'kind = "every_nth"', "instances = 1",
        'order_type = "limit"', 'time_in_force = "gtc"', "limit_offset_bps = 200",
        "[strategy.groups.params]", "n = 10",
        "[executor]", "order_timeout_ms = 500",
        "[dll_gateway.settings]", f'journal_path = "{chaoslib.broker_journal_path(run_dir)}"',
        # The kill -9 must not look like flapping; the restart comes fast.
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 200", "flap_window_s = 1",
        "flap_max_restarts = 100", "stop_grace_ms = 5000", "healthy_after_ms = 500",
        "",
    ])


@unittest.skipIf(MISSING, SKIP_WHY)
class KillSwitch(unittest.TestCase):
    def setUp(self):
        # Short path: an ipc:// endpoint has a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="tpks", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.run_dir = os.path.join(self.tmp, "run")
        self.config = os.path.join(self.tmp, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(config_text(self.tmp, self.run_dir))
        self.sup = SupervisorRun(self.tmp, BIN_DIR, ["--config", self.config])
        self.addCleanup(self.sup.close)
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, 0)
        self.n = 0

    # ------------------------------------------------------------------
    # The operator's side.

    def tpctl(self, *args, rc=0):
        """scripts/tpctl with the deployment file; returns the completed run
        after checking its exit code."""
        r = subprocess.run([sys.executable, TPCTL, "--config", self.config, *args],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, rc, f"tpctl {' '.join(args)}: {r.stdout}{r.stderr}\n{self.detail()}")
        return r

    def command(self, *args):
        """A trading command that must be applied: its reply (state as a name)."""
        reply = json.loads(self.tpctl(*args, "--json").stdout)
        self.assertTrue(reply["ok"], reply)
        return reply

    def status_text(self):
        r = subprocess.run([sys.executable, TPCTL, "--run-dir", self.run_dir, "status"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    # ------------------------------------------------------------------
    # What the files say.

    def ex(self, pid=None, after_ns=None):
        """executor.stats.json (of pid `pid`, written after `after_ns`, when
        given), {} before any."""
        return chaoslib.stats(self.run_dir, "executor", pid, after_ns=after_ns) or {}

    def rejected(self, reason, data=None):
        data = self.ex() if data is None else data
        return (data.get("rejected") or {}).get(reason, 0)

    def group_positions(self, data=None):
        """(group, instrument) -> the executor's position."""
        data = self.ex() if data is None else data
        return {(g, sym): q for g, fig in (data.get("groups") or {}).items()
                for sym, q in (fig.get("positions") or {}).items()}

    def broker_events(self):
        return chaoslib.read_broker_events(self.run_dir)

    def broker_working(self):
        """Client order ids the sim broker has working (its journal's last word on them)."""
        last = {}
        for e in self.broker_events():
            last[e["cid"]] = e["status"]
        return sorted(cid for cid, status in last.items() if status in WORKING)

    def broker_positions(self):
        """instrument -> the broker's net position: every fill in its journal."""
        out = {}
        for e, qty in chaoslib.broker_fills(self.broker_events()):
            out[e["instrument"]] = out.get(e["instrument"], 0.0) + (qty if e["side"] == "BUY" else -qty)
        return out

    def orders_after(self, ts_ns):
        """New orders (ORDER lines) the broker received after `ts_ns`."""
        return [e for e in self.broker_events() if e["kind"] == "ORDER" and e["ts_ns"] > ts_ns]

    def executor_orders(self):
        """client order id -> created_ns, from executor.db (readable once the
        executor has stopped: it holds the file exclusively while it runs)."""
        con = sqlite3.connect(os.path.join(self.run_dir, "executor.db"), timeout=5)
        try:
            return dict(con.execute("SELECT client_order_id, created_ns FROM orders"))
        finally:
            con.close()

    def assert_no_new_order(self, halt, resume):
        """While HALTED (from the halt's since_ns to the resume's): the
        executor made no order, and the broker received none it made then
        (one already in flight when the halt came may land after the reply)."""
        created = self.executor_orders()
        start, end = halt["since_ns"], resume["since_ns"]
        made = sorted(cid for cid, ns in created.items() if start <= ns < end)
        self.assertEqual(made, [], "orders made while HALTED")
        late = [(e["cid"], e["ts_ns"]) for e in self.orders_after(halt["ts_ns"])
                if e["ts_ns"] < end and created.get(e["cid"], start) >= start]
        self.assertEqual(late, [], "new orders reached the broker after the halt's reply")

    def dead_letter_reasons(self):
        reasons, _, _ = chaoslib.dead_letter_summary(self.run_dir)
        return reasons

    def detail(self):
        ex = self.ex()
        keys = ("pid", "trading_state", "trading_state_cause", "flatten_pending", "open_orders",
                "orders_working", "fills", "rejected", "groups", "positions")
        lines = [f"executor stats: {json.dumps({k: ex.get(k) for k in keys})}"]
        try:
            with open(os.path.join(self.run_dir, "logs", "executor.log"), errors="replace") as f:
                lines.append("-- executor.log (tail):\n" + "".join(f.readlines()[-15:]))
        except OSError:
            pass
        return "\n".join(lines) + "\n" + self.sup.status_text()

    def wait(self, predicate, what, timeout=WAIT_S):
        return wait_for(predicate, timeout, what=what, detail=self.detail)

    # ------------------------------------------------------------------
    # The test as a strategy group of its own (a known position to flatten).

    def buy(self, instrument, quantity, mid):
        self.n += 1
        t = time.time_ns()
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 2000)
        push.connect(f"ipc://{self.tmp}/signals.ipc")
        push.send(tp_proto.encode("signal", dict(
            signal_id=f"{MANUAL}.{self.n}", strategy=MANUAL, instance=0, instrument=instrument, action=1,
            quantity=float(quantity), trigger_price=mid, confidence=1.0, created_ts_ns=t,
            expires_ts_ns=t + 10_000_000_000, causation_seq=0, causation_ts_ns=t)))
        push.close()

    # ------------------------------------------------------------------

    def test_halt_resume_halt_across_kill9_flatten_and_no_answer(self):
        self.sup.wait_all_running(timeout=WAIT_S * 2, count=6)
        self.wait(lambda: self.ex().get("fills", 0) > 0 and self.ex().get("orders_working", 0) >= 3,
                  "fills (mkt) and working orders (rest)")
        self.wait(lambda: len(self.broker_working()) >= 3, "orders working at the broker")
        self.assertEqual(self.ex()["trading_state"], "ACTIVE")
        self.assertEqual(self.command("trading")["state"], "ACTIVE")

        # (a) halt: every working order canceled, nothing new reaches the broker.
        reply = self.command("halt", "--reason", "test")
        halted_at = time.time_ns()
        self.assertEqual(reply["state"], "HALTED")
        self.assertIn("test", reply["cause"])
        self.assertFalse(reply["flatten_pending"])
        self.wait(lambda: not self.broker_working(), "no order working at the broker after the halt")
        self.wait(lambda: (lambda s: s and s["orders_working"] == 0 and s["open_orders"] == 0
                           and s["trading_state"] == "HALTED")(self.ex(after_ns=halted_at)),
                  "the executor's stats: HALTED, nothing working")
        refused = self.rejected("trading_halted")
        self.wait(lambda: self.rejected("trading_halted") >= refused + 20,
                  "the strategies' signals refused trading_halted")
        halts = [reply]
        self.wait(lambda: self.dead_letter_reasons()["trading_halted"] > 0, "trading_halted dead letters")
        status = self.status_text()
        self.assertRegex(status, r"trading: HALTED since .*\(halt by tpctl:.*: test\)")

        # (c) resume: fills again.
        fills = self.ex()["fills"]
        reply = self.command("resume")
        self.assertEqual(reply["state"], "ACTIVE")
        resumes = [reply]
        self.wait(lambda: self.ex().get("fills", 0) > fills, "fills after the resume")
        self.wait(lambda: self.ex().get("orders_working", 0) > 0, "working orders after the resume")

        # (b) a halt survives kill -9 of the executor right after its reply.
        pid = self.ex()["pid"]
        halt = self.command("halt", "--reason", "before the kill")
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(halt["state"], "HALTED")
        restarted = self.wait(lambda: (lambda s: s if s.get("pid") not in (None, pid) else None)(self.ex()),
                              "the executor restarted by the supervisor")["pid"]
        self.sup.status()   # remembers the new pid for the clean-up
        reply = self.command("trading")
        self.assertEqual(reply["state"], "HALTED", reply)
        self.assertIn("before the kill", reply["cause"])
        self.assertEqual(reply["since_ns"], halt["since_ns"], "the halt the restarted executor read back")
        self.wait(lambda: self.rejected("trading_halted", self.ex(restarted)) >= 20,
                  "the restarted executor refusing trading_halted")
        self.wait(lambda: not self.broker_working(), "no order working at the broker after the restart")
        halts.append(halt)

        # (c) resume again, and a position of the test's own to flatten.
        fills = self.ex(restarted)["fills"]
        resumes.append(self.command("resume"))
        self.assertEqual(resumes[-1]["state"], "ACTIVE")
        self.wait(lambda: self.ex(restarted).get("fills", 0) > fills, "fills after the second resume")
        mid = (self.ex().get("positions") or {}).get("EURUSD", {}).get("last_price") or 1.085
        self.buy("EURUSD", 3000, mid)
        self.wait(lambda: self.group_positions().get((MANUAL, "EURUSD")) == 3000, "the test's own buy filled")

        # (d) flatten: every position closed, then only reducing orders.
        asked_at = time.time_ns()
        reply = self.command("flatten", "--reason", "end of test")
        self.assertEqual(reply["state"], "REDUCING")
        self.assertTrue(reply["flatten_pending"])
        flattened_at = time.time_ns()

        def flat():
            """The account flat: the executor's position in every instrument,
            and the groups' books adding up to it (the executor closes each
            instrument's net: groups holding opposite positions offset each
            other and keep them in their books)."""
            s = self.ex(after_ns=flattened_at)
            if not s or s["flatten_pending"] or s["open_orders"] != 0 or not s.get("positions"):
                return None
            by_groups = {}
            for (_, sym), q in self.group_positions(s).items():
                by_groups[sym] = by_groups.get(sym, 0.0) + q
            return (all(abs(p["position"]) < 1e-6 for p in s["positions"].values())
                    and all(abs(q) < 1e-6 for q in by_groups.values()))
        self.wait(flat, "every position flat and the flatten done", timeout=WAIT_S * 2)
        closing = [e for e in self.orders_after(asked_at) if e["cid"].startswith("C-flatten.")]
        self.assertTrue(closing, f"no closing order reached the broker: {self.orders_after(asked_at)}")
        self.wait(lambda: all(abs(q) < 1e-6 for q in self.broker_positions().values()),
                  "the broker's positions flat")
        refused = self.rejected("reduce_only")
        self.wait(lambda: self.rejected("reduce_only") >= refused + 3, "adding signals refused reduce_only")
        reply = self.command("trading")
        self.assertEqual((reply["state"], reply["flatten_pending"]), ("REDUCING", False))
        self.assertRegex(self.status_text(), r"trading: REDUCING since .*\(flatten by tpctl:.*: end of test\)")

        # (e) no executor: not applied, exit 2, within the 3 attempts of 2 s.
        self.sup.ctl({"cmd": "stop", "name": "executor"})
        started = time.monotonic()
        r = self.tpctl("halt", rc=2)
        elapsed = time.monotonic() - started
        self.assertIn("not applied: the executor did not answer at ipc://", r.stderr)
        self.assertIn("nothing accepted a connection there", r.stderr)
        self.assertLess(elapsed, 8.0)   # 3 x 2 s, and tpctl's own start on a loaded machine
        self.assertGreater(elapsed, 5.5)

        # executor.db, now that the executor has stopped: nothing made while HALTED.
        for halt, resume in zip(halts, resumes):
            self.assert_no_new_order(halt, resume)


if __name__ == "__main__":
    unittest.main()
