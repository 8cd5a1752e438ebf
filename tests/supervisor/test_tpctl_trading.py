"""tpctl's trading commands (scripts/tp_supervisor/ctl.py) without the
pipeline: where the executor's control socket is (the deployment file, the
derived endpoint, --control) and its CURVE keys, the argument rules, the
reply as printed, the trading line of `tpctl status` (report.trading_status),
and the Lazy Pirate exchange against an in-process REP that drops requests,
answers "refused", answers over CURVE, or is not there. The real executor's
side is tests/integration/test_kill_switch.py."""

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import unittest
import unittest.mock

import zmq

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from tp_supervisor import ctl, report  # noqa: E402
from tp_supervisor.settings import ConfigError  # noqa: E402
import tp_proto  # noqa: E402


def reply_payload(ok=True, state=3, cause="halt by tpctl:a@b: test", detail="", flatten_pending=False):
    return tp_proto.encode("control_reply", dict(ok=ok, state=state, cause=cause, since_ns=1_700_000_000_000_000_000,
                                                 flatten_pending=flatten_pending, open_orders=4, detail=detail,
                                                 ts_ns=1_700_000_000_000_000_001))


class FakeExecutor:
    """A REP on `endpoint` in a thread: drops the first `drop` requests (the
    REQ that sent them times out), answers the rest with `payload`; keeps
    what it received, decoded."""

    def __init__(self, endpoint, payload, drop=0, server_secret=None):
        self.ctx = zmq.Context()
        self.received = []
        self.payload, self.drop = payload, drop
        self.stop = threading.Event()
        self.sock = self.ctx.socket(zmq.ROUTER)   # a ROUTER can leave a request unanswered
        self.sock.setsockopt(zmq.LINGER, 0)
        if server_secret:
            self.sock.curve_server = True
            self.sock.curve_secretkey = server_secret
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            if not self.sock.poll(20):
                continue
            identity, empty, body = self.sock.recv_multipart()
            self.received.append(tp_proto.decode(body))
            if len(self.received) > self.drop:
                self.sock.send_multipart([identity, empty, self.payload])

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


class WhereTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tpctl")
        self.addCleanup(self.tmp.cleanup)

    def config(self, text, name="deploy.toml"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def key(self, name, z85, mode=0o644):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write("# a key\n" + z85 + "\n")
        os.chmod(path, mode)
        return path

    def test_the_endpoint_is_derived_from_orders_as_the_executor_derives_it(self):
        self.assertEqual(ctl.derived_control_endpoint("tcp://127.0.0.1:7104"), "tcp://127.0.0.1:7107")
        self.assertEqual(ctl.derived_control_endpoint("ipc:///run/tp/orders.ipc"), "ipc:///run/tp/orders.ipc.control")
        self.assertEqual(ctl.derived_control_endpoint("inproc://orders"), "inproc://orders.control")
        for bad in ("tcp://host", "tcp://host:x", "tcp://host:65534"):
            with self.assertRaisesRegex(ConfigError, "endpoints.control: cannot derive it from orders"):
                ctl.derived_control_endpoint(bad)

    def test_control_from_the_config_or_the_override(self):
        self.assertEqual(ctl.control_target(None), ("tcp://127.0.0.1:7107", None))
        ipc = self.config('[endpoints]\norders = "ipc:///x/orders.ipc"\n')
        self.assertEqual(ctl.control_target(ipc), ("ipc:///x/orders.ipc.control", None))
        set_ = self.config('[endpoints]\norders = "tcp://10.0.0.1:9000"\ncontrol = "tcp://10.0.0.2:9999"\n')
        self.assertEqual(ctl.control_target(set_)[0], "tcp://10.0.0.2:9999")
        self.assertEqual(ctl.control_target(set_, "ipc:///elsewhere")[0], "ipc:///elsewhere")
        with self.assertRaisesRegex(ConfigError, "endpoints.control must be a string"):
            ctl.control_target(self.config("[endpoints]\ncontrol = 7\n"))
        with self.assertRaisesRegex(ConfigError, "cannot read the config file"):
            ctl.control_target(os.path.join(self.tmp.name, "missing.toml"))

    def test_curve_keys_on_tcp_only(self):
        server_pub, _ = zmq.curve_keypair()
        client_pub, client_sec = zmq.curve_keypair()
        keys = [self.key("server.key", server_pub.decode()), self.key("client.key", client_pub.decode()),
                self.key("client.key_secret", client_sec.decode(), 0o600)]
        security = ("[security]\ncurve = true\n"
                    f'server_public_key = "{keys[0]}"\nclient_public_key = "{keys[1]}"\n'
                    f'client_secret_key = "{keys[2]}"\n')
        tcp = self.config(security)
        self.assertEqual(ctl.control_target(tcp),
                         ("tcp://127.0.0.1:7107", (server_pub.decode(), client_pub.decode(), client_sec.decode())))
        self.assertIsNone(ctl.control_target(tcp, "ipc:///x.control")[1])
        os.chmod(keys[2], 0o640)
        with self.assertRaisesRegex(ConfigError, "readable by group or others"):
            ctl.control_target(tcp)
        no_client = self.config(f'[security]\ncurve = true\nserver_public_key = "{keys[0]}"\n', "nc.toml")
        with self.assertRaisesRegex(ConfigError, "security.client_public_key must be set when curve = true"):
            ctl.control_target(no_client)
        with self.assertRaisesRegex(ConfigError, "security.curve must be true or false"):
            ctl.control_target(self.config('[security]\ncurve = "yes"\n', "c.toml"))

    def test_sent_by_names_the_user_and_host_within_128_bytes(self):
        who = ctl.sent_by()
        self.assertRegex(who, r"^tpctl:.+@.+")
        self.assertLessEqual(len(who.encode()), 128)


class ArgumentsTest(unittest.TestCase):
    def refused(self, *argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as e:
            ctl.main(list(argv))
        self.assertEqual(e.exception.code, 2)
        return err.getvalue()

    def test_trading_commands_take_no_name_and_no_supervisor_socket(self):
        self.assertIn("usage: halt [--reason TEXT]", self.refused("halt", "now"))
        self.assertIn("usage: trading", self.refused("trading", "x"))
        self.assertIn("talks to the executor", self.refused("--run-dir", "/tmp", "flatten"))
        self.assertIn("talks to the executor", self.refused("--socket", "/tmp/s", "resume"))
        self.assertIn("--reason is for halt", self.refused("trading", "--reason", "why"))
        self.assertIn("--reason is for the trading commands", self.refused("status", "--reason", "x"))
        self.assertIn("--control is for the trading commands", self.refused("stop", "gateway", "--control", "x"))
        self.assertIn("--json is for the trading commands", self.refused("status", "--json"))

    def test_a_reason_longer_than_the_protocol_allows_is_refused_before_sending(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = ctl.main(["halt", "--control", "ipc:///nonexistent/x", "--reason", "x" * 1025])
        self.assertEqual(rc, ctl.EXIT_ERROR)
        self.assertIn("longer than 1024 bytes", err.getvalue())

    def test_a_bad_config_is_exit_1(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = ctl.main(["trading", "--config", "/nonexistent/deploy.toml"])
        self.assertEqual(rc, ctl.EXIT_ERROR)
        self.assertIn("cannot read the config file", err.getvalue())


class PrintedTest(unittest.TestCase):
    def test_the_reply_for_a_person(self):
        _, reply = tp_proto.decode(reply_payload(state=2, cause="flatten by tpctl:a@b", flatten_pending=True))
        text = ctl.format_trading(reply)
        self.assertRegex(text, r"^state: +REDUCING\ncause: +flatten by tpctl:a@b\n"
                               r"since: +2023-11-1[45] \d\d:\d\d:20\.000 \S+\nopen orders: +4\n"
                               r"flatten pending: +yes$")
        self.assertIn("since:           -", ctl.format_trading(dict(reply, since_ns=0)))

    def test_status_shows_the_executors_trading_state(self):
        stats = {"trading_state": "HALTED", "trading_state_cause": "halt by tpctl:a@b: test",
                 "trading_state_since_ns": 1_700_000_000_000_000_000, "flatten_pending": False,
                 "open_orders": 0, "fills": 3}
        trading = report.trading_status(stats)
        self.assertEqual(trading, {"state": "HALTED", "cause": "halt by tpctl:a@b: test",
                                   "since_ns": 1_700_000_000_000_000_000, "flatten_pending": False,
                                   "open_orders": 0})
        self.assertIsNone(report.trading_status({"fills": 3}))   # an executor without the kill switch
        self.assertIsNone(report.trading_status(None))
        text = ctl.format_status({"ok": True, "pid": 1, "run_dir": "/r", "trading": trading,
                                  "processes": [{"name": "executor", "state": "RUNNING", "pid": 7, "uptime_s": 1,
                                                 "restarts": 0, "last_exit": None}]})
        lines = text.splitlines()
        self.assertRegex(lines[2], r"^executor\s+RUNNING")
        self.assertRegex(lines[3], r"^trading: HALTED since 2023-11-1[45] .* \(halt by tpctl:a@b: test\), "
                                   r"open orders 0$")
        flattening = ctl.format_status({"ok": True, "processes": [],
                                        "trading": dict(trading, state="REDUCING", flatten_pending=True)})
        self.assertIn(", flatten pending", flattening)
        self.assertNotIn("trading:", ctl.format_status({"ok": True, "processes": []}))


class ExchangeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tpctl")
        self.addCleanup(self.tmp.cleanup)
        self.endpoint = f"ipc://{self.tmp.name}/control"

    def executor(self, payload, **kw):
        fake = FakeExecutor(kw.pop("bind", self.endpoint), payload, **kw)
        self.addCleanup(fake.close)
        return fake

    def test_a_lost_request_is_sent_again_on_a_new_socket(self):
        fake = self.executor(reply_payload(), drop=2)
        reply = ctl.control_request(self.endpoint, 2, "test", attempts=3, timeout_s=0.3)
        self.assertEqual((reply["ok"], reply["state"], reply["open_orders"]), (True, 3, 4))
        self.assertEqual(len(fake.received), 3)
        names = {name for name, _ in fake.received}
        self.assertEqual(names, {"control_request"})
        sent = [m for _, m in fake.received]
        self.assertTrue(all(m == sent[0] for m in sent), "the same request each time")
        self.assertEqual((sent[0]["command"], sent[0]["reason"]), (2, "test"))
        self.assertTrue(sent[0]["sent_by"].startswith("tpctl:"))
        self.assertLessEqual(abs(sent[0]["sent_ts_ns"] - time.time_ns()), 10_000_000_000)

    def test_no_answer_after_the_attempts(self):
        fake = self.executor(reply_payload(), drop=99)
        started = time.monotonic()
        with self.assertRaises(ctl.NoAnswer) as e:
            ctl.control_request(self.endpoint, 1, attempts=3, timeout_s=0.2)
        self.assertGreaterEqual(time.monotonic() - started, 0.55)  # 3 x 0.2 s, poll rounds to ms
        self.assertEqual(len(fake.received), 3)
        self.assertEqual(e.exception.why, "busy")   # connected: it may read the request later

    def test_nothing_there_is_unreachable(self):
        with self.assertRaises(ctl.NoAnswer) as e:
            ctl.control_request(self.endpoint, 1, attempts=2, timeout_s=0.1)
        self.assertEqual(e.exception.why, "unreachable")

    def run_main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = ctl.main(list(argv))
        return rc, out.getvalue(), err.getvalue()

    def test_exit_codes_applied_refused(self):
        self.executor(reply_payload(cause="halt by tpctl:a@b: x"))
        rc, out, err = self.run_main("halt", "--reason", "x", "--control", self.endpoint)
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("state:           HALTED", out)
        rc, out, _ = self.run_main("trading", "--json", "--control", self.endpoint)
        reply = json.loads(out)
        self.assertEqual((rc, reply["state"], reply["endpoint"]), (0, "HALTED", self.endpoint))

    def test_no_answer_is_exit_2_not_applied(self):
        self.executor(reply_payload(), drop=99)
        with unittest.mock.patch.object(ctl, "CONTROL_TIMEOUT_S", 0.1):
            rc, out, err = self.run_main("halt", "--control", self.endpoint)
        self.assertEqual((rc, out), (2, ""))
        self.assertIn(f"tpctl: not applied: the executor did not answer at {self.endpoint} (3 attempts of 0.1 s): "
                      "it is connected but did not answer; a busy executor may still apply it", err)

    def test_a_refusal_is_exit_1_with_its_detail(self):
        self.executor(reply_payload(ok=False, state=1, cause="", detail="not applied: the trading state could "
                                                                         "not be stored (see the executor's log)"))
        rc, out, err = self.run_main("halt", "--control", self.endpoint)
        self.assertEqual(rc, 1)
        self.assertIn("state:           ACTIVE", out)
        self.assertIn("tpctl: refused: not applied: the trading state could not be stored", err)

    def test_an_unreadable_answer_is_exit_1(self):
        self.executor(b"\x93\x01\x02\x03")
        rc, _, err = self.run_main("resume", "--control", self.endpoint)
        self.assertEqual(rc, 1)
        self.assertIn("answered something unreadable", err)

    def test_over_curve(self):
        server_pub, server_sec = zmq.curve_keypair()
        client_pub, client_sec = zmq.curve_keypair()
        endpoint = self.executor(reply_payload(), bind="tcp://127.0.0.1:*", server_secret=server_sec).endpoint
        keys = (server_pub.decode(), client_pub.decode(), client_sec.decode())
        reply = ctl.control_request(endpoint, 1, keys=keys, attempts=1, timeout_s=2.0)
        self.assertTrue(reply and reply["ok"])
        # Without keys, or with a stranger's server key, the handshake never
        # completes: nothing reached the executor.
        for wrong in (None, (client_pub.decode(), client_pub.decode(), client_sec.decode())):
            with self.assertRaises(ctl.NoAnswer) as e:
                ctl.control_request(endpoint, 1, keys=wrong, attempts=1, timeout_s=0.3)
            self.assertEqual(e.exception.why, "refused", wrong)


if __name__ == "__main__":
    unittest.main()
