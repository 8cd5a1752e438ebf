"""A Python strategy group end to end with the real C++ programs (gateway,
executor, dll_gateway with the simulated broker, dead_letter), as plain
processes on ipc:// endpoints: `python3 -m tp_strategy` runs
strategies:EveryNth as py-0 and py-1 (a signal every 10th tick of an
instrument). Its signals are journaled in the C++ format, acked and filled;
py-0 is killed with SIGKILL mid-stream and started again (new boot, pending
signals resent with their ids); bad input is dead-lettered with the group's
source; then the books are reconciled from the files with the chaos test's
reconciliation: every journaled signal has exactly one outcome, 0 lost, 0
doubled at the broker. The shards' positions (POS.py reports + fills) equal
the executor's book of the group. Also: the Python strategy over CURVE, and
a Python and a C++ strategy started on a journal at its compaction bound,
within the memory budget."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "chaos"))
sys.path.insert(0, os.path.join(REPO, "strategy", "python"))

import chaoslib as cl  # noqa: E402
import ports  # noqa: E402  (tests/support, on sys.path through chaoslib)
import tp_proto  # noqa: E402  (scripts/, on sys.path through chaoslib)
import zmq  # noqa: E402


def group_toml(name, kind, instances, params=None, **keys):
    """A [[strategy.groups]] entry: its keys, then its params."""
    lines = ["", "[[strategy.groups]]", f'name = "{name}"', f'kind = "{kind}"', f"instances = {instances}"]
    lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()]
    if params:
        lines += ["[strategy.groups.params]"] + [f"{k} = {v}" for k, v in params.items()]
    return "\n".join(lines) + "\n"


GROUP = "py"
EXTRA = group_toml(GROUP, "python", 2, {"n": 10}, entry="strategies:EveryNth", python_path=HERE, quantity=100)
MISSING = [p for p in ("gateway", "executor", "dll_gateway", "dead_letter")
           if not os.access(os.path.join(cl.BIN_DIR, p), os.X_OK)]


@unittest.skipIf(MISSING, f"SKIPPED: real binaries missing in TP_BIN_DIR={cl.BIN_DIR!r}: {MISSING}")
class PythonStrategyPipeline(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_pys_")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir)
        self.config = os.path.join(self.dir, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(cl.config_text(self.dir, self.run_dir, rate=1000, every_nth=10, instances=1,
                                   broker_latency_ms=5, signal_ttl_ms=5000, extra=EXTRA))
        self.p = cl.Processes(self.dir, self.config)
        self.addCleanup(self.p.close)
        self.py = {}
        self.addCleanup(self.kill_py)
        self.ep = {k: f"ipc://{self.dir}/{k}.ipc" for k in ("ticks", "signals", "order_events", "dead_letters")}

    def start_py(self, k):
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "strategy", "python"), PYTHONDONTWRITEBYTECODE="1")
        log = open(os.path.join(self.dir, "logs", f"{GROUP}-{k}.log"), "ab")
        proc = subprocess.Popen([sys.executable, "-m", "tp_strategy", "--config", self.config, "--group", GROUP,
                                 "--shard", str(k), "--shards", "2"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        self.py[k] = proc
        return proc

    def kill_py(self):
        for proc in self.py.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def log(self, k):
        with open(os.path.join(self.dir, "logs", f"{GROUP}-{k}.log"), errors="replace") as f:
            return f.read()

    def stats(self, name, pid=None):
        return cl.stats(self.run_dir, name, pid)

    def stat(self, name, key, pid=None):
        s = self.stats(name, pid)
        return s.get(key, 0) if s else 0

    def test_signals_acked_filled_and_reconciled_after_kill_9(self):
        for name in ("dead_letter", "dll_gateway", "executor"):
            self.p.start(name)
        for k in (0, 1):
            self.start_py(k)
        for name in ("dead_letter", "dll_gateway", "executor", "py-0", "py-1"):
            cl.wait_for(lambda: self.stats(name), timeout=20, what=f"{name} to start")
        self.p.start("gateway")

        # The two shards split the instruments as the C++ sharding does.
        shards = [set(filter(None, self.stats(f"py-{k}")["instruments"].split(","))) for k in (0, 1)]
        self.assertFalse(shards[0] & shards[1])
        self.assertEqual(shards[0] | shards[1], {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"})

        first = self.py[0].pid
        cl.wait_for(lambda: self.stat("py-0", "signals_acked", first) >= 20, timeout=40,
                    what="py-0: 20 signals acked", detail=lambda: f"{self.stats('py-0')}\n{self.log(0)[-2000:]}")
        # Mid-stream: the process dies between any two instructions.
        self.py[0].send_signal(signal.SIGKILL)
        self.py[0].wait(10)
        second = self.start_py(0).pid
        cl.wait_for(lambda: self.stat("py-0", "signals_acked", second) >= 20, timeout=40,
                    what="the restarted py-0: 20 signals acked", detail=lambda: self.log(0)[-2000:])

        # Boots: one B record per start, the second after the first; ids carry them.
        with open(os.path.join(self.run_dir, "py-0.journal")) as f:
            boots = [int(line.split()[1]) for line in f if line.startswith("B ")]
        self.assertEqual(len(boots), 2, boots)
        self.assertLess(boots[0], boots[1])

        # The feed stops; everything in flight settles.
        self.assertEqual(self.p.stop("gateway"), 0)
        since = time.time_ns()
        pids = {"py-0": second, "py-1": self.py[1].pid}
        cl.wait_for(lambda: cl.settled(self.run_dir, pids, self.p.procs["executor"].pid, since), timeout=40,
                    what="signals to settle", detail=lambda: f"{self.stats('py-0')}\n{self.stats('py-1')}")

        for k in (0, 1):
            s = self.stats(f"py-{k}")
            self.assertGreater(s["ticks_received"], 0)
            self.assertGreater(s["signals_emitted"], 0)
            self.assertGreater(s["order_updates"], 0, f"py-{k} heard no order event of its signals")
            self.assertEqual(s["signals_given_up"], 0)
            self.assertEqual((s["program"], s["pid"]), (f"py-{k}", pids[f"py-{k}"]))
        self.assertGreater(self.stat("executor", "orders_filled") or len(cl.read_broker_orders(self.run_dir)), 0)

        # Each shard's positions (the executor's POS.py reports plus fills
        # after them) equal the executor's book of the group, per instrument.
        def positions_agree():
            ex = (self.stats("executor") or {}).get("groups", {}).get(GROUP, {}).get("positions")
            if not ex:
                return False
            mine = {}
            for k in (0, 1):
                s = self.stats(f"py-{k}") or {}
                if s.get("position_reports", 0) == 0:
                    return False
                mine.update(s.get("positions", {}))
            return all(abs(mine.get(sym, 0.0) - q) < 1e-9 for sym, q in ex.items()) and (ex, mine)
        cl.wait_for(positions_agree, timeout=10, what="python positions equal to the executor's",
                               detail=lambda: f"{(self.stats('executor') or {}).get('groups')}\n"
                                              f"{[(self.stats(f'py-{k}') or {}).get('positions') for k in (0, 1)]}")

        self.bad_input_is_dead_lettered(shards)

        for k in (0, 1):
            self.py[k].send_signal(signal.SIGTERM)
            self.assertEqual(self.py[k].wait(15), 0, self.log(k)[-2000:])
        for name in ("executor", "dll_gateway", "dead_letter"):
            self.assertEqual(self.p.stop(name), 0, name)

        books = cl.reconcile(self.run_dir)
        print("\n" + cl.figures_table("python strategy: kill -9 and restart", books), file=sys.stderr)
        cl.assert_books_balance(self, books, "python strategy books")
        self.assertEqual(set(books["journals"]), {"py-0.journal", "py-1.journal"})
        self.assertGreater(books["executed"], 40)
        signals, _, _, _ = cl.read_journal_signals(self.run_dir)
        for sid in signals:
            self.assertRegex(sid, r"^py\.[01]\.\d+\.\d+$")

    def bad_input_is_dead_lettered(self, shards):
        """With the gateway stopped, the test binds the tick endpoint itself:
        garbage is dead-lettered with source py:<k>, a tick whose topic only
        starts with ours is counted and ignored, a stale one refused, an
        oversized frame's dropped connection dialled again, and the strategy
        still reads good ticks."""
        ctx = zmq.Context()
        self.addCleanup(ctx.destroy, 0)
        pub = ctx.socket(zmq.PUB)
        pub.bind(self.ep["ticks"])
        owner = 0 if "EURUSD" in shards[0] else 1
        name = f"py-{owner}"
        seq = [10_000_000]

        def tick(topic=b"TICK.EURUSD", ts=None, instrument="EURUSD"):
            seq[0] += 1
            now = time.time_ns() if ts is None else ts
            return [topic, tp_proto.encode("tick", dict(instrument=instrument, bid=1.1, ask=1.1001, bid_volume=1,
                                                        ask_volume=1, source_ts_ns=now, seq=seq[0],
                                                        gateway_ts_ns=now))]

        def letters(reason):
            book = cl.read_dead_letter_book(self.run_dir)
            return book.sources.get(f"{GROUP}:{owner}", 0) and book.reasons.get(reason, 0)

        def garbage():
            pub.send_multipart([b"TICK.EURUSD", b"\x93\x01\x01\xc1"])
            return letters("missing_field") or letters("malformed")
        cl.wait_for(garbage, interval=0.1, timeout=20, what="a dead letter from the python strategy")
        wrong = self.stat(name, "wrong_topic")
        cl.wait_for(lambda: pub.send_multipart(tick(b"TICK.EURUSDX", instrument="EURUSDX")) or
                    self.stat(name, "wrong_topic") > wrong, interval=0.1, timeout=10, what="wrong_topic counted")
        cl.wait_for(lambda: pub.send_multipart(tick(ts=time.time_ns() - 60 * 10**9)) or letters("stale"),
                    interval=0.1, timeout=10, what="a stale tick refused")
        # A frame above ZMQ_MAXMSGSIZE: ZeroMQ drops the connection itself
        # (no recv, no dead letter); the runtime counts it and dials again.
        cl.wait_for(lambda: pub.send_multipart([b"TICK.EURUSD", b"x" * 70_000]) or
                    (self.stat(name, "connections_dropped") > 0 and self.stat(name, "redials") > 0),
                    interval=0.2, timeout=10, what="an oversized frame's dropped connection redialled")
        received = self.stat(name, "ticks_received")
        cl.wait_for(lambda: pub.send_multipart(tick()) or self.stat(name, "ticks_received") > received,
                    interval=0.1, timeout=10, what="good ticks read again")
        pub.close(0)


if __name__ == "__main__":
    unittest.main()


KEYGEN = os.path.join(cl.BIN_DIR, "tp_keygen")


@unittest.skipIf(MISSING or not os.access(KEYGEN, os.X_OK),
                 f"SKIPPED: real binaries or tp_keygen missing in TP_BIN_DIR={cl.BIN_DIR!r}")
class PythonStrategyCurve(unittest.TestCase):
    """The Python strategy on a CURVE deployment (tcp, keys from tp_keygen, a
    ZAP allowlist): it connects with the client keys of [security], trades,
    and refuses to start with a secret key file others may read."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_pyc_")
        self.addCleanup(self.tmp.cleanup)
        d = self.dir = self.tmp.name
        self.run_dir = os.path.join(d, "run")
        os.makedirs(self.run_dir)
        k = os.path.join(d, "keys")
        subprocess.run([KEYGEN, "--out", k, "server", "client"], check=True, capture_output=True, timeout=30)
        with open(os.path.join(k, "client.key")) as f:
            client = next(line.strip() for line in f if line.strip() and not line.startswith("#"))
        with open(os.path.join(k, "authorized"), "w") as f:
            f.write(client + "\n")
        ep = ports.tcp_endpoints()
        self.config = os.path.join(d, "deploy.toml")
        with open(self.config, "w") as f:
            f.write("\n".join([
                "[run]", f'dir = "{self.run_dir}"', "stats_interval_ms = 100",
                "[endpoints]", *(f'{n} = "{v}"' for n, v in ep.items()),
                "[gateway]", "rate = 1000", "heartbeat_ms = 200",
                "[security]", "curve = true", f'server_public_key = "{k}/server.key"',
                f'server_secret_key = "{k}/server.key_secret"', f'client_public_key = "{k}/client.key"',
                f'client_secret_key = "{k}/client.key_secret"', f'authorized_clients = "{k}/authorized"',
                '[dll_gateway.settings]', f'journal_path = "{d}/sim_broker.journal"', EXTRA.replace(
                    "instances = 2", "instances = 1"), ""]))
        self.keys = k
        self.p = cl.Processes(d, self.config)
        self.addCleanup(self.p.close)
        self.py = None
        self.addCleanup(lambda: self.py and self.py.poll() is None and (self.py.kill(), self.py.wait(10)))

    def start_py(self, *extra):
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "strategy", "python"), PYTHONDONTWRITEBYTECODE="1")
        self.log_path = os.path.join(self.dir, "logs", "py-0.log")
        with open(self.log_path, "ab") as log:
            self.py = subprocess.Popen([sys.executable, "-m", "tp_strategy", "--config", self.config, *extra,
                                        "--group", GROUP, "--shard", "0", "--shards", "1"], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        return self.py

    def test_trades_over_curve_and_refuses_a_loose_secret_key(self):
        for name in ("dead_letter", "dll_gateway", "executor"):
            self.p.start(name)
        self.start_py()
        for name in ("dead_letter", "dll_gateway", "executor", "py-0"):
            log = (lambda: open(self.log_path).read()[-2000:]) if name == "py-0" else (lambda: self.p.log(name))
            cl.wait_for(lambda: cl.stats(self.run_dir, name), timeout=20, what=f"{name} to start", detail=log)
        self.p.start("gateway")
        pid = self.py.pid
        cl.wait_for(lambda: (cl.stats(self.run_dir, "py-0", pid) or {}).get("signals_acked", 0) >= 10, timeout=30,
                    what="10 signals acked over CURVE", detail=lambda: open(self.log_path).read()[-2000:])
        self.py.send_signal(signal.SIGTERM)
        self.assertEqual(self.py.wait(15), 0)
        self.assertGreater(len(cl.read_broker_orders(self.run_dir)), 0)

        loose = os.path.join(self.keys, "loose.key_secret")
        with open(os.path.join(self.keys, "client.key_secret")) as src, open(loose, "w") as dst:
            dst.write(src.read())
        os.chmod(loose, 0o644)
        self.start_py("--set", f'security.client_secret_key="{loose}"')
        self.assertEqual(self.py.wait(20), 1)
        with open(self.log_path) as f:
            self.assertIn("readable by group or others", f.read())


EXTRA_CPP = group_toml("strategy", "every_nth", 2)
# Strategies that take 5 ms a tick: Python (strategies:Slow) and C++
# (tests/strategy's plugin with `sleep_us`, emitting nothing at every = 10^9).
EXTRA_SLOW = group_toml("slow", "python", 1, {"ms": 5}, entry="strategies:Slow", python_path=HERE)
PLUGIN = os.environ.get("TP_TEST_PLUGIN", "")
EXTRA_SLOW_CPP = group_toml("slowcpp", "plugin", 1, {"every": 10**9, "sleep_us": 5000},
                            plugin=PLUGIN) if PLUGIN else ""


def write_day_journal(path, group, size_bytes):
    """A journal of `group`'s shard 0 as a trading day leaves it: signals
    up to `size_bytes`, every one acked but one in fifty, still pending.
    Returns (signals, pending)."""
    from tp_strategy import wire
    pending, size, n = 0, 0, 0
    with open(path, "wb") as f:
        f.write(b"B 1000\n")
        while size < size_bytes:
            n += 1
            sid = f"{group}.0.1000.{n}"
            record = b"S " + wire.encode_signal(sid, group, 0, "EURUSD", 1, 100, 1.1, 1, 1, 2 * 10**18, n,
                                                0).hex().encode() + b"\n"
            if n % 50:
                record += b"A " + sid.encode() + b"\n"
            else:
                pending += 1
            f.write(record)
            size += len(record)
    return n, pending


@unittest.skipIf(MISSING + [p for p in ("strategy",) if not os.access(os.path.join(cl.BIN_DIR, p), os.X_OK)],
                 f"SKIPPED: real binaries missing in TP_BIN_DIR={cl.BIN_DIR!r}")
class StrategyMemory(unittest.TestCase):
    """The README's peak RSS <= 30 MB for every program holds for a strategy
    started on a journal at its compaction bound (4 MiB, some 20,000
    signals): a restart late in a trading day, or a journal adopted after a
    scale-down (read whole and decoded signal by signal, such a journal took
    a Python strategy to 55 MB); and for a Python or a C++ strategy that
    falls behind its feed (each tick queued for it cost ~8.5 KB, and 30,000
    of them could wait)."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tp_sjm_")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(os.path.join(self.dir, "logs"))
        os.makedirs(self.run_dir)
        # The Python groups beside the default C++ one ("strategy", every_nth).
        self.config = os.path.join(self.dir, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(cl.config_text(self.dir, self.run_dir, extra=EXTRA + EXTRA_CPP + EXTRA_SLOW + EXTRA_SLOW_CPP))

    def peak_rss_when(self, name, command, ready, what):
        """Starts `command` (instance `name`), waits until its stats satisfy
        `ready`, and returns (its VmHWM then, those stats)."""
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "strategy", "python"), PYTHONDONTWRITEBYTECODE="1")
        log_path = os.path.join(self.dir, "logs", f"{name}.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
        try:
            cl.wait_for(lambda: ready(cl.stats(self.run_dir, name, proc.pid) or {}), timeout=30, what=what,
                        detail=lambda: open(log_path, errors="replace").read()[-2000:])
            with open(f"/proc/{proc.pid}/status") as f:
                peak_kb = int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
            return peak_kb, cl.stats(self.run_dir, name, proc.pid)
        finally:
            proc.kill()
            proc.wait(10)

    def peak_rss_kb(self, name, command):
        """`command` (instance `name`) started on a journal at its compaction
        bound: its VmHWM once it is up, and the journal's signals."""
        from tp_strategy.journal import DEFAULT_COMPACT_BYTES
        signals, pending = write_day_journal(os.path.join(self.run_dir, f"{name}.journal"), name.split("-")[0],
                                             DEFAULT_COMPACT_BYTES - 1024)
        peak_kb, stats = self.peak_rss_when(name, command, bool, f"{name} to start")
        self.assertEqual(stats["signals_pending"], pending)
        return peak_kb, signals

    def test_a_python_strategy(self):
        peak_kb, signals = self.peak_rss_kb(f"{GROUP}-0", [sys.executable, "-m", "tp_strategy", "--config",
                                                           self.config, "--group", GROUP, "--shard", "0",
                                                           "--shards", "2"])
        self.assertLessEqual(peak_kb, 30 * 1024, f"peak RSS {peak_kb / 1024:.1f} MB after reading {signals} signals")

    def test_a_cpp_strategy(self):
        peak_kb, signals = self.peak_rss_kb("strategy-0", [os.path.join(cl.BIN_DIR, "strategy"), "--config",
                                                           self.config, "--group", "strategy", "--shard", "0",
                                                           "--shards", "2"])
        self.assertLessEqual(peak_kb, 30 * 1024, f"peak RSS {peak_kb / 1024:.1f} MB after reading {signals} signals")

    def peak_rss_behind_feed_kb(self, name, command):
        """Starts the gateway (1,000 ticks/s) and `command`, a strategy that
        takes 5 ms a tick; once it has handled 600 ticks (3 s behind: ~800
        ticks more every second), returns its VmHWM and stats."""
        processes = cl.Processes(self.dir, self.config)
        self.addCleanup(processes.close)
        processes.start("gateway")
        peak_kb, stats = self.peak_rss_when(name, command, lambda st: st.get("ticks_received", 0) >= 600,
                                            f"{name} to handle 600 ticks (3 s behind its feed)")
        # It really was behind: the feed sent far more than it handled.
        self.assertGreater(cl.stats(self.run_dir, "gateway")["ticks_published"], 2 * stats["ticks_received"], stats)
        return peak_kb, stats

    def test_a_python_strategy_behind_its_feed(self):
        peak_kb, stats = self.peak_rss_behind_feed_kb("slow-0", [sys.executable, "-m", "tp_strategy", "--config",
                                                                 self.config, "--group", "slow", "--shard", "0",
                                                                 "--shards", "1"])
        self.assertLessEqual(peak_kb, 30 * 1024, f"peak RSS {peak_kb / 1024:.1f} MB, {stats}")

    @unittest.skipUnless(PLUGIN, "TP_TEST_PLUGIN (tests/strategy's good plugin) not set")
    def test_a_cpp_strategy_behind_its_feed(self):
        peak_kb, stats = self.peak_rss_behind_feed_kb("slowcpp-0", [os.path.join(cl.BIN_DIR, "strategy"), "--config",
                                                                    self.config, "--group", "slowcpp", "--shard", "0",
                                                                    "--shards", "1"])
        self.assertLessEqual(peak_kb, 30 * 1024, f"peak RSS {peak_kb / 1024:.1f} MB, {stats}")
