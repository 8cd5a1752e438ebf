"""tpctl top's pure parts (scripts/tp_supervisor/top.py), without a terminal
or a supervisor: a stats file's reading, rates from two readings (restarts,
unchanged files, counters going down), the alerts derived from a status reply
and the stats, the frame's lines; and tpctl's arguments for top."""

import io
import os
import tempfile
import unittest
from contextlib import redirect_stderr

import svtest  # noqa: F401  (puts scripts/ on the path)
from tp_supervisor import ctl, top
from tp_supervisor.stats import TOP_FIELDS, current_stats

S = 1_000_000_000


def proc(name, state="RUNNING", pid=100, **extra):
    return dict({"name": name, "program": name.split("-")[0], "state": state, "pid": pid,
                 "uptime_s": 75.0, "restarts": 0, "last_exit": None, "heartbeat_age_s": 0.1}, **extra)


def executor_stats(**extra):
    return dict({"program": "executor", "pid": 102, "ts_ns": 5 * S, "signals_received": 10,
                 "orders_sent": 10, "fills": 9, "dead_letters": 0, "trading_state": "ACTIVE",
                 "trading_state_cause": "", "open_orders": 1, "equity": 1000012.5, "daily_pnl": 12.5,
                 "account_currency": "USD", "breaker": "closed", "broker_alive": True, "disk_low": False,
                 "latency_tick_to_fill_us": {"p50": 655.4, "p99": 2752.5, "count": 9},
                 "positions": {"USDJPY": {"position": 1000, "avg_price": 151.08154, "realized_pnl": -5.25,
                                          "last_price": 151.1},
                               "EURUSD": {"position": -2000, "avg_price": 1.0859, "realized_pnl": 3.5,
                                          "last_price": 1.0861}}}, **extra)


class Readings(unittest.TestCase):
    def test_reading_takes_each_columns_first_counter_present(self):
        r = top.reading({"pid": 7, "ts_ns": 3 * S, "ticks_published": 40, "ticks_received": 1,
                         "signals_emitted": 5, "signals_stale": 3, "fills": 2, "dead_letters": 0,
                         "orders_sent": True})
        self.assertEqual(r, {"pid": 7, "ts_ns": 3 * S,
                             "counters": {"TICKS/S": 40, "SIGNALS/S": 5, "STALE/S": 3, "FILLS/S": 2,
                                          "DEAD/S": 0}})
        self.assertIsNone(top.reading({"pid": 7, "ticks_published": 4}))   # no ts_ns
        self.assertIsNone(top.reading(None))

    def test_rates_are_deltas_over_the_programs_own_timestamps(self):
        a = top.reading({"pid": 7, "ts_ns": 1 * S, "ticks_received": 100, "signals_emitted": 10})
        b = top.reading({"pid": 7, "ts_ns": 3 * S, "ticks_received": 900, "signals_emitted": 11})
        self.assertEqual(top.rates(a, b), {"TICKS/S": 400.0, "SIGNALS/S": 0.5})

    def test_no_rate_across_a_restart_nor_without_time_nor_for_a_counter_going_down(self):
        a = top.reading({"pid": 7, "ts_ns": 1 * S, "ticks_received": 100, "fills": 5})
        self.assertEqual(top.rates(a, top.reading({"pid": 8, "ts_ns": 2 * S, "ticks_received": 5})), {})
        self.assertEqual(top.rates(a, a), {})
        self.assertEqual(top.rates(None, a), {})
        self.assertEqual(top.rates(a, top.reading({"pid": 7, "ts_ns": 2 * S, "ticks_received": 300, "fills": 4})),
                         {"TICKS/S": 200.0})

    def test_rate_book_keeps_the_shown_rates_while_a_file_is_unchanged(self):
        book = top.RateBook()
        first = top.reading({"pid": 7, "ts_ns": 1 * S, "ticks_published": 0})
        self.assertEqual(book.update("gateway", first), {})
        self.assertFalse(book.complete(["gateway"]))
        second = top.reading({"pid": 7, "ts_ns": 2 * S, "ticks_published": 400})
        self.assertEqual(book.update("gateway", second), {"TICKS/S": 400.0})
        self.assertEqual(book.update("gateway", dict(second)), {"TICKS/S": 400.0})   # not rewritten yet
        self.assertTrue(book.complete(["gateway"]))
        third = top.reading({"pid": 7, "ts_ns": 4 * S, "ticks_published": 1200})
        self.assertEqual(book.update("gateway", third), {"TICKS/S": 400.0})
        self.assertEqual(book.update("gateway", None), {})   # gone: nothing shown, baseline dropped
        self.assertEqual(book.update("gateway", third), {})
        restarted = top.reading({"pid": 9, "ts_ns": 5 * S, "ticks_published": 10})
        self.assertEqual(book.update("gateway", restarted), {})


class Alerts(unittest.TestCase):
    def test_a_healthy_deployment_has_none(self):
        reply = {"processes": [proc("gateway"), proc("executor", pid=102)]}
        stats = {"gateway": {"disk_low": False}, "executor": executor_stats()}
        self.assertEqual(top.alerts(reply, stats), [])

    def test_every_kind_of_alert(self):
        reply = {"shutting_down": True, "processes": [
            proc("dead_letter", alert="cannot write dead_letters.jsonl: No space left on device"),
            proc("strategy-0"), proc("executor", pid=102),
            proc("dll_gateway", state="BACKOFF", pid=None, last_exit="exit 1", restart_in_s=0.4),
            proc("gateway", state="HUNG", heartbeat_age_s=3.2)]}
        stats = {"dead_letter": {"disk_low": True, "disk_free_bytes": 10 * 1024 * 1024,
                                 "disk_floor_bytes": 64 * 1024 * 1024},
                 "strategy-0": {"feed_alive": False, "alert": "not emitting: journal full"},
                 "executor": executor_stats(breaker="open", broker_alive=False, trading_state="HALTED",
                                            trading_state_cause="halt by ops: lunch")}
        self.assertEqual(top.alerts(reply, stats), [
            "supervisor: shutting down",
            "dead_letter: cannot write dead_letters.jsonl: No space left on device",
            "dead_letter: disk low (10.0 MiB free, floor 64.0 MiB)",
            "strategy-0: not emitting: journal full",
            "strategy-0: feed dead (no tick or heartbeat from the gateway)",
            "executor: circuit breaker open (dll_gateway not answering)",
            "dll_gateway: BACKOFF (last exit: exit 1)",
            "gateway: HUNG",
            "trading HALTED: halt by ops: lunch"])

    def test_trading_is_said_once_when_the_executors_own_alert_says_it(self):
        reply = {"processes": [proc("executor", pid=102, alert="trading REDUCING: reduce by ops")]}
        stats = {"executor": executor_stats(trading_state="REDUCING", trading_state_cause="reduce by ops",
                                            alert="trading REDUCING: reduce by ops")}
        self.assertEqual(top.alerts(reply, stats), ["executor: trading REDUCING: reduce by ops"])

    def test_dll_gateway_not_answering_with_the_breaker_closed(self):
        reply = {"processes": [proc("executor", pid=102)]}
        stats = {"executor": executor_stats(broker_alive=False)}
        self.assertEqual(top.alerts(reply, stats), ["executor: dll_gateway not answering"])


class Frame(unittest.TestCase):
    def reply(self):
        return {"pid": 42, "run_dir": "/srv/tp/run", "processes": [
            proc("gateway", pid=101), proc("executor", pid=102),
            proc("strategy-0", state="BACKOFF", pid=None, uptime_s=None, restarts=2, last_exit="exit 3",
                 restart_in_s=0.5)]}

    def test_the_frame_layout(self):
        rates = {"gateway": {"TICKS/S": 399.96, "DEAD/S": 0.0}, "executor": {"SIGNALS/S": 4.25, "ORDERS/S": 4.25,
                                                                            "FILLS/S": 12.0}}
        lines = top.frame_lines(self.reply(), {"executor": executor_stats()}, rates, "12:00:01", 1.0, live=True)
        self.assertEqual(lines, [
            "tpctl top: supervisor pid 42, run dir /srv/tp/run, 2/3 running, 12:00:01",
            "trading ACTIVE, open orders 1 | equity 1000012.50 USD (day's PnL 12.50) "
            "| tick->fill p50 655 us, p99 2752 us (n=9)",
            "",
            "NAME        STATE           PID  UPTIME  RESTARTS  TICKS/S  SIGNALS/S  STALE/S  ORDERS/S  FILLS/S  DEAD/S",
            "gateway     RUNNING         101  1m15s   0         400      -          -        -         -        0",
            "executor    RUNNING         102  1m15s   0         -        4.2        -        4.2       12       -",
            "strategy-0  BACKOFF (0.5s)  -    -       2         -        -          -        -         -        -",
            "",
            "ALERTS (1)",
            "  ! strategy-0: BACKOFF (last exit: exit 3)",
            "",
            "INSTRUMENT  POSITION  AVG PRICE  LAST PRICE  REALISED PNL",
            "EURUSD      -2000     1.08590    1.08610     3.50",
            "USDJPY      1000      151.08154  151.10000   -5.25",
            "",
            "refresh every 1 s; q or Ctrl-C quits"])

    def test_without_executor_stats_and_once(self):
        lines = top.frame_lines(self.reply(), {}, {}, live=False)
        self.assertEqual(lines[0], "tpctl top: supervisor pid 42, run dir /srv/tp/run, 2/3 running")
        self.assertEqual(lines[1], "trading n/a (no stats from the executor)")
        self.assertIn("positions: n/a", lines)
        self.assertNotIn("q or Ctrl-C", "\n".join(lines))

    def test_only_the_current_pids_stats_are_read(self):
        with tempfile.TemporaryDirectory() as d:
            for name, pid in (("gateway", 101), ("executor", 999)):
                with open(os.path.join(d, f"{name}.stats.json"), "w") as f:
                    f.write(f'{{"pid": {pid}, "ts_ns": 1}}')
            procs = [proc("gateway", pid=101), proc("executor", pid=102), proc("dead_letter", pid=103)]
            self.assertEqual(current_stats(d, procs), {"gateway": {"pid": 101, "ts_ns": 1}})

    def test_across_hosts_a_host_column_and_an_unreachable_host_is_an_alert(self):
        reply = {"headline": "hosts: a (supervisor pid 7, run dir /r); b UNREACHABLE", "processes": [
            proc("executor", pid=102, host="a"),
            {"host": "b", "name": "supervisor", "state": "UNREACHABLE", "pid": None, "restarts": "-",
             "last_exit": "127.0.0.2:7300: no answer within 3 s"}]}
        lines = top.frame_lines(reply, {"executor": executor_stats()}, {"executor": {"FILLS/S": 3.0}})
        self.assertEqual(lines[0], "tpctl top: hosts: a (supervisor pid 7, run dir /r); b UNREACHABLE, 1/2 running")
        self.assertEqual(lines[3].split(), ["HOST", "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "TICKS/S",
                                            "SIGNALS/S", "STALE/S", "ORDERS/S", "FILLS/S", "DEAD/S"])
        self.assertEqual(lines[4].split(), ["a", "executor", "RUNNING", "102", "1m15s", "0", "-", "-", "-", "-",
                                            "3.0", "-"])
        self.assertEqual(lines[5].split()[:4], ["b", "supervisor", "UNREACHABLE", "-"])
        self.assertIn("  ! b/supervisor: UNREACHABLE (last exit: 127.0.0.2:7300: no answer within 3 s)", lines)

    def test_the_fields_top_reads_are_the_ones_a_host_sends(self):
        # Everything frame_lines and alerts read of a stats file is in
        # TOP_FIELDS: a frame from the trimmed stats equals the full one's.
        full = executor_stats(alert="x", feed_alive=False, disk_low=True, disk_free_bytes=1, disk_floor_bytes=2,
                              breaker="open", trading_state="HALTED", trading_state_cause="operator")
        trimmed = {k: full[k] for k in TOP_FIELDS if k in full}
        reply = {"pid": 1, "run_dir": "/r", "processes": [proc("executor", pid=102)]}
        self.assertEqual(top.frame_lines(reply, {"executor": trimmed}, {}),
                         top.frame_lines(reply, {"executor": full}, {}))
        # And every field reading, frame_lines and alerts look up in a row
        # (whether the row has it or not) is one of them.
        asked = set()

        class Row(dict):
            def get(self, key, default=None):
                asked.add(key)
                return super().get(key, default)

            def __getitem__(self, key):
                asked.add(key)
                return super().__getitem__(key)

            def __contains__(self, key):
                asked.add(key)
                return super().__contains__(key)

        for row in (Row(full), Row(program="strategy", pid=103, ts_ns=S)):
            stats = {"executor": row}
            top.reading(row)
            top.frame_lines(reply, stats, {})
            top.alerts(reply, stats)
        self.assertTrue({"ts_ns", "ticks_published", "trading_state", "positions"} <= asked, asked)
        self.assertEqual(asked - set(TOP_FIELDS), set())


class Arguments(unittest.TestCase):
    def error_of(self, *argv):
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit) as cm:
            ctl.main(list(argv))
        self.assertEqual(cm.exception.code, 2)
        return err.getvalue()

    def test_once_and_interval_are_for_top_only(self):
        self.assertIn("--once and --interval are for top", self.error_of("--run-dir", "/nowhere", "status", "--once"))
        self.assertIn("usage: top", self.error_of("--run-dir", "/nowhere", "top", "extra"))
        self.assertIn("--interval", self.error_of("--run-dir", "/nowhere", "top", "--interval", "0"))

    def test_no_supervisor_is_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            err = io.StringIO()
            with redirect_stderr(err):
                self.assertEqual(ctl.main(["--run-dir", d, "top", "--once"]), ctl.EXIT_NO_SUPERVISOR)
                self.assertEqual(ctl.main(["--run-dir", d, "top"]), ctl.EXIT_NO_SUPERVISOR)
            self.assertIn("no supervisor running at", err.getvalue())


if __name__ == "__main__":
    unittest.main()
