"""The Debian package (cmake/Packaging.cmake), as a host gets it: cpack builds
it from this build tree; its control fields (Depends computed by
dpkg-shlibdeps plus the scripts' Python packages), conffiles, maintainer
scripts and contents are checked, and apt-get --simulate resolves its
Depends on this host; then it is unpacked into a temporary root
(dpkg -x: nothing is installed on this machine) and everything runs from
there, with no path into this checkout: each program's --help, the
commands' --help, the systemd units the unpacked tp-units writes (pointing
into the unpacked tree), and a pipeline started by the unpacked tp-supervisor
without --bin-dir from the shipped default config (a Python group added),
trading through a C++ and the Python group until both have fills, then shut
down by the unpacked tpctl."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
sys.path.insert(0, os.path.join(REPO, "tests", "supervisor"))
from svtest import pid_alive, request  # noqa: E402
from waiting import read_json, wait_for  # noqa: E402

BUILD_DIR = os.environ.get("TP_BUILD_DIR", "")
CPACK = os.environ.get("TP_CPACK", "cpack")
VERSION = os.environ.get("TP_VERSION", "")
PROGRAMS = ["gateway", "strategy", "executor", "dll_gateway", "dead_letter"]
HOME = "usr/lib/trading-pipeline"                 # the package's lib/trading-pipeline
EXAMPLES = "usr/share/doc/trading-pipeline/examples/python"
COMMANDS = {"tp-supervisor": "supervisor.py", "tpctl": "tpctl", "tp-report": "tp_report.py",
            "tp-units": "tp_units.py"}
WAIT_S = 30.0
# Debian's interpreter, the one the package depends on (the scripts' #!):
# python3-zmq and python3-msgpack are its modules.
PYTHON = "/usr/bin/python3"


def run(cmd, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def listing(deb) -> dict:
    """dpkg-deb -c: path (no leading ./, no trailing /) -> (mode, owner, link target or None)."""
    out = {}
    for line in run(["dpkg-deb", "-c", deb], check=True).stdout.splitlines():
        mode, owner, _size, _date, _time, rest = line.split(maxsplit=5)
        path, _, target = rest.partition(" -> ")
        out[path.removeprefix("./").rstrip("/")] = (mode, owner, target or None)
    return out


def package_names(field: str) -> set:
    """The package names of a Depends-style field (alternatives included)."""
    return {alt.split()[0] for dep in field.split(",") for alt in dep.split("|") if alt.strip()}


def clean_env(**extra):
    """The environment of the unpacked commands: nothing pointing into this
    checkout, no bytecode written into the unpacked tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TP_BIN_DIR")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BUILD_DIR or not VERSION:
            raise unittest.SkipTest("TP_BUILD_DIR and TP_VERSION unset: run under ctest")
        # Short path: ipc:// endpoints and the control socket live in it.
        cls.tmp = tempfile.mkdtemp(prefix="tppkg", dir="/tmp")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        out = os.path.join(cls.tmp, "out")
        t0 = time.monotonic()
        r = run([CPACK, "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out],
                timeout=240)
        cpack_s = time.monotonic() - t0
        if r.returncode != 0:
            raise AssertionError(f"cpack failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        cls.arch = run(["dpkg", "--print-architecture"], check=True).stdout.strip()
        cls.deb = os.path.join(out, f"trading-pipeline_{VERSION}_{cls.arch}.deb")
        if not os.path.isfile(cls.deb):
            raise AssertionError(f"no {cls.deb}; cpack wrote {os.listdir(out)}:\n{r.stdout}")
        print(f"package {os.path.basename(cls.deb)}: {os.path.getsize(cls.deb)} bytes, "
              f"cpack {cpack_s:.1f} s", file=sys.stderr)
        cls.files = listing(cls.deb)
        cls.control = os.path.join(cls.tmp, "control")
        run(["dpkg-deb", "-e", cls.deb, cls.control], check=True)
        cls.root = os.path.join(cls.tmp, "root")
        run(["dpkg", "-x", cls.deb, cls.root], check=True)

    def field(self, name) -> str:
        return run(["dpkg-deb", "-f", self.deb, name], check=True).stdout.strip()

    def unpacked(self, path) -> str:
        return os.path.join(self.root, path)

    # -- the package as dpkg sees it ---------------------------------------------

    def test_control_fields(self):
        self.assertEqual(self.field("Package"), "trading-pipeline")
        self.assertEqual(self.field("Version"), VERSION)
        self.assertEqual(self.field("Architecture"), self.arch)
        self.assertRegex(self.field("Maintainer"), r"^\S.* <[^<>@\s]+@[^<>@\s]+>$")
        synopsis, *extended = self.field("Description").splitlines()
        self.assertRegex(synopsis, r"^low-latency trading pipeline over ZeroMQ")
        self.assertRegex(extended[0], r"^ Separate processes")
        depends = self.field("Depends")
        # From dpkg-shlibdeps (the programs' shared libraries) ...
        self.assertLessEqual({"libc6", "libstdc++6", "libzmq5", "libsqlite3-0"}, package_names(depends), depends)
        # ... and written for the scripts.
        self.assertLessEqual({"python3", "python3-zmq", "python3-msgpack"}, package_names(depends), depends)
        self.assertIn("python3 (>= 3.11)", depends)
        self.assertEqual(self.field("Recommends"), "python3-matplotlib")

    @unittest.skipUnless(shutil.which("apt-get"), "no apt-get")
    def test_apt_would_install_it_here(self):
        # `apt install ./FILE.deb` resolves the Depends against this host's
        # packages; --simulate installs nothing (and needs no root).
        r = run(["apt-get", "install", "--simulate", "-o", "Debug::NoLocking=1", self.deb], timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"Inst trading-pipeline ({VERSION} ", r.stdout)

    def test_contents(self):
        f = self.files
        for p in PROGRAMS:
            self.assertEqual(f.get(f"{HOME}/bin/{p}", ("missing",))[0], "-rwxr-xr-x", p)
        self.assertIn(f"{HOME}/bin/libsim_broker.so", f)   # beside dll_gateway, where it looks
        for command, script in COMMANDS.items():
            self.assertEqual(f.get(f"usr/bin/{command}", (None, None, "missing"))[2],
                             f"../lib/trading-pipeline/{script}", command)
            self.assertEqual(f[f"{HOME}/{script}"][0], "-rwxr-xr-x", script)
        self.assertIn(f"{HOME}/tp_proto.py", f)
        # Every module of the supervisor and of the Python runtime, as the tree has them.
        for pkg, src in (("tp_supervisor", "scripts/tp_supervisor"), ("tp_strategy", "strategy/python/tp_strategy")):
            modules = [m for m in os.listdir(os.path.join(REPO, src)) if m.endswith(".py")]
            self.assertTrue(modules)
            for m in modules:
                self.assertIn(f"{HOME}/{pkg}/{m}", f)
        self.assertEqual([p for p in f if "__pycache__" in p], [])
        # The strategy SDK: users build plugins against it.
        self.assertIn("usr/include/tp/strategy.hpp", f)
        self.assertTrue([p for p in f if re.fullmatch(r"usr/lib/(.+/)?libtp_strategy_sdk\.a", p)])
        self.assertTrue([p for p in f if re.fullmatch(
            r"usr/lib/(.+/)?cmake/TradingPipelineSdk/TradingPipelineSdkConfig\.cmake", p)])
        self.assertIn("etc/trading-pipeline/default.toml", f)
        for doc in ("README.md", "docs/ARCHITECTURE.md", "examples/python/my_strategies.py",
                    "config/prometheus/alerts.yml", "config/grafana/trading-pipeline.json",
                    "config/grafana/provisioning/datasources/trading-pipeline.yml",
                    "config/grafana/provisioning/dashboards/trading-pipeline.yml"):
            self.assertIn(f"usr/share/doc/trading-pipeline/{doc}", f)
        # Grafana's dashboard provider, as shipped, reads the directory the dashboard is installed in.
        with open(os.path.join(REPO, "config", "grafana", "provisioning", "dashboards", "trading-pipeline.yml")) as p:
            provider_dir = re.search(r"^ +path: /(\S+)$", p.read(), re.M).group(1)
        self.assertIn(f"{provider_dir}/trading-pipeline.json", f)
        self.assertEqual({owner for _, owner, _ in f.values()}, {"root/root"})

    def test_the_default_config_is_a_conffile(self):
        with open(os.path.join(self.control, "conffiles")) as c:
            self.assertEqual(c.read().split(), ["/etc/trading-pipeline/default.toml"])
        with open(os.path.join(REPO, "config", "default.toml"), "rb") as a, \
                open(self.unpacked("etc/trading-pipeline/default.toml"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_maintainer_scripts_compile_and_remove_the_bytecode(self):
        def caches():
            return [d for d, _, _ in os.walk(self.unpacked(HOME)) if os.path.basename(d) == "__pycache__"]
        # DPKG_ROOT points them at the unpacked root instead of the system.
        env = dict(os.environ, DPKG_ROOT=self.root)
        r = run([os.path.join(self.control, "postinst"), "configure"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.unpacked(f"{HOME}/tp_supervisor/__pycache__"), caches())
        r = run([os.path.join(self.control, "prerm"), "remove"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(caches(), [])

    # -- the unpacked tree runs ---------------------------------------------------

    def test_every_program_runs_from_the_package(self):
        for p in PROGRAMS:
            r = run([self.unpacked(f"{HOME}/bin/{p}"), "--help"], cwd=self.tmp, env=clean_env())
            self.assertEqual(r.returncode, 0, f"{p} --help: {r.stderr}")
            self.assertIn("--config", r.stdout, p)

    def test_every_command_runs_from_the_package(self):
        for command in COMMANDS:
            r = run([self.unpacked(f"usr/bin/{command}"), "--help"], cwd=self.tmp, env=clean_env())
            self.assertEqual(r.returncode, 0, f"{command} --help: {r.stderr}")
            self.assertIn("usage:", r.stdout, command)
        r = run([self.unpacked("usr/bin/tp-supervisor"), "--help"], cwd=self.tmp, env=clean_env())
        self.assertIn("bin/ beside an installed supervisor", " ".join(r.stdout.split()))
        # The Python strategy runtime, from the one directory a python group's PYTHONPATH gets.
        r = run([PYTHON, "-c", "import tp_strategy, tp_supervisor; "
                 "print(tp_strategy.__file__); print(tp_supervisor.__file__)"],
                cwd=self.tmp, env=clean_env(PYTHONPATH=self.unpacked(HOME)))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), [self.unpacked(f"{HOME}/tp_strategy/__init__.py"),
                                            self.unpacked(f"{HOME}/tp_supervisor/__init__.py")])
        r = run([PYTHON, "-m", "tp_strategy", "--help"], cwd=self.tmp,
                env=clean_env(PYTHONPATH=self.unpacked(HOME)))
        self.assertEqual(r.returncode, 0, r.stderr)

    def deployment(self, d) -> str:
        """The shipped /etc/trading-pipeline/default.toml as it is (groups
        trend and revert, C++ built-ins) with a python group added: the
        example strategy shipped in the docs, on the runtime shipped beside
        the supervisor. Written in `d`; its path."""
        config = os.path.join(d, "deploy.toml")
        with open(self.unpacked("etc/trading-pipeline/default.toml")) as f:
            shipped = f.read()
        with open(config, "w") as f:
            f.write("\n".join([
                shipped,
                "[[strategy.groups]]", 'name = "py"', 'kind = "python"', 'entry = "my_strategies:Cross"',
                f'python_path = "{self.unpacked(EXAMPLES)}"',
                "[strategy.groups.params]", "fast = 2", "slow = 5", "",
            ]))
        return config

    def test_the_unpacked_unit_generator_points_into_the_package(self):
        d = tempfile.mkdtemp(prefix="u", dir=self.tmp)
        out = os.path.join(d, "units")
        r = run([self.unpacked("usr/bin/tp-units"), "--config", self.deployment(d), "--out", out,
                 "--run-dir", "/var/lib/trading-pipeline"], cwd=d, env=clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        units = {}
        for name in os.listdir(out):
            with open(os.path.join(out, name)) as f:
                units[name] = f.read()

        def exec_start(unit):
            return re.search(r"^ExecStart=(\S+)", units[unit], re.M).group(1)
        for p in ("gateway", "executor", "dll_gateway", "dead_letter"):
            self.assertEqual(exec_start(f"tp-{p}.service"), self.unpacked(f"{HOME}/bin/{p}"))
        for g in ("trend", "revert"):
            self.assertEqual(exec_start(f"tp-strategy-{g}@.service"), self.unpacked(f"{HOME}/bin/strategy"))
        self.assertIn(f"ExecStart={PYTHON} -m tp_strategy ", units["tp-strategy-py@.service"])
        self.assertIn(f"PYTHONPATH={self.unpacked(EXAMPLES)}:{self.unpacked(HOME)}", units["tp-strategy-py@.service"])

    def test_the_unpacked_supervisor_runs_the_pipeline(self):
        # Only the endpoints move, to ipc:// in this test's directory (--set,
        # as an operator would), so that no port is shared.
        d = tempfile.mkdtemp(prefix="p", dir=self.tmp)
        config = self.deployment(d)
        sets = [f"endpoints.{k}=ipc://{d}/{k}.ipc"
                for k in ("ticks", "signals", "order_events", "orders", "dead_letters")]
        sets.append("run.stats_interval_ms=200")
        run_dir = os.path.join(d, "run")
        log_path = os.path.join(d, "supervisor.out")
        with open(log_path, "wb") as log:
            sup = subprocess.Popen([self.unpacked("usr/bin/tp-supervisor"), "--config", config, "--run-dir", run_dir,
                                    *(a for kv in sets for a in ("--set", kv))],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=d, env=clean_env(), start_new_session=True)
        pids = set()

        def cleanup():
            if sup.poll() is None:
                os.killpg(sup.pid, signal.SIGKILL)
                sup.wait(5)
            for pid in pids:  # each program runs in its own session
                if pid_alive(pid):
                    os.killpg(pid, signal.SIGKILL)
        self.addCleanup(cleanup)

        def status():
            try:
                reply = request(os.path.join(run_dir, "supervisor.sock"), {"cmd": "status"}, timeout=10)
            except (OSError, ValueError):
                return None
            procs = {p["name"]: p for p in reply.get("processes", [])}
            pids.update(p["pid"] for p in procs.values() if p["pid"])
            return procs

        def detail():
            with open(log_path, errors="replace") as f:
                text = "supervisor output:\n" + f.read()[-3000:]
            for name in ("py-0", "trend-0", "trend-1", "dll_gateway"):
                try:
                    with open(os.path.join(run_dir, "logs", name + ".log"), errors="replace") as f:
                        text += f"\n-- {name}.log:\n" + "".join(f.readlines()[-10:])
                except OSError:
                    pass
            return text + f"\nstatus: {status()}"

        st = wait_for(lambda: (lambda s: s if s and len(s) == 8 and all(p["state"] == "RUNNING" for p in s.values())
                               else None)(status()), WAIT_S, what="every process RUNNING", detail=detail)

        def fills(group):
            stats = read_json(os.path.join(run_dir, "executor.stats.json")) or {}
            return (stats.get("groups") or {}).get(group, {}).get("fills", 0)
        wait_for(lambda: fills("trend") > 0 and fills("py") > 0, WAIT_S,
                 what="fills of the C++ and the Python group", detail=detail)

        # Everything from the package: the programs from its bin/ (no
        # --bin-dir given), the Python group's runtime from its tree.
        with open(log_path, errors="replace") as f:
            self.assertIn(f"processes from {self.unpacked(HOME + '/bin')}", f.read())
        with open(f"/proc/{st['py-0']['pid']}/environ", "rb") as f:
            env = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if "=" in kv)
        self.assertEqual(env["PYTHONPATH"].split(os.pathsep), [self.unpacked(EXAMPLES), self.unpacked(HOME)])

        tpctl = self.unpacked("usr/bin/tpctl")
        r = run([tpctl, "--run-dir", run_dir, "status"], cwd=d, env=clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"group py \(python, 1 instance\): signals \d+, (rejected \d+, )?fills [1-9]")
        r = run([tpctl, "--run-dir", run_dir, "shutdown"], cwd=d, env=clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sup.wait(WAIT_S), 0, detail())
        self.assertEqual(json.dumps(sorted(p for p in pids if pid_alive(p))), "[]")


if __name__ == "__main__":
    unittest.main()
