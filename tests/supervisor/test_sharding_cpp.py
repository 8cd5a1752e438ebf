"""The supervisor's sharding (scripts/tp_supervisor/sharding.py) against the
C++ one (tp::instruments_for_shard, common/src/sharding.cpp) as the real
strategy binary applies it: each instance k of n logs at start-up
"k of n (...) trading [SYM,...]"; that list must be the Python one, for
symbols beyond the default four. Skipped when the binaries are not built."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from tp_supervisor import sharding  # noqa: E402
from waiting import wait_for  # noqa: E402

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
STRATEGY = os.path.join(BIN_DIR, "strategy")
MISSING = not (BIN_DIR and os.access(STRATEGY, os.X_OK))
SKIP_WHY = f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: strategy" if MISSING else ""
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD", "XAUUSD",
           "US500", "BTCUSD", "EURUSDX"]
WAIT_S = 20.0
# "K of N (kind) trading [...]", or "K of N of group G (kind) trading [...]".
LINE = re.compile(r"(\d+) of (\d+) (?:of group \S+ )?\([^)]*\) trading \[([^\]]*)\]")


@unittest.skipIf(MISSING, SKIP_WHY)
class ShardingAgreesWithCpp(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// endpoints have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="svsh", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        ep = {k: f"ipc://{self.tmp}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders",
                                                        "dead_letters")}
        self.config = os.path.join(self.tmp, "sharding.toml")
        with open(self.config, "w") as f:
            f.write("\n".join(["[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
                               *(f'[[instruments]]\nsymbol = "{s}"' for s in SYMBOLS), ""]))

    def cpp_shard(self, k, n):
        """The symbols the strategy binary, run as instance k of n, says it trades."""
        run_dir = os.path.join(self.tmp, f"run-{k}-{n}")
        log = os.path.join(self.tmp, f"strategy-{k}-{n}.log")
        with open(log, "wb") as out:
            proc = subprocess.Popen([STRATEGY, "--config", self.config, "--run-dir", run_dir,
                                     "--shard", str(k), "--shards", str(n)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            def trading_line():
                with open(log, errors="replace") as f:
                    m = LINE.search(f.read())
                return m or proc.poll() is not None  # an exit ends the wait too

            def log_text():
                with open(log, errors="replace") as f:
                    return f.read()
            m = wait_for(trading_line, WAIT_S, what=f"strategy {k} of {n} to log its 'trading [...]' line",
                         detail=log_text)
            if m is True:
                self.fail(f"strategy {k} of {n} exited without a 'trading [...]' line:\n{log_text()}")
            self.assertEqual((int(m.group(1)), int(m.group(2))), (k, n))
            return [s for s in m.group(3).split(",") if s]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def test_every_instance_trades_the_python_shard(self):
        for n in (1, 2, 3, 4, 5):
            for k in range(n):
                with self.subTest(shard=k, shards=n):
                    self.assertEqual(self.cpp_shard(k, n), sharding.instruments_for_shard(SYMBOLS, k, n))


if __name__ == "__main__":
    unittest.main()
