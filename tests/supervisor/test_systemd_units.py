"""The systemd units scripts/tp_units.py writes, for every host of the
three-host example (config/samples/three_hosts.toml, with a python group
added) and for a single machine: `systemd-analyze verify` accepts each
host's units, with their binaries (this build's, through a directory whose
name needs quoting) present; each program's service is on its host only,
each group's shards are a template wanted once per shard on its host, every
service is Type=notify with the supervisor's hang timeout as WatchdogSec,
its back-off, stop grace and start order, and ExecStart, as systemd reads
it, is the supervisor's command line (settings.command_line).

Skipped, saying why, without systemd-analyze or this build's binaries."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

from svtest import REPO, SCRIPTS

from tp_supervisor.arbiter import Arbiter
from tp_supervisor.settings import load_settings

TP_UNITS = os.path.join(SCRIPTS, "tp_units.py")
SAMPLE = os.path.join(REPO, "config", "samples", "three_hosts.toml")
BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PROGRAMS = ["dead_letter", "dll_gateway", "executor", "gateway"]
MISSING = [p for p in [*PROGRAMS, "strategy"] if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
PY_GROUP = """
[[strategy.groups]]
name = "py"
kind = "python"
entry = "strategies:EveryNth"
python_path = "strategies"
instances = 1
hosts = ["strat"]
"""
HOST_FILES = {
    "md": {"tp.target", "tp-gateway.service"},
    "strat": {"tp.target", "tp-strategy-trend@.service", "tp-strategy-revert@.service", "tp-strategy-py@.service"},
    "exec": {"tp.target", "tp-dead_letter.service", "tp-dll_gateway.service", "tp-executor.service"},
}


def read_unit(path):
    """{section: {key: value}} of a unit file; a key given twice (Environment)
    has its values joined by a space, as systemd adds them up."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = out.setdefault(line.strip("[]"), {})
                continue
            key, value = line.split("=", 1)
            section[key] = section[key] + " " + value if key in section else value
    return out


def exec_argv(exec_start, shard=None):
    """ExecStart's words as systemd passes them: quotes and %%/$$ undone,
    %i the instance name (the shard k)."""
    words = []
    for w in shlex.split(exec_start):
        if w == "%i":
            words.append(str(shard))
            continue
        words.append(w.replace("%%", "%").replace("$$", "$"))
    return words


class Generated(unittest.TestCase):
    """Writes the units of the example with the real script in a temporary
    directory whose names need quoting (a space and a % in each)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_units_")
        self.addCleanup(self.tmp.cleanup)
        self.etc = os.path.join(self.tmp.name, "etc tp %x")
        os.makedirs(os.path.join(self.etc, "strategies"))
        self.config = os.path.join(self.etc, "three_hosts.toml")
        with open(SAMPLE) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text + PY_GROUP)
        self.bin_dir = os.path.join(self.tmp.name, "bin dir")
        self.run_dir = os.path.join(self.tmp.name, "run")

    def generate(self, host=None, config=None, *extra):
        out = os.path.join(self.tmp.name, f"units-{host}")
        cmd = [sys.executable, TP_UNITS, "--config", config or self.config, "--out", out,
               "--bin-dir", self.bin_dir, "--run-dir", self.run_dir, "--systemd-version", "252", *extra]
        if host:
            cmd += ["--host", host]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return r, out


class UnitsContent(Generated):
    def test_each_host_has_its_programs_and_shards_only(self):
        seen = []
        for host, files in HOST_FILES.items():
            r, out = self.generate(host)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(set(os.listdir(out)), files, host)
            seen += [f for f in files if f != "tp.target"]
            target = read_unit(os.path.join(out, "tp.target"))
            self.assertEqual(target["Install"]["WantedBy"], "multi-user.target")
            wants = target["Unit"]["Wants"].split()
            if host == "strat":
                self.assertEqual(wants, ["tp-strategy-trend@0.service", "tp-strategy-trend@1.service",
                                         "tp-strategy-revert@0.service", "tp-strategy-py@0.service"])
            else:
                self.assertEqual(sorted(wants), sorted(files - {"tp.target"}))
        self.assertEqual(len(seen), len(set(seen)), "a unit on two hosts")

    def test_services_are_notify_with_watchdog_backoff_limits_and_stop_grace(self):
        settings = load_settings(self.config)
        for host in HOST_FILES:
            _, out = self.generate(host)
            for name in os.listdir(out):
                if name == "tp.target":
                    continue
                u = read_unit(os.path.join(out, name))
                s = u["Service"]
                self.assertEqual(s["Type"], "notify", name)
                self.assertEqual(s["WatchdogSec"], f"{settings.hang_timeout_ms}ms", name)
                self.assertEqual(s["Restart"], "on-failure", name)
                self.assertEqual(s["RestartSec"], f"{settings.backoff_min_ms}ms", name)
                self.assertNotIn("RestartSteps", s, "systemd 252 has no RestartSteps")
                self.assertEqual(s["KillSignal"], "SIGTERM", name)
                self.assertEqual(s["TimeoutStopSec"], f"{settings.stop_grace_ms}ms", name)
                self.assertEqual(s["MemoryMax"], "256M" if "py@" in name else "128M", name)
                self.assertEqual(s["LimitNOFILE"], "65536", name)
                self.assertEqual(s["TasksMax"], "64", name)
                self.assertEqual(u["Unit"]["PartOf"], "tp.target", name)
                self.assertEqual(u["Unit"]["StartLimitBurst"], str(settings.flap_max_restarts), name)
                self.assertEqual(u["Unit"]["StartLimitIntervalSec"], f"{settings.flap_window_s}s", name)
                self.assertEqual(u["Install"]["WantedBy"], "tp.target", name)

    def test_exec_start_and_environment_are_the_supervisors(self):
        # With metrics on: each program's port, each shard's by its drop-in.
        overrides = ["metrics.port=9100"]
        settings = load_settings(self.config, overrides)
        config = os.path.abspath(self.config)
        for host in HOST_FILES:
            _, out = self.generate(host, None, "--set", overrides[0], "--python", sys.executable)
            supervisor = Arbiter(settings, self.run_dir, self.bin_dir, config, overrides, host=host,
                                 python_dir=os.path.join(REPO, "strategy", "python"))
            self.assertTrue(supervisor.procs)
            for proc in supervisor.procs:
                shard = proc.index is not None
                name = f"tp-strategy-{proc.group}@.service" if shard else f"tp-{proc.program}.service"
                s = read_unit(os.path.join(out, name))["Service"]
                port = None
                if shard:
                    self.assertIn("--shard %i ", s["ExecStart"])
                    self.assertEqual(s["SyslogIdentifier"], f"{proc.group}-%i")
                    self.assertIn("TP_METRICS_PORT=0", exec_argv(s["Environment"]))
                    dropin = read_unit(os.path.join(out, f"tp-strategy-{proc.group}@{proc.index}.service.d",
                                                    "metrics-port.conf"))
                    port = dropin["Service"]["Environment"].removeprefix("TP_METRICS_PORT=")
                argv = [w.replace("${TP_METRICS_PORT}", port) if port else w
                        for w in exec_argv(s["ExecStart"], proc.index)]
                self.assertEqual(argv, supervisor.command(proc), f"{host}: {proc.name}")
                if proc.kind == "python":
                    path = [w for w in exec_argv(s["Environment"]) if w.startswith("PYTHONPATH=")][0]
                    want = supervisor.environment(proc)["PYTHONPATH"]
                    self.assertTrue(want.startswith(path.removeprefix("PYTHONPATH=")), (path, want))
                    self.assertIn(os.path.join(self.etc, "strategies"), path)

    def test_start_order_is_the_supervisors_on_each_host(self):
        _, out = self.generate("exec")
        after = {n: read_unit(os.path.join(out, f"tp-{n}.service"))["Unit"]["After"].split()
                 for n in ("dead_letter", "dll_gateway", "executor")}
        self.assertEqual(after["dead_letter"], ["network-online.target"])
        self.assertEqual(after["dll_gateway"], ["network-online.target", "tp-dead_letter.service"])
        self.assertEqual(after["executor"], ["network-online.target", "tp-dead_letter.service",
                                             "tp-dll_gateway.service"])
        # One machine: the shards after the executor, the gateway after the shards.
        r, out = self.generate(None, os.path.join(REPO, "config", "default.toml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        shard = read_unit(os.path.join(out, "tp-strategy-trend@.service"))["Unit"]["After"].split()
        self.assertEqual(shard[-1], "tp-executor.service")
        gateway = read_unit(os.path.join(out, "tp-gateway.service"))["Unit"]["After"].split()
        self.assertEqual(gateway[-3:], ["tp-strategy-trend@0.service", "tp-strategy-trend@1.service",
                                        "tp-strategy-revert@0.service"])
        self.assertEqual(set(os.listdir(out)), {"tp.target", "tp-gateway.service", "tp-executor.service",
                                                "tp-dll_gateway.service", "tp-dead_letter.service",
                                                "tp-strategy-trend@.service", "tp-strategy-revert@.service"})

    def test_host_is_required_with_hosts_and_refused_without(self):
        r, _ = self.generate(None)
        self.assertEqual(r.returncode, 1)
        self.assertIn("name one with --host (md, strat, exec)", r.stderr)
        r, _ = self.generate("nowhere")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no host 'nowhere'", r.stderr)
        r, _ = self.generate("md", os.path.join(REPO, "config", "default.toml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("it has no [[hosts]]: leave --host out", r.stderr)

    def test_systemd_254_backs_off_as_the_supervisor(self):
        r, out = self.generate("md", None, "--systemd-version", "254")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = read_unit(os.path.join(out, "tp-gateway.service"))["Service"]
        # 250 ms doubling to 8 s: five steps.
        self.assertEqual((s["RestartSec"], s["RestartSteps"], s["RestartMaxDelaySec"]), ("250ms", "5", "8000ms"))


@unittest.skipIf(not shutil.which("systemd-analyze"), "SKIPPED: systemd-analyze is not installed (Debian's systemd)")
@unittest.skipIf(MISSING, f"SKIPPED: real binaries missing in TP_BIN_DIR={BIN_DIR!r}: {MISSING}")
class SystemdAnalyzeVerify(Generated):
    def setUp(self):
        super().setUp()
        os.makedirs(self.bin_dir)
        for p in [*PROGRAMS, "strategy"]:
            os.symlink(os.path.join(os.path.abspath(BIN_DIR), p), os.path.join(self.bin_dir, p))

    def verify(self, out):
        """systemd-analyze verify of every unit in `out` and of each shard
        tp.target wants (a template is checked through its instances)."""
        wants = read_unit(os.path.join(out, "tp.target"))["Unit"]["Wants"].split()
        units = [os.path.join(out, n) for n in sorted(os.listdir(out)) if "@." not in n and not n.endswith(".d")]
        units += [os.path.join(out, n) for n in wants if "@" in n]
        r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=120,
                           cwd=out)
        # verify prints nothing for good units; a warning (an unknown key)
        # does not fail it, so its output is checked too.
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), f"{out}: {units}")
        return units

    def test_every_host_of_three_verifies(self):
        checked = []
        for host in HOST_FILES:
            # Metrics on: the shards' drop-ins are read too.
            r, out = self.generate(host, None, "--set", "metrics.port=9100")
            self.assertEqual(r.returncode, 0, r.stderr)
            checked += self.verify(out)
        self.assertIn("tp-strategy-trend@1.service", [os.path.basename(u) for u in checked])

    def test_one_machine_verifies(self):
        r, out = self.generate(None, os.path.join(REPO, "config", "default.toml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.verify(out)

    def test_a_broken_unit_fails_verify(self):
        # The check above can fail: a binary that is not there is refused.
        r, out = self.generate("md")
        os.remove(os.path.join(self.bin_dir, "gateway"))
        r = subprocess.run(["systemd-analyze", "verify", os.path.join(out, "tp-gateway.service")],
                           capture_output=True, text=True, timeout=60, cwd=out)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout + r.stderr, re.escape("is not executable"))


if __name__ == "__main__":
    unittest.main()
