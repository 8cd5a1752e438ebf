"""CURVE on every tcp link: the whole pipeline over loopback tcp with keys
from tp_keygen and a ZAP allowlist. An allowlisted client is served; a
stranger's key, a plain client and a client expecting another server key get
nothing; secrets never reach a log; a loose secret key file stops a program."""

import os
import subprocess
import unittest

import zmq
from zmq.utils.monitor import recv_monitor_message

import pipeline
import ports
import tp_proto


HANDSHAKE_ENDS_NAMES = {
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "ok",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "refused by the server's allowlist",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol error",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "failed",
    zmq.EVENT_DISCONNECTED: "closed before a handshake",
}
HANDSHAKE_ENDS = sum(HANDSHAKE_ENDS_NAMES)


def read_key(path):
    with open(path) as f:
        return next(line.strip() for line in f if line.strip() and not line.startswith("#"))


def first_handshake_end(monitor, timeout_ms=10000):
    """How this client's first handshake ended, seen from the client: "ok",
    or the event that ended it (a refusal by ZAP, a protocol error, or the
    server closing the connection on a HELLO it could not open)."""
    while monitor.poll(timeout_ms):
        event = recv_monitor_message(monitor)["event"]
        if event in HANDSHAKE_ENDS_NAMES:
            return HANDSHAKE_ENDS_NAMES[event]
    return "no end seen"


class CurvePipeline(unittest.TestCase):
    def setUp(self):
        missing = pipeline.missing_binaries()
        self.assertFalse(missing, f"programs not built in TP_BIN_DIR={pipeline.BIN_DIR!r}: {missing}")
        self.endpoints = ports.tcp_endpoints()
        # Keys first: the deployment's [security] section names their files.
        self.d = pipeline.Deployment(endpoints=self.endpoints)
        self.addCleanup(self.d.close)
        k = self.keys = os.path.join(self.d.dir, "keys")
        subprocess.run([os.path.join(pipeline.BIN_DIR, "tp_keygen"), "--out", k,
                        "server", "client", "stranger"], check=True, capture_output=True, timeout=30)
        with open(os.path.join(k, "authorized"), "w") as f:
            f.write(read_key(os.path.join(k, "client.key")) + "\n")
        with open(self.d.config, "a") as f:
            f.write(f"""
[gateway]
rate = 1000

[strategy]
instances = 1

[strategy.sma_crossover]
fast = 2
slow = 5

[security]
curve = true
server_public_key = "{k}/server.key"
server_secret_key = "{k}/server.key_secret"
client_public_key = "{k}/client.key"
client_secret_key = "{k}/client.key_secret"
authorized_clients = "{k}/authorized"
""")
        self.ctx = zmq.Context()
        self.addCleanup(lambda: self.ctx.destroy(linger=0))

    def subscriber(self, public=None, secret=None, server=None):
        """A SUB to the ticks and the monitor of its connection, attached
        before the connect so that its first handshake is seen."""
        s = self.ctx.socket(zmq.SUB)
        if public:
            s.curve_publickey = public.encode()
            s.curve_secretkey = secret.encode()
            s.curve_serverkey = server.encode()
        s.setsockopt(zmq.SUBSCRIBE, b"TICK.")
        monitor = s.get_monitor_socket(HANDSHAKE_ENDS)
        self.addCleanup(monitor.close, 0)
        s.connect(self.endpoints["ticks"])
        return s, monitor

    def test_encrypted_pipeline_serves_only_allowlisted_clients(self):
        d = self.d
        for name in ("dead_letter", "dll_gateway", "executor"):
            d.start(name)
        d.start("strategy:0", "--shard", "0", "--shards", "1")
        d.start("gateway")
        pipeline.wait_for(lambda: d.stat("executor", "fills") >= 5, timeout=40,
                          what="fills over CURVE links")

        k = lambda name: read_key(os.path.join(self.keys, name))  # noqa: E731
        server = k("server.key")
        allowed, allowed_monitor = self.subscriber(k("client.key"), k("client.key_secret"), server)
        self.assertEqual(first_handshake_end(allowed_monitor), "ok")
        self.assertTrue(allowed.poll(10000), "the allowlisted client got no tick")
        name, tick = tp_proto.decode(allowed.recv_multipart()[1])
        self.assertEqual(name, "tick")

        # Each other client, one at a time, is refused at the handshake: its
        # own first handshake ends without success (a proof, where a quiet
        # socket would only be a timeout; the allowlisted one's ended "ok"),
        # the gateway counts a failure, and that client never gets a tick.
        refused = []
        for who, keys in (("stranger", (k("stranger.key"), k("stranger.key_secret"), server)),
                          ("plain", ()),
                          ("wrong server key", (k("client.key"), k("client.key_secret"), k("stranger.key")))):
            before = d.stat("gateway", "handshakes_failed")
            s, monitor = self.subscriber(*keys)
            end = first_handshake_end(monitor)
            self.assertNotIn(end, ("ok", "no end seen"), f"the {who} client's handshake")
            pipeline.wait_for(lambda: d.stat("gateway", "handshakes_failed") > before, timeout=10,
                              what=f"the gateway to refuse the {who} client")
            refused.append((who, s))
        # Ticks go on being published after the last refusal: none reaches them.
        published = d.stat("gateway", "ticks_published")
        pipeline.wait_for(lambda: d.stat("gateway", "ticks_published") >= published + 500, timeout=10,
                          what="500 more ticks published")
        self.assertTrue(allowed.poll(10000), "the allowlisted client stopped getting ticks")
        for who, s in refused:
            self.assertFalse(s.poll(0), f"the {who} client received ticks")

        for name in ("gateway", "strategy:0", "executor", "dll_gateway", "dead_letter"):
            self.assertEqual(d.stop(name), 0, name)
        secrets = [k(f"{n}.key_secret") for n in ("server", "client", "stranger")]
        for name in ("gateway", "strategy:0", "executor", "dll_gateway", "dead_letter"):
            log = d.log(name)
            for secret in secrets:
                self.assertNotIn(secret, log, f"a secret key appears in the {name} log")

    def test_loose_secret_key_file_stops_a_program_with_one_clear_line(self):
        os.chmod(os.path.join(self.keys, "server.key_secret"), 0o644)
        out = subprocess.run([os.path.join(pipeline.BIN_DIR, "dead_letter"), "--config", self.d.config],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("security.server_secret_key", out.stderr)
        self.assertIn("server.key_secret", out.stderr)
        self.assertNotIn("terminate called", out.stderr)


if __name__ == "__main__":
    unittest.main()
