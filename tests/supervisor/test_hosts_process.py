"""Two hosts on one machine: two supervisors (`--host a`, `--host b`) with
run dirs of their own over one deployment file, fake programs
(fake_program.py), tcp control on loopback (127.0.0.1 for a, 127.0.0.2 for
b) with a shared secret. Each runs its share; tpctl --config shows both in
one table, sends a command to the host that runs its process, refuses a
wrong secret, shows a host that does not answer as UNREACHABLE within its
bound, and scales a group spread over both: every old instance stopped on
both hosts before any new one starts, the new ones where the file places
them, a journal whose adopter went elsewhere renamed for a local one."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from svtest import SUPERVISOR, TPCTL, SupervisorRun, make_fake_bin_dir
from ports import free_port  # noqa: E402  (tests/support, on sys.path through svtest)

FAST = ["--set", "supervisor.backoff_min_ms=50", "--set", "supervisor.backoff_max_ms=200",
        "--set", "supervisor.stop_grace_ms=2000"]
ADDRESS = {"a": "127.0.0.1", "b": "127.0.0.2"}
STATUS_BOUND_S = 3.0   # hostctl.STATUS_TIMEOUT_S


def hosts_port() -> int:
    """A port free on both loopback addresses the hosts listen on."""
    return free_port(addresses=("127.0.0.1", "127.0.0.2"))


def deployment(secret, port, extra_hosts="", instances=2) -> str:
    return f"""
[endpoints]
ticks = "tcp://127.0.0.2:7101"
signals = "tcp://127.0.0.1:7102"
order_events = "tcp://127.0.0.1:7103"
orders = "tcp://127.0.0.1:7104"
dead_letters = "tcp://127.0.0.1:7105"

[supervisor]
control_port = {port}
control_secret = "{secret}"

[[hosts]]
name = "a"
address = "127.0.0.1"
programs = ["dead_letter", "dll_gateway", "executor"]

[[hosts]]
name = "b"
address = "127.0.0.2"
programs = ["gateway"]
{extra_hosts}
[[strategy.groups]]
name = "g"
kind = "every_nth"
instances = {instances}
hosts = ["a", "b"]

[[strategy.groups]]
name = "solo"
kind = "breakout"
hosts = ["b"]
"""


def write_secret(path, text=None):
    with open(path, "w") as f:
        f.write(text or os.urandom(24).hex())
    os.chmod(path, 0o600)
    return path


class TwoHostsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hosts")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.bin = make_fake_bin_dir(os.path.join(self.tmp, "bin"))
        self.port = hosts_port()
        self.secret = write_secret(os.path.join(self.tmp, "control.secret"))
        self.config = self.write("deploy.toml", deployment(self.secret, self.port))
        self.events = os.path.join(self.tmp, "events")
        self.sups = {h: self.start(h) for h in ("a", "b")}
        self.sups["a"].wait_all_running(count=4)
        self.sups["b"].wait_all_running(count=3)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, host):
        d = os.path.join(self.tmp, host)
        os.makedirs(d)
        run = SupervisorRun(d, self.bin, [*FAST, "--config", self.config, "--host", host],
                            env={"FAKE_EVENTS": self.events})
        self.addCleanup(run.close)
        return run

    def tpctl(self, *args, config=None, timeout=120):
        return subprocess.run([sys.executable, TPCTL, "--config", config or self.config, *args],
                              capture_output=True, text=True, timeout=timeout)

    def test_each_host_runs_its_share(self):
        self.assertEqual(sorted(self.sups["a"].status()), ["dead_letter", "dll_gateway", "executor", "g-0"])
        self.assertEqual(sorted(self.sups["b"].status()), ["g-1", "gateway", "solo-0"])
        g1 = self.sups["b"].status()["g-1"]
        self.assertEqual((g1["shard"], g1["shards"]), (1, 2))

    def test_status_of_every_host_in_one_table(self):
        r = self.tpctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("hosts: a (supervisor pid "), lines[0])
        self.assertIn("g x2", lines[0])
        self.assertEqual(lines[1].split()[:3], ["HOST", "NAME", "STATE"])
        rows = {tuple(line.split()[:3]) for line in lines[2:]}
        for host, name in (("a", "executor"), ("a", "dead_letter"), ("a", "g-0"), ("b", "g-1"),
                           ("b", "gateway"), ("b", "solo-0")):
            self.assertIn((host, name, "RUNNING"), rows)
        self.assertIn("group g (every_nth, 2 instances)", lines)

    def test_top_shows_every_hosts_processes_with_their_rates(self):
        # The fake programs count their stats writes (five a second) as
        # ticks_published: each host's supervisor sends them, tpctl rates them.
        # Host d does not answer: a row and an alert, the others shown.
        extra = '[[hosts]]\nname = "d"\naddress = "127.0.0.4"\n'
        config = self.write("top.toml", deployment(self.secret, self.port, extra))
        r = self.tpctl("top", "--once", "--interval", "0.5", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("tpctl top: hosts: a (supervisor pid "), lines[0])
        header = lines.index(next(line for line in lines if line.startswith("HOST ")))
        self.assertEqual(lines[header].split()[:3], ["HOST", "NAME", "STATE"])
        rows = {tuple(line.split()[:2]): line.split() for line in lines[header + 1:] if line.strip()}
        ticks = lines[header].split().index("TICKS/S")
        for host, name in (("a", "executor"), ("a", "dead_letter"), ("a", "dll_gateway"), ("a", "g-0"),
                           ("b", "gateway"), ("b", "g-1"), ("b", "solo-0")):
            row = rows[(host, name)]
            self.assertEqual(row[2], "RUNNING", row)
            self.assertGreater(float(row[ticks]), 1.0, f"{host} {name}: {row}")
        self.assertEqual(rows[("d", "supervisor")][2], "UNREACHABLE")
        self.assertIn("  ! d/supervisor: UNREACHABLE (last exit: 127.0.0.4:", r.stdout)
        r = self.tpctl("--host", "b", "top", "--once", "--interval", "0.3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(line.split()[1] for line in r.stdout.splitlines()
                                if line.startswith("b ")), ["g-1", "gateway", "solo-0"])

    def test_a_command_goes_to_the_host_that_runs_its_process(self):
        before = {h: {n: p["pid"] for n, p in s.status().items()} for h, s in self.sups.items()}
        r = self.tpctl("restart", "gateway")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("b: restarted gateway"), r.stdout)
        after = {h: {n: p["pid"] for n, p in s.status().items()} for h, s in self.sups.items()}
        self.assertNotEqual(after["b"]["gateway"], before["b"]["gateway"])
        self.assertEqual(after["a"], before["a"])
        r = self.tpctl("stop", "g:1")   # instance 1 of g: hosts[1 % 2] = b
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.sups["b"].status()["g-1"]["state"], "STOPPED")
        self.assertEqual(self.sups["a"].status()["g-0"]["state"], "RUNNING")
        r = self.tpctl("start", "g")   # the group: both hosts
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([line.split(":")[0] for line in r.stdout.splitlines()], ["a", "b"])
        self.sups["b"].wait_state("g-1", "RUNNING")
        r = self.tpctl("--host", "a", "stop", "gateway")
        self.assertEqual(r.returncode, 1)
        self.assertIn("gateway runs on b, not on --host a", r.stderr)

    def test_a_wrong_secret_is_refused_and_nothing_done(self):
        wrong = write_secret(os.path.join(self.tmp, "wrong.secret"))
        config = self.write("wrong.toml", deployment(wrong, self.port))
        pid = self.sups["a"].status()["executor"]["pid"]
        r = self.tpctl("stop", "executor", config=config)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("authentication failed", r.stderr)
        st = self.sups["a"].status()["executor"]
        self.assertEqual((st["state"], st["pid"]), ("RUNNING", pid))
        self.assertIn("refused a tcp request from 127.0.0.1", self.sups["a"].log())
        r = self.tpctl("status", config=config)
        self.assertEqual(r.returncode, 1)
        refused = [line.split()[0] for line in r.stdout.splitlines()[2:] if line.split()[2] == "REFUSED"]
        self.assertEqual(refused, ["a", "b"], r.stdout)

    def test_a_host_that_does_not_answer_is_unreachable_within_the_bound(self):
        # c: a listener that never accepts (its challenge never comes), the
        # way a host behind a cut link holds a client; d: nothing listening.
        silent = socket.create_server(("127.0.0.3", self.port))
        self.addCleanup(silent.close)
        extra = ('[[hosts]]\nname = "c"\naddress = "127.0.0.3"\n\n'
                 '[[hosts]]\nname = "d"\naddress = "127.0.0.4"\n')
        config = self.write("more.toml", deployment(self.secret, self.port, extra))
        t0 = time.monotonic()
        r = self.tpctl("status", config=config)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertLess(took, STATUS_BOUND_S + 2.0)   # every host at once: the bound, not the sum
        rows = [line.split() for line in r.stdout.splitlines()[2:]]
        self.assertIn(["c", "supervisor", "UNREACHABLE"], [row[:3] for row in rows])
        self.assertIn(["d", "supervisor", "UNREACHABLE"], [row[:3] for row in rows])
        self.assertIn("no answer within 3 s", r.stdout)
        self.assertIn(("b", "gateway", "RUNNING"), {tuple(row[:3]) for row in rows})

    def test_a_client_that_says_nothing_is_dropped(self):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as quiet:
            hello = quiet.recv(4096)
            self.assertIn(b'"challenge"', hello)
            self.assertEqual(quiet.recv(4096), b"")   # closed by the supervisor, not by us
        self.assertLess(time.monotonic() - t0, 5.0 + 3.0)   # controller.TCP_REQUEST_S
        self.assertEqual(self.tpctl("--host", "a", "status").returncode, 0)

    def events_of(self, group):
        out = []
        with open(self.events) as f:
            for line in f:
                what, name, pid, ts = line.split()
                if name.startswith(group + "-"):
                    out.append((what, name, int(pid), int(ts)))
        return out

    def test_scale_across_hosts_stops_everywhere_before_starting(self):
        old = {p["pid"] for s in self.sups.values() for n, p in s.status().items() if n.startswith("g-")}
        mark = os.path.getsize(self.events)
        # A journal of a departed shard 3 on b's disk (as if g had run 4
        # instances): after a scale to 3 its adopter would be 3 % 3 = 0, on a.
        with open(os.path.join(self.sups["b"].run_dir, "g-3.journal"), "w") as f:
            f.write("journal of g-3\n")
        r = self.tpctl("scale", "g", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("b: journal g-3.journal renamed g-4.journal (adopted on this host)", r.stdout)
        self.assertIn("g scaled to 3 over a, b", r.stdout)
        a = self.sups["a"].wait_all_running(count=5)
        b = self.sups["b"].wait_all_running(count=3)
        self.assertEqual(sorted(n for n in a if n.startswith("g-")), ["g-0", "g-2"])
        self.assertEqual(sorted(n for n in b if n.startswith("g-")), ["g-1"])
        for name, p in [*a.items(), *b.items()]:
            if name.startswith("g-"):
                self.assertEqual((p["shard"], p["shards"]), (int(name[2:]), 3))
        # 4 % 3 = 1: b's own instance adopts it; the old name is gone.
        with open(os.path.join(self.sups["b"].run_dir, "g-4.journal")) as f:
            self.assertEqual(f.read(), "journal of g-3\n")
        self.assertFalse(os.path.exists(os.path.join(self.sups["b"].run_dir, "g-3.journal")))
        # Every old instance, on either host, exited before any new one started.
        with open(self.events) as f:
            f.seek(mark)
            lines = [line.split() for line in f]
        exits = [int(ts) for what, name, pid, ts in lines if what == "exit" and int(pid) in old]
        starts = [int(ts) for what, name, pid, ts in lines if what == "start" and name.startswith("g-")]
        self.assertEqual(len(exits), 2)
        self.assertEqual(len(starts), 3)
        self.assertLess(max(exits), min(starts))
        self.assertEqual(self.sups["b"].status()["solo-0"]["restarts"], 0)   # other groups untouched

    def test_scale_below_one_instance_per_host_is_refused_untouched(self):
        pids = {n: p["pid"] for s in self.sups.values() for n, p in s.status().items()}
        r = self.tpctl("scale", "g", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("g runs on hosts a, b: each keeps at least one instance", r.stderr)
        self.assertEqual({n: p["pid"] for s in self.sups.values() for n, p in s.status().items()}, pids)

    def test_one_host_alone_does_not_scale_a_spread_group(self):
        reply = self.sups["a"].ctl({"cmd": "scale", "name": "g", "n": 4})
        self.assertFalse(reply["ok"])
        self.assertIn("scale it with `tpctl --config FILE scale g 4`", reply["error"])
        # A group on b alone scales there as on a single host.
        reply = self.sups["b"].ctl({"cmd": "scale", "name": "solo", "n": 2})
        self.assertTrue(reply["ok"], reply)
        self.sups["b"].wait_all_running(count=4)

    def test_shutdown_every_host(self):
        r = self.tpctl("shutdown")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.splitlines()), ["a: all stopped", "b: all stopped"])
        for s in self.sups.values():
            self.assertEqual(s.wait_exit(20), 0)


class ChoosingTheHostTest(unittest.TestCase):
    """supervisor.py with a file of [[hosts]]: --host NAME, --all-hosts, or a
    clear refusal."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hosts")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.bin = make_fake_bin_dir(os.path.join(self.tmp, "bin"))
        self.config = os.path.join(self.tmp, "deploy.toml")
        with open(self.config, "w") as f:
            f.write(deployment(write_secret(os.path.join(self.tmp, "s")), hosts_port()))

    def supervisor(self, *args):
        return subprocess.run([sys.executable, SUPERVISOR, "--bin-dir", self.bin, "--run-dir",
                               os.path.join(self.tmp, "run"), "--config", self.config, *args],
                              capture_output=True, text=True, timeout=60)

    def test_without_host_it_names_the_hosts_and_starts_nothing(self):
        r = self.supervisor()
        self.assertEqual(r.returncode, 1)
        self.assertIn("places its programs on hosts a, b: run each host's share there with --host NAME",
                      r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "run")))

    def test_an_unknown_host(self):
        r = self.supervisor("--host", "z")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--host z: no such host in the deployment file (hosts: a, b)", r.stderr)

    def test_a_secret_others_can_read_is_refused(self):
        secret = os.path.join(self.tmp, "s")
        os.chmod(secret, 0o644)
        r = self.supervisor("--host", "a")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is readable by group or others (chmod 600 it)", r.stderr)

    def test_all_hosts_runs_everything_here(self):
        run = SupervisorRun(self.tmp, self.bin, [*FAST, "--config", self.config, "--all-hosts"])
        self.addCleanup(run.close)
        st = run.wait_all_running(count=7)
        self.assertEqual(sorted(st), ["dead_letter", "dll_gateway", "executor", "g-0", "g-1", "gateway",
                                      "solo-0"])
        # One supervisor of everything scales a spread group by itself.
        self.assertTrue(run.ctl({"cmd": "scale", "name": "g", "n": 3})["ok"])
        run.wait_all_running(count=8)


if __name__ == "__main__":
    unittest.main()
