"""The real dead_letter and executor binaries under faults: a stalled sink and
a flood of 60 KB garbage (memory stays bounded in every program), SIGTERM in
the middle of a flood (a prompt exit 0 and a file that parses line by line),
rotation and sampling (disk stays bounded, every letter keeps its line), a
torn last line from a kill -9 (set aside at start), a full disk (the file on
a small tmpfs: root needed, skipped otherwise; exact counts, the failure in
the stats, whole lines again once space returns) and a descriptor limit of
64 under a flood of 200 connections (prlimit; the sink stays up and counts
accept_failed).

Programs run in a temporary directory on ipc:// endpoints; every wait is on a
stats file or a counter with a deadline; children are always killed."""

import errno
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from waiting import read_json, wait_for  # noqa: E402

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
RSS_BUDGET_KB = 30 * 1024
FRAME = b"\xc1" + b"g" * 60_000  # 0xc1 is never valid msgpack: "malformed"


def vm_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


class Deployment:
    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_dl_")
        self.dir = self.tmp.name
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir)
        self.ep = {k: f"ipc://{self.dir}/{k}.sock"
                   for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
        self.config = os.path.join(self.dir, "deploy.toml")
        with open(self.config, "w") as f:
            f.write("[run]\n" f'dir = "{self.run_dir}"\n' "stats_interval_ms = 50\n\n[endpoints]\n")
            f.write("".join(f'{k} = "{v}"\n' for k, v in self.ep.items()))
        self.procs = {}

    def start(self, name, *sets, prefix=()):
        args = [*prefix, os.path.join(BIN_DIR, name), "--config", self.config]
        for s in sets:
            args += ["--set", s]
        log = open(self.log_path(name), "ab")
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(lambda: self.stats(name), 10, what=f"{name}'s first stats")
        return self.procs[name]

    def log_path(self, name):
        return os.path.join(self.run_dir, name + ".log")

    def stats(self, name):
        return read_json(os.path.join(self.run_dir, f"{name}.stats.json"))

    def stat(self, name, key):
        return (self.stats(name) or {}).get(key, 0)

    def stop(self, name, timeout=5.0):
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def close(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.tmp.cleanup()

    def letter_files(self):
        return sorted(glob.glob(os.path.join(self.run_dir, "dead_letters.jsonl*")))

    def letters(self, path=None):
        """Every line of the file, parsed: a line that is not JSON fails the test."""
        path = path or os.path.join(self.run_dir, "dead_letters.jsonl")
        out = []
        with open(path, "rb") as f:
            data = f.read()
        if data:
            assert data.endswith(b"\n"), f"{path} does not end with a whole line"
        for n, line in enumerate(data.splitlines(), 1):
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"{path}:{n} is not JSON ({e}): {line[:80]!r}") from None
        return out

    def settled(self, name, key):
        """The counter once it stopped moving for three stats writes in a row."""
        seen = []

        def still():
            s = self.stats(name) or {}
            if not seen or s.get("ts_ns") != seen[-1][0]:
                seen.append((s.get("ts_ns"), s.get(key, 0)))
            last = [v for _, v in seen[-4:]]
            return len(last) == 4 and len(set(last)) == 1 and last[0]

        return wait_for(still, 20, what=f"{name}.{key} to settle")


class Pusher:
    """A real ZMQ PUSH that sends `count` frames (or until stopped) from a thread."""

    def __init__(self, endpoint, count=None):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDTIMEO, 200)
        self.sock.connect(endpoint)
        self.count = count
        self.sent = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set() and (self.count is None or self.sent < self.count):
            try:
                self.sock.send(FRAME, copy=False)
                self.sent += 1
            except zmq.Again:
                pass

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        self.ctx.term()


@unittest.skipUnless(BIN_DIR and os.access(os.path.join(BIN_DIR, "dead_letter"), os.X_OK), "TP_BIN_DIR not set")
class DeadLetterUnderFaults(unittest.TestCase):
    def setUp(self):
        self.d = Deployment()
        self.addCleanup(self.d.close)

    def test_stalled_sink_keeps_every_rss_bounded(self):
        d = self.d
        sink = d.start("dead_letter")
        executor = d.start("executor")
        os.kill(sink.pid, signal.SIGSTOP)
        self.addCleanup(lambda: sink.poll() is None and os.kill(sink.pid, signal.SIGCONT))

        pusher = Pusher(d.ep["signals"], count=12_000)
        self.addCleanup(pusher.close)
        self.assertTrue(pusher.join(60), f"pushed only {pusher.sent} of 12000 frames in 60 s")
        wait_for(lambda: d.stat("executor", "signals_received") >= 12_000, 30,
                 what="the executor to read 12000 frames")
        self.assertEqual(d.stat("executor", "dead_letters"), 12_000, "every frame is a dead letter, sent or dropped")
        executor_peak = vm_kb(executor.pid, "VmHWM")

        os.kill(sink.pid, signal.SIGCONT)
        stored = d.settled("dead_letter", "dead_letters")
        sink_peak = vm_kb(sink.pid, "VmHWM")
        print(f"\nexecutor VmHWM {executor_peak} kB, sink VmHWM {sink_peak} kB, "
              f"letters the sink got {stored} of 12000")
        self.assertLessEqual(executor_peak, RSS_BUDGET_KB, "executor peak RSS")
        self.assertLessEqual(sink_peak, RSS_BUDGET_KB, "sink peak RSS after SIGCONT")
        self.assertLess(stored, 12_000, "a stalled sink cannot have been sent them all")

        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertEqual(d.stop("executor"), 0)
        letters = d.letters()
        self.assertEqual(len(letters), d.stat("dead_letter", "dead_letters"))
        self.assertTrue(all(x["source"] == "executor" and x["reason"] == "malformed" for x in letters))

    def test_sigterm_during_a_flood_stops_promptly_with_whole_lines(self):
        d = self.d
        sink = d.start("dead_letter")
        pusher = Pusher(d.ep["dead_letters"])
        self.addCleanup(pusher.close)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") >= 2000, 30, what="a flood at the sink")
        t0 = time.monotonic()
        sink.send_signal(signal.SIGTERM)
        code = sink.wait(timeout=10)
        took = time.monotonic() - t0
        self.assertTrue(pusher.thread.is_alive(), "the flood was still on when the sink stopped")
        pusher.close()
        print(f"\nsink stopped {took:.3f} s after SIGTERM during a flood")
        self.assertEqual(code, 0)
        self.assertLess(took, 2.0, "stop within the grace period (3 s) with room to spare")
        letters = d.letters()
        final = d.stats("dead_letter")
        self.assertEqual(len(letters), final["dead_letters"], "every letter counted has its line")
        self.assertGreater(final["originals_not_stored"], 0, "the flood was sampled")
        sampled = [x for x in letters if x.get("original_stored") is False]
        self.assertEqual(len(sampled), final["originals_not_stored"])
        self.assertTrue(all(x["original_b64"] == "" and x["original_size"] == len(FRAME) for x in sampled))
        self.assertEqual(final["original_bytes_not_stored"], len(sampled) * len(FRAME))

    def test_rotation_keeps_disk_bounded_and_every_line_whole(self):
        d = self.d
        max_bytes = 1 << 20
        d.start("dead_letter", f"dead_letter.max_file_bytes={max_bytes}", "dead_letter.max_files=3",
                "dead_letter.sample_one_in=1")  # no sampling: the bytes themselves must rotate
        pusher = Pusher(d.ep["dead_letters"], count=2000)
        self.addCleanup(pusher.close)
        self.assertTrue(pusher.join(30))
        wait_for(lambda: d.stat("dead_letter", "dead_letters") >= 2000, 30, what="2000 letters")
        self.assertEqual(d.stop("dead_letter"), 0)

        base = os.path.join(d.run_dir, "dead_letters.jsonl")
        self.assertEqual(d.letter_files(), [base, base + ".1", base + ".2"])
        total = 0
        lines = 0
        for path in d.letter_files():
            size = os.path.getsize(path)
            self.assertLessEqual(size, max_bytes, path)
            total += size
            lines += len(d.letters(path))
        final = d.stats("dead_letter")
        print(f"\n2000 x 60 KB letters ({2000 * 80_000 // 1_000_000} MB of lines) kept in {total} bytes, "
              f"{final['file_rotations']} rotations, {final['files_removed']} files removed")
        self.assertLessEqual(total, 3 * max_bytes)
        self.assertEqual(final["dead_letters"], 2000)
        self.assertEqual(final["originals_not_stored"], 0)
        self.assertGreater(final["files_removed"], 100)
        self.assertGreater(lines, 0)

    def test_default_sampling_keeps_every_line_but_few_originals(self):
        d = self.d
        d.start("dead_letter")
        pusher = Pusher(d.ep["dead_letters"], count=2000)
        self.addCleanup(pusher.close)
        self.assertTrue(pusher.join(30))
        wait_for(lambda: d.stat("dead_letter", "dead_letters") >= 2000, 30, what="2000 letters")
        self.assertEqual(d.stop("dead_letter"), 0)
        letters = d.letters()
        final = d.stats("dead_letter")
        size = os.path.getsize(os.path.join(d.run_dir, "dead_letters.jsonl"))
        print(f"\n2000 x 60 KB letters: file {size} bytes, {final['originals_not_stored']} originals not stored")
        self.assertEqual(len(letters), 2000)
        stored = [x for x in letters if x["original_b64"]]
        self.assertEqual(len(stored) + final["originals_not_stored"], 2000)
        self.assertGreater(len(stored), 0, "a flood still leaves examples")
        # Budget: 1 MiB/s per reason plus one in 100, against 160 MB unsampled.
        self.assertLess(size, 20_000_000)

    def test_kill_9_during_a_flood_then_a_restart_leaves_whole_lines(self):
        d = self.d
        sink = d.start("dead_letter", "dead_letter.sample_one_in=1")  # big lines: a kill may cut one
        pusher = Pusher(d.ep["dead_letters"])
        self.addCleanup(pusher.close)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") >= 500, 30, what="a flood at the sink")
        sink.kill()
        sink.wait()
        pusher.close()
        os.remove(os.path.join(d.run_dir, "dead_letter.stats.json"))
        d.start("dead_letter")  # waits for its first stats: the repair is done by then
        torn = d.stat("dead_letter", "torn_bytes_set_aside")
        self.assertEqual(d.stop("dead_letter"), 0)
        letters = d.letters()  # fails on any line that is not JSON
        print(f"\nafter kill -9: {len(letters)} whole lines, {torn} torn bytes set aside")
        self.assertGreater(len(letters), 0)
        side = os.path.join(d.run_dir, "dead_letters.jsonl.torn")
        self.assertEqual(os.path.exists(side), torn > 0)
        if torn:
            self.assertEqual(os.path.getsize(side), torn)

    def test_a_torn_last_line_is_set_aside_at_start(self):
        d = self.d
        path = os.path.join(d.run_dir, "dead_letters.jsonl")
        with open(path, "wb") as f:
            f.write(b'{"ts_ns":1,"reason":"malformed"}\n{"ts_ns":2,"reason":"mal')
        d.start("dead_letter")
        self.assertEqual(d.stat("dead_letter", "torn_bytes_set_aside"), 24)
        pusher = Pusher(d.ep["dead_letters"], count=1)
        self.addCleanup(pusher.close)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") >= 1, 10, what="one letter")
        self.assertEqual(d.stop("dead_letter"), 0)
        letters = d.letters()
        self.assertEqual([x["ts_ns"] for x in letters][:1], [1])
        self.assertEqual(len(letters), 2)
        with open(path + ".torn", "rb") as f:
            self.assertEqual(f.read(), b'{"ts_ns":2,"reason":"mal')
        with open(d.log_path("dead_letter")) as f:
            self.assertIn("torn record of 24 bytes", f.read())

    def test_a_keyed_letter_is_written_once_across_a_restart_and_a_rotation(self):
        d = self.d
        sets = ("dead_letter.max_file_bytes=1048576", "dead_letter.sample_one_in=1")
        key = 'signal/"s1" \\ caf\u00e9'  # escaped in the line: read back the same after a restart

        def letter(detail, key=None):
            fields = [9, 1, "executor", "trading_halted", detail, time.time_ns(), b"signal bytes"]
            return msgpack.packb(fields + ([key] if key is not None else []), use_bin_type=True)

        d.start("dead_letter", *sets)
        push_frames(d.ep["dead_letters"], [letter("keyed", key), letter("keyed again", key),
                                           letter("unkeyed"), letter("unkeyed")])
        # Then ~1.2 MB of garbage: the keyed line rotates into dead_letters.jsonl.1.
        push_frames(d.ep["dead_letters"], [FRAME] * 20)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 23, 10, what="23 letters")
        self.assertEqual(d.stop("dead_letter"), 0)
        first = d.stats("dead_letter")
        self.assertEqual(first["duplicates_dropped"], 1, first)
        self.assertEqual(first["by_reason"], {"trading_halted": 3, "malformed": 20}, first)
        base = os.path.join(d.run_dir, "dead_letters.jsonl")
        self.assertEqual([x.get("key") for x in d.letters(base + ".1")][:3], [key, None, None])

        os.remove(os.path.join(d.run_dir, "dead_letter.stats.json"))
        d.start("dead_letter", *sets)
        self.assertEqual(d.stat("dead_letter", "keys_remembered"), 1)
        # The executor's replay after a kill -9: the same letter, sent again.
        push_frames(d.ep["dead_letters"], [letter("keyed, replayed", key), letter("keyed, replayed", key),
                                           letter("after the replay")])
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 1, 10, what="the letter after the replay")
        self.assertEqual(d.stop("dead_letter"), 0)
        second = d.stats("dead_letter")
        self.assertEqual(second["duplicates_dropped"], 2, second)
        self.assertEqual(second["dead_letters"], 1, second)

        self.assertEqual(d.letter_files(), [base, base + ".1"])
        letters = d.letters(base + ".1") + d.letters(base)  # oldest first
        self.assertEqual([x["detail"] for x in letters if x.get("key") == key], ["keyed"])
        self.assertEqual([x["detail"] for x in letters if x["reason"] == "trading_halted" and "key" not in x],
                         ["unkeyed", "unkeyed", "after the replay"])
        with open(d.log_path("dead_letter")) as f:
            log = f.read()
        # Saved at the rotation; the files' copy of it is then no news.
        self.assertIn("remembered 1 letter keys: 1 saved in", log)
        self.assertIn("from 2 files of", log)

    def test_a_keyed_letter_whose_file_rotation_removed_is_still_written_once_after_a_restart(self):
        d = self.d
        sets = ("dead_letter.max_file_bytes=1048576", "dead_letter.max_files=2", "dead_letter.sample_one_in=1")
        key = "signal/s-removed"

        def letter(detail):
            return msgpack.packb([9, 1, "executor", "trading_halted", detail, time.time_ns(), b"signal bytes", key],
                                 use_bin_type=True)

        d.start("dead_letter", *sets)
        push_frames(d.ep["dead_letters"], [letter("keyed")])
        # ~2.4 MB of garbage: two rotations, and the keyed line's file is removed.
        push_frames(d.ep["dead_letters"], [FRAME] * 40)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 41, 10, what="41 letters")
        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertGreaterEqual(d.stats("dead_letter")["files_removed"], 1)
        lines = [x for path in d.letter_files() for x in d.letters(path)]
        self.assertNotIn(key, [x.get("key") for x in lines], "the keyed line's file is gone")
        self.assertTrue(os.path.exists(os.path.join(d.run_dir, "dead_letters.keys")))

        os.remove(os.path.join(d.run_dir, "dead_letter.stats.json"))
        d.start("dead_letter", *sets)
        self.assertEqual(d.stat("dead_letter", "keys_remembered"), 1)
        push_frames(d.ep["dead_letters"], [letter("keyed, replayed"), letter("keyed, replayed")])
        wait_for(lambda: d.stat("dead_letter", "duplicates_dropped") == 2, 10, what="both replays dropped")
        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertEqual(d.stats("dead_letter")["dead_letters"], 0)
        lines = [x for path in d.letter_files() for x in d.letters(path)]
        self.assertNotIn(key, [x.get("key") for x in lines], "a replay of a letter written before is not written")


def push_frames(endpoint, frames):
    """Sends each frame on a fresh PUSH and waits until they are out."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 5000)
    sock.connect(endpoint)
    for frame in frames:
        sock.send(frame)
    sock.close()
    ctx.term()


def line_count(path):
    with open(path, "rb") as f:
        data = f.read()
    assert not data or data.endswith(b"\n"), f"{path} does not end with a whole line"
    for line in data.splitlines():
        json.loads(line)
    return len(data.splitlines())


@unittest.skipUnless(BIN_DIR and os.access(os.path.join(BIN_DIR, "dead_letter"), os.X_OK), "TP_BIN_DIR not set")
class DeadLetterOutOfResources(unittest.TestCase):
    def setUp(self):
        self.d = Deployment()
        self.addCleanup(self.d.close)

    def mount_tmpfs(self, size):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        mnt = os.path.join(self.d.dir, "small")
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {r.stderr.strip()}")
        self.addCleanup(lambda: subprocess.run(["umount", "-l", mnt], check=False))
        return mnt

    def test_a_full_disk_counts_exactly_shows_the_failure_and_resumes_with_whole_lines(self):
        d = self.d
        mnt = self.mount_tmpfs(256 * 1024)
        path = os.path.join(mnt, "dead_letters.jsonl")
        d.start("dead_letter", f'dead_letter.path="{path}"')
        frame = b"\xc1" + b"x" * 2000  # malformed: a line of ~2.8 KB
        push_frames(d.ep["dead_letters"], [frame] * 5)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 5, 10, what="5 letters")
        self.assertEqual(line_count(path), 5)

        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"f" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)

        push_frames(d.ep["dead_letters"], [frame] * 20)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 25, 10, what="25 letters")
        stats = wait_for(lambda: (s := d.stats("dead_letter")) and s.get("lines_lost", 0) > 0 and s, 10,
                         what="lines_lost in the stats")
        self.assertTrue(d.procs["dead_letter"].poll() is None, "the sink stays up")
        in_file = line_count(path)
        self.assertEqual(in_file + stats["lines_lost"], 25, f"exact counts: {in_file} in the file, {stats}")
        self.assertGreaterEqual(stats["lines_lost"], 18, stats)
        self.assertGreater(stats["write_failures"], 0, stats)
        self.assertIn(path, stats["files_failing"], stats)
        self.assertEqual(stats["alert"], "cannot write dead_letters.jsonl: No space left on device")
        with open(d.log_path("dead_letter")) as f:
            log = f.read()
        self.assertIn(f"{path}: write: No space left on device", log)
        self.assertLessEqual(log.count("No space left on device"), 3, "a bounded rate: " + log)

        os.remove(filler)
        push_frames(d.ep["dead_letters"], [frame] * 5)
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 30, 10, what="30 letters")
        stats = wait_for(lambda: (s := d.stats("dead_letter")) and "alert" not in s and s, 10, what="the alert to clear")
        self.assertEqual(line_count(path), 30 - stats["lines_lost"], stats)
        self.assertEqual(stats["files_failing"], {}, stats)
        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertEqual(line_count(path) + d.stats("dead_letter")["lines_lost"], 30)

    def test_a_connection_flood_past_the_descriptor_limit_is_counted_and_the_sink_goes_on(self):
        prlimit = shutil.which("prlimit")
        if not prlimit:
            self.skipTest("no prlimit")
        d = self.d
        proc = d.start("dead_letter", prefix=(prlimit, "--nofile=64:64", "--"))
        sock_path = d.ep["dead_letters"][len("ipc://"):]
        flood = []
        try:
            for _ in range(200):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(sock_path)
                except OSError:
                    pass  # past the listen backlog
                flood.append(s)
            time.sleep(1.0)
            self.assertIsNone(proc.poll(), "the sink stays up under the flood")
        finally:
            for s in flood:
                s.close()
        wait_for(lambda: d.stat("dead_letter", "accept_failed") > 0, 10, what="accept_failed in the stats")
        push_frames(d.ep["dead_letters"], [b"\xc1after the flood"])
        wait_for(lambda: d.stat("dead_letter", "dead_letters") == 1, 10, what="a letter after the flood")
        self.assertIsNone(proc.poll())
        self.assertGreater(d.stat("dead_letter", "open_files"), 0)
        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertEqual(line_count(os.path.join(d.run_dir, "dead_letters.jsonl")), 1)


if __name__ == "__main__":
    unittest.main()
