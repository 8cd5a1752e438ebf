"""tpctl top against a real pipeline (the REAL programs from $TP_BIN_DIR under
the supervisor, on ipc:// endpoints in a temp dir), run the way a person runs
it: in a pseudo-terminal that is its controlling terminal, drawn by curses.
A small terminal emulator (Screen) turns what it writes into the screen a
person would see; the test reads that screen:
  - every program's line says RUNNING and the gateway's tick rate is > 0;
  - typing q ends it with exit 0 within 2 s, the terminal's modes restored
    and the alternate screen left;
  - typing Ctrl-C (SIGINT from the terminal) does the same;
  - --once prints one plain frame with every program's line and rates.
Skips when the binaries are not built."""

import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

from svtest import PROGRAMS, TPCTL, SupervisorRun, endpoints_toml, pid_alive

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
SKIP_WHY = (f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR or '(unset)'}: {', '.join(MISSING)}"
            if MISSING else "")
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 30.0      # bounded waits; the machine is small and shared
QUIT_S = 2.0       # q or Ctrl-C must end top within this
ROWS, COLS = 40, 160
CSI = re.compile(rb"\x1b\[([?>=]?)([0-9;]*)([ -/]*)([@-~])")


class Screen:
    """Enough of a VT100/xterm to replay what curses writes for TERM=xterm:
    cursor addressing (H f d G A B C D), erasing (K J X), repeat (b), insert
    and delete characters (@ P), CR LF BS TAB, save/restore cursor (ESC 7/8);
    other sequences (modes, colours, charsets) change nothing on the screen."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.cells = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self.saved = (0, 0)
        self.last = " "
        self.pending = b""

    def lines(self):
        return ["".join(r).rstrip() for r in self.cells]

    def text(self):
        return "\n".join(self.lines()).rstrip()

    def _put(self, ch):
        if self.x >= self.cols:
            self.x = self.cols - 1
        self.cells[self.y][self.x] = ch
        self.last = ch
        self.x = min(self.x + 1, self.cols)

    def _clear(self, y, x0, x1):
        for x in range(max(x0, 0), min(x1, self.cols)):
            self.cells[y][x] = " "

    def _csi(self, private, params, final):
        nums = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = (nums[0] if nums else 0) or 1
        if private:
            return
        if final in "Hf":
            self.y = min(max((nums[0] if nums else 1) or 1, 1), self.rows) - 1
            self.x = min(max((nums[1] if len(nums) > 1 else 1) or 1, 1), self.cols) - 1
        elif final == "d":
            self.y = min(n, self.rows) - 1
        elif final == "G":
            self.x = min(n, self.cols) - 1
        elif final == "A":
            self.y = max(self.y - n, 0)
        elif final == "B":
            self.y = min(self.y + n, self.rows - 1)
        elif final == "C":
            self.x = min(self.x + n, self.cols - 1)
        elif final == "D":
            self.x = max(self.x - n, 0)
        elif final == "K":
            mode = nums[0] if nums else 0
            self._clear(self.y, *{0: (self.x, self.cols), 1: (0, self.x + 1), 2: (0, self.cols)}[mode])
        elif final == "J":
            mode = nums[0] if nums else 0
            if mode in (2, 3):
                for y in range(self.rows):
                    self._clear(y, 0, self.cols)
            elif mode == 0:
                self._clear(self.y, self.x, self.cols)
                for y in range(self.y + 1, self.rows):
                    self._clear(y, 0, self.cols)
            else:
                for y in range(self.y):
                    self._clear(y, 0, self.cols)
                self._clear(self.y, 0, self.x + 1)
        elif final == "X":
            self._clear(self.y, self.x, self.x + n)
        elif final == "b":
            for _ in range(n):
                self._put(self.last)
        elif final == "@":
            row = self.cells[self.y]
            row[self.x:] = ([" "] * n + row[self.x:])[:self.cols - self.x]
        elif final == "P":
            row = self.cells[self.y]
            row[self.x:] = (row[self.x + n:] + [" "] * n)[:self.cols - self.x]

    def feed(self, data: bytes):
        data = self.pending + data
        self.pending = b""
        i = 0
        while i < len(data):
            c = data[i]
            if c == 0x1b:
                if i + 1 >= len(data):
                    self.pending = data[i:]
                    return
                nxt = data[i + 1]
                if nxt == ord("["):
                    m = CSI.match(data, i)
                    if not m:
                        if len(data) - i < 32:   # the rest of it has not come yet
                            self.pending = data[i:]
                            return
                        i += 2
                        continue
                    self._csi(m.group(1).decode(), m.group(2).decode(), m.group(4).decode())
                    i = m.end()
                elif nxt in b"()*+":
                    i += 3
                elif nxt == ord("7"):
                    self.saved = (self.y, self.x)
                    i += 2
                elif nxt == ord("8"):
                    self.y, self.x = self.saved
                    i += 2
                else:
                    i += 2
            elif c == 0x0d:
                self.x, i = 0, i + 1
            elif c == 0x0a:
                self.y, i = min(self.y + 1, self.rows - 1), i + 1
            elif c == 0x08:
                self.x, i = max(self.x - 1, 0), i + 1
            elif c == 0x09:
                self.x, i = min((self.x // 8 + 1) * 8, self.cols - 1), i + 1
            elif c < 0x20 or c == 0x7f:
                i += 1
            else:
                end = i
                while end < len(data) and data[end] >= 0x20 and data[end] != 0x7f:
                    end += 1
                for ch in data[i:end].decode(errors="replace"):
                    self._put(ch)
                i = end


def config_text(d):
    return "\n".join([
        "[run]", "stats_interval_ms = 100",
        *endpoints_toml(d),
        "[gateway]", "rate = 400",
        "[strategy]", "instances = 1",
        "[strategy.sma_crossover]", "fast = 2", "slow = 5",
        "[supervisor]", "stop_grace_ms = 5000",
        "",
    ])


def _make_controlling_tty():
    # In the child, after setsid(): its stdin (the pty's slave) becomes its
    # controlling terminal, so a typed Ctrl-C is a SIGINT from the terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TopInPty:
    """scripts/tpctl top in a new pseudo-terminal of ROWS x COLS; close()
    leaves no process behind."""

    def __init__(self, run_dir):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.modes = termios.tcgetattr(self.slave)
        self.screen = Screen(ROWS, COLS)
        self.raw = b""
        env = dict(os.environ, TERM="xterm", PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen([sys.executable, TPCTL, "--run-dir", run_dir, "top"],
                                     stdin=self.slave, stdout=self.slave, stderr=self.slave, env=env,
                                     start_new_session=True, preexec_fn=_make_controlling_tty)

    def pump(self, timeout):
        """Feeds the screen what top wrote within `timeout` s; False at EOF."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:   # EIO: the slave side is closed by everyone
            return False
        self.raw += chunk
        self.screen.feed(chunk)
        return bool(chunk)

    def wait_screen(self, predicate, what, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate(self.screen.lines())
            if found:
                return found
            if self.proc.poll() is not None:
                break
            self.pump(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{self.screen.text()}\n"
                             f"exit {self.proc.poll()}")

    def type(self, data: bytes):
        os.write(self.master, data)

    def wait_exit(self, timeout):
        """(exit code, seconds it took); pumps the output meanwhile."""
        start = time.monotonic()
        while self.proc.poll() is None and time.monotonic() - start < timeout:
            self.pump(0.05)
        try:
            rc = self.proc.wait(max(timeout - (time.monotonic() - start), 0.01))
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - start
        while self.pump(0.05) and select.select([self.master], [], [], 0)[0]:
            pass
        return rc, took

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def program_rows(lines):
    """name -> the columns of its line, from the table under the NAME heading."""
    try:
        head = next(i for i, line in enumerate(lines) if line.startswith("NAME "))
    except StopIteration:
        return {}
    heading = lines[head].split()
    rows = {}
    for line in lines[head + 1:]:
        if not line.strip():
            break
        cols = line.split()
        if len(cols) == len(heading):
            rows[cols[0]] = dict(zip(heading, cols))
    return rows


def rate(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@unittest.skipIf(MISSING, SKIP_WHY)
class TopPipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        cls.tmp = tempfile.mkdtemp(prefix="svtop", dir="/tmp")
        config = os.path.join(cls.tmp, "top.toml")
        with open(config, "w") as f:
            f.write(config_text(cls.tmp))
        cls.sv = SupervisorRun(cls.tmp, BIN_DIR, ["--config", config])
        try:
            cls.names = sorted(cls.sv.wait_all_running(timeout=WAIT_S, count=5))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_top(self):
        top = TopInPty(self.sv.run_dir)
        self.addCleanup(top.close)
        return top

    def all_running_and_ticking(self, lines):
        # A rate needs two stats files of the same process: the strategy's
        # shows a refresh or two after the gateway's, so both are awaited.
        rows = program_rows(lines)
        if sorted(rows) == self.names and all(r["STATE"] == "RUNNING" for r in rows.values()) \
                and rate(rows["gateway"]["TICKS/S"]) > 0 and rate(rows["strategy-0"]["TICKS/S"]) > 0:
            return rows
        return None

    def assert_restored(self, top, rc, took, how):
        self.assertEqual(rc, 0, f"{how}: exit {rc}; screen:\n{top.screen.text()}")
        self.assertLess(took, QUIT_S, f"{how}: took {took:.2f} s")
        # curses left the alternate screen and gave the terminal its modes back.
        self.assertIn(b"\x1b[?1049l", top.raw[-200:], f"{how}: {top.raw[-200:]!r}")
        self.assertEqual(termios.tcgetattr(top.slave), top.modes, f"{how}: terminal modes not restored")

    def test_live_view_shows_every_program_running_and_ticks_and_q_quits(self):
        top = self.start_top()
        top.wait_screen(self.all_running_and_ticking,
                        "every program RUNNING and a tick rate at the gateway and at the strategy")
        text = top.screen.text()
        self.assertIn("5/5 running", text)
        self.assertRegex(text, r"tick->fill p50 \S+ us, p99 \S+ us")
        self.assertIn("ALERTS", text)
        # Refreshed: the clock in the heading moves on.
        clock = re.search(r"(\d\d:\d\d:\d\d)$", top.screen.lines()[0]).group(1)
        top.wait_screen(lambda lines: not lines[0].endswith(clock), "the next refresh", timeout=5.0)
        top.type(b"q")
        rc, took = top.wait_exit(QUIT_S + 3.0)
        self.assert_restored(top, rc, took, "q")

    def test_ctrl_c_quits_cleanly(self):
        top = self.start_top()
        top.wait_screen(self.all_running_and_ticking, "every program RUNNING and a tick rate")
        top.type(b"\x03")   # the terminal's intr character: SIGINT to top
        rc, took = top.wait_exit(QUIT_S + 3.0)
        self.assert_restored(top, rc, took, "Ctrl-C")

    def test_once_prints_every_programs_line(self):
        r = subprocess.run([sys.executable, TPCTL, "--run-dir", self.sv.run_dir, "top", "--once",
                            "--interval", "0.5"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertNotIn("\x1b", r.stdout)
        rows = program_rows(r.stdout.splitlines())
        self.assertEqual(sorted(rows), self.names, r.stdout)
        for name, row in rows.items():
            self.assertEqual(row["STATE"], "RUNNING", r.stdout)
            self.assertTrue(pid_alive(int(row["PID"])), name)
        self.assertGreater(rate(rows["gateway"]["TICKS/S"]), 0, r.stdout)
        self.assertGreater(rate(rows["executor"]["FILLS/S"]), 0, r.stdout)
        self.assertIn("ALERTS: none", r.stdout)

    def test_sigterm_ends_a_plain_view(self):
        # Not a terminal: plain frames one after the other; SIGTERM ends it with 0.
        p = subprocess.Popen([sys.executable, TPCTL, "--run-dir", self.sv.run_dir, "top", "--interval", "0.2"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        first = p.stdout.readline().decode()
        self.assertTrue(first.startswith("tpctl top: supervisor pid"), first)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=QUIT_S + 3.0)
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn(b"\x1b", out)


if __name__ == "__main__":
    unittest.main()
