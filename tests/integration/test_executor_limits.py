"""The executor on an operator's bad day: its database on a filesystem that
fills up while signals flow, then space freed; and a descriptor limit of 64
with a flood of 200 connections. Real programs (dead_letter, dll_gateway,
gateway, executor) on ipc:// endpoints; the test plays one strategy instance
that resends every unacked signal, as the real one does. Needs root for the
tmpfs (skipped otherwise)."""

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest
import uuid

import zmq

import pipeline as pl
import tp_proto
from ports import tcp_endpoints

SKIP = pl.missing_binaries()


def now_ns():
    return time.time_ns()


class Strategy:
    """PUSHes signals and resends each until its ack comes (ACK.sim.0)."""

    def __init__(self, ctx, dep):
        self.push = ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(dep.endpoints["signals"])
        self.sub = ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"ACK.sim.0")
        self.sub.connect(dep.endpoints["order_events"])
        self.pending = {}   # id -> payload
        self.acks = {}      # id -> first ack status
        self.n = 0
        self.run_id = uuid.uuid4().hex[:8]

    def emit(self, ttl_s=120):
        self.n += 1
        sid = f"sim.0.{self.run_id}.{self.n}"
        t = now_ns()
        self.pending[sid] = tp_proto.encode("signal", dict(
            signal_id=sid, strategy="sim", instance=0, instrument="EURUSD", action=1 + self.n % 2,
            quantity=1000.0, trigger_price=1.085, confidence=0.5, created_ts_ns=t,
            expires_ts_ns=t + ttl_s * 1_000_000_000, causation_seq=self.n, causation_ts_ns=t))
        self.push.send(self.pending[sid], zmq.NOBLOCK)
        return sid

    def resend(self):
        for payload in self.pending.values():
            try:
                self.push.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                break

    def read_acks(self, timeout_ms=100):
        while self.sub.poll(timeout_ms):
            _topic, payload = self.sub.recv_multipart()
            _name, ack = tp_proto.decode(payload)
            sid = ack["signal_id"]
            if sid in self.pending:
                self.acks.setdefault(sid, tp_proto.ACK_STATUSES[ack["status"]])
                del self.pending[sid]
            timeout_ms = 0

    def until_all_acked(self, timeout=30.0):
        def done():
            self.read_acks()
            if self.pending:
                self.resend()
            return not self.pending
        pl.wait_for(done, timeout=timeout, interval=0.2, what=f"acks for {len(self.pending)} signals")

    def close(self):
        self.push.close()
        self.sub.close()


@unittest.skipIf(SKIP, f"binaries missing: {SKIP}")
class ExecutorLimits(unittest.TestCase):
    def setUp(self):
        self.dep = pl.Deployment(extra_toml='[gateway]\nrate = 200\n\n[dll_gateway.settings]\n'
                                            'journal_path = "${run.dir}/sim_broker.journal"\n')
        # Late-bound: a test may replace self.dep, and the deployment it ends
        # with is the one whose processes must go.
        self.addCleanup(lambda: self.dep.close())
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, 0)

    def start_pipeline(self, *executor_args, max_open_files=None):
        for name in ("dead_letter", "dll_gateway", "gateway"):
            self.dep.start(name)
        self.executor = self.dep.start("executor", *executor_args, max_open_files=max_open_files)
        pl.wait_for(lambda: self.dep.stat("executor", "position_check", "pending") != "pending",
                    what="the executor's start-up position check")
        # The sim broker fills only once it has a quote.
        pl.wait_for(lambda: self.dep.stat("dll_gateway", "ticks_received") > 0, what="quotes at dll_gateway")
        self.strategy = Strategy(self.ctx, self.dep)
        self.addCleanup(self.strategy.close)

    def test_a_full_disk_under_the_executor_db_loses_and_doubles_nothing(self):
        mnt = tempfile.mkdtemp(prefix="tp-exdisk-")
        self.addCleanup(shutil.rmtree, mnt, ignore_errors=True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).returncode != 0:
            self.skipTest("cannot mount a tmpfs (root needed)")
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        db = os.path.join(mnt, "executor.db")
        self.start_pipeline("--set", f'executor.db_path="{db}"')
        s = self.strategy
        pid = self.executor.pid

        for _ in range(20):
            s.emit()
        s.until_all_acked()

        filler = os.path.join(mnt, "filler")
        # Unbuffered: a write cut short by ENOSPC leaves nothing for close()
        # to flush (a buffered file raised ENOSPC again at the end of `with`).
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        during = [s.emit() for _ in range(30)]

        def alert():
            s.read_acks()
            s.resend()
            return "cannot write" in (self.dep.stat("executor", "alert", "") or "")
        pl.wait_for(alert, timeout=20, interval=0.2, what="the executor's disk alert")
        self.assertIsNone(self.executor.poll(), "the executor must stay up on a full disk")
        self.assertEqual(self.executor.pid, pid)
        stats = self.dep.stats("executor")
        self.assertIn(db, stats["files_failing"])
        self.assertIn("No space left on device", stats["files_failing"][db])
        self.assertGreater(stats["write_failures"], 0)
        unacked_while_full = [sid for sid in during if sid in s.pending]
        self.assertTrue(unacked_while_full, "some signals must wait for the disk")

        os.remove(filler)
        s.until_all_acked(timeout=30)
        pl.wait_for(lambda: not self.dep.stat("executor", "alert", ""), what="the alert to clear")
        pl.wait_for(lambda: self.dep.stat("executor", "orders_intent", 1) == 0
                    and self.dep.stat("executor", "orders_unknown", 1) == 0, what="orders settled")
        self.assertEqual(self.dep.stop("executor"), 0)
        self.assertIn("No space left on device", self.dep.log("executor"))
        self.assertIn(db, self.dep.log("executor"))

        con = sqlite3.connect(db)
        try:
            signals = [r[0] for r in con.execute("SELECT signal_id FROM signals")]
            orders = [r[0] for r in con.execute("SELECT signal_id FROM orders")]
        finally:
            con.close()
        ids = set(s.acks)
        self.assertEqual(len(ids), 50)
        self.assertEqual(sorted(signals), sorted(ids), "every acked signal recorded exactly once")
        self.assertEqual(sorted(orders), sorted(ids), "one order per signal")
        # DUPLICATE is an ack too: the ACCEPTED one was missed (a SUB joins
        # late) and a resend found the signal recorded.
        self.assertLessEqual(set(s.acks.values()), {"ACCEPTED", "DUPLICATE"}, s.acks)
        with open(os.path.join(self.dep.run_dir, "sim_broker.journal")) as f:
            broker_ids = [line.split()[2] for line in f if line.split()[1:2] == ["ORDER"]]
        self.assertEqual(len(broker_ids), len(set(broker_ids)), "no client order id twice at the broker")
        self.assertLessEqual(set(broker_ids), {"C-" + i for i in ids})

    def test_a_flood_of_connections_past_the_descriptor_limit_costs_only_those_connections_tcp(self):
        self.dep.close()
        # Below the ephemeral range: a port picked there and let go may be
        # taken by another test's outgoing connection before a program binds it.
        self.dep = pl.Deployment(endpoints=tcp_endpoints())
        self.flood_past_the_descriptor_limit()

    def test_a_flood_of_connections_past_the_descriptor_limit_costs_only_those_connections_ipc(self):
        # libzmq 4.3.4's ipc listener would abort on EMFILE without
        # common/src/accept_guard.cpp.
        self.flood_past_the_descriptor_limit()

    def flood_past_the_descriptor_limit(self):
        self.start_pipeline(max_open_files=64)
        s = self.strategy
        s.emit()
        s.until_all_acked()
        flood = []
        for _ in range(200):
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.dep.endpoints["signals"])
            flood.append(sock)
        # Out of descriptors, it still serves the strategy already connected.
        pl.wait_for(lambda: "Too many open files" in self.dep.log("executor"), what="the executor hitting its limit")
        s.emit()
        s.until_all_acked()
        self.assertIsNone(self.executor.poll(), "the executor must survive running out of descriptors")
        for sock in flood:
            sock.close()
        # Once the flood is gone its stats are written again, with the count.
        pl.wait_for(lambda: self.dep.stat("executor", "accept_failed") > 0, what="accept failures counted")
        s.emit()
        s.until_all_acked()
        self.assertLessEqual(set(s.acks.values()), {"ACCEPTED", "DUPLICATE"})
        self.assertLessEqual(self.dep.stat("executor", "open_files"), 64)
        self.assertEqual(self.dep.stop("executor"), 0)


if __name__ == "__main__":
    unittest.main()
