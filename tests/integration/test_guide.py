"""docs/STRATEGIES.md's ten minutes, as a test: the strategy SDK installed
from this build (cmake --install --component sdk), the example C++ plugin
(examples/strategies) built out of tree against it, the example Python
strategy (examples/python/my_strategies.py), and the guide's deployment
(a built-in, the plugin and the Python class side by side) run under the
real supervisor with the real programs. Every group trades (the executor's
fills per group), tpctl status shows the three, `scale cross 2` and
`restart ema:0` work while the rest runs on, and the summary at shutdown
names every group. Skips when the binaries or the build dir are missing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))

from svtest import PROGRAMS, REPO, SupervisorRun, endpoints_toml, supervisor as sv, wait_for  # noqa: E402

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
BUILD_DIR = os.environ.get("TP_BUILD_DIR", "")
CXX = os.environ.get("TP_CXX", "")
MISSING = [p for p in PROGRAMS if not os.access(os.path.join(BIN_DIR, p), os.X_OK)]
if not os.path.isfile(os.path.join(BUILD_DIR, "CMakeCache.txt")):
    MISSING.append(f"build dir TP_BUILD_DIR={BUILD_DIR or '(unset)'}")
SKIP_WHY = f"SKIPPED: missing {', '.join(MISSING)}" if MISSING else ""
if MISSING:
    print(SKIP_WHY, file=sys.stderr)

WAIT_S = 45.0
GROUPS = ("trend", "ema", "cross")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def build_example_plugin(tmp) -> str:
    """The guide's three commands: install the SDK, configure and build the example against it."""
    prefix = os.path.join(tmp, "tp-sdk")
    run(["cmake", "--install", BUILD_DIR, "--prefix", prefix, "--component", "sdk"])
    build = os.path.join(tmp, "strategies")
    configure = ["cmake", "-S", os.path.join(REPO, "examples", "strategies"), "-B", build,
                 f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"]
    if CXX:
        configure.append(f"-DCMAKE_CXX_COMPILER={CXX}")
    run(configure)
    run(["cmake", "--build", build])
    plugin = os.path.join(build, "libema_trend.so")
    assert os.path.isfile(plugin), f"the example build made no {plugin}"
    return plugin


def deployment(tmp, plugin) -> str:
    """The guide's mine.toml, on this test's endpoints and run dir."""
    return "\n".join([
        "[run]", "stats_interval_ms = 200",
        *endpoints_toml(tmp),
        "[gateway]", "rate = 2000",
        # as in docs/STRATEGIES.md
        "[[strategy.groups]]", 'name = "trend"', 'kind = "sma_crossover"', "instances = 2",
        "[[strategy.groups]]", 'name = "ema"', 'kind = "plugin"', f'plugin = "{plugin}"',
        'instruments = ["EURUSD", "GBPUSD"]', "max_position = 5000",
        "[strategy.groups.params]", "fast = 8", "slow = 40",
        "[[strategy.groups]]", 'name = "cross"', 'kind = "python"', 'entry = "my_strategies:Cross"',
        f'python_path = "{os.path.join(REPO, "examples", "python")}"',
        "[strategy.groups.params]", "fast = 5", "slow = 20",
        "[supervisor]", "backoff_min_ms = 100", "backoff_max_ms = 1000", "stop_grace_ms = 5000",
        "",
    ])


@unittest.skipIf(MISSING, SKIP_WHY)
class GuideTest(unittest.TestCase):
    def setUp(self):
        # Short path: ipc:// and the control socket have a 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="tpg", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        plugin = build_example_plugin(self.tmp)
        config = os.path.join(self.tmp, "mine.toml")
        with open(config, "w") as f:
            f.write(deployment(self.tmp, plugin))
        self.run_ = SupervisorRun(self.tmp, BIN_DIR, ["--config", config, "--summary"])
        self.addCleanup(self.run_.close)

    def tpctl(self, *args):
        r = self.run_.tpctl(*args)
        self.assertEqual(r.returncode, 0, f"tpctl {' '.join(args)}: {r.stderr}\n{self.detail()}")
        return r.stdout

    def executor_groups(self):
        return (sv.read_stats(self.run_.run_dir, "executor") or {}).get("groups") or {}

    def fills(self, group):
        return self.executor_groups().get(group, {}).get("fills", 0)

    def detail(self):
        parts = [f"executor groups: {json.dumps(self.executor_groups())}"]
        for name in ("trend-0", "ema-0", "cross-0"):
            parts.append(f"{name}: {sv.read_stats(self.run_.run_dir, name)}")
            try:
                with open(os.path.join(self.run_.run_dir, "logs", name + ".log"), errors="replace") as f:
                    parts.append(f"-- {name}.log:\n" + "".join(f.readlines()[-8:]))
            except OSError:
                pass
        return "\n".join(parts) + "\n" + self.run_.status_text()

    def test_the_guides_deployment(self):
        self.run_.wait_all_running(timeout=WAIT_S, count=4 + 2 + 1 + 1)  # programs + the groups
        wait_for(lambda: all(self.fills(g) > 0 for g in GROUPS), WAIT_S,
                 what="a fill for every group (built-in, plugin, python)", detail=self.detail)
        status = self.tpctl("status")
        for name in ("trend-0", "trend-1", "ema-0", "cross-0"):
            self.assertIn(name, status)

        # The guide's operations, each leaving the other groups running.
        trend_pids = {n: p["pid"] for n, p in self.run_.status().items() if n.startswith("trend-")}
        self.tpctl("scale", "cross", "2")
        self.run_.wait_state("cross-1", "RUNNING", timeout=WAIT_S)
        ema_pid = self.run_.status()["ema-0"]["pid"]
        self.tpctl("restart", "ema:0")
        self.run_.wait_state("ema-0", "RUNNING", timeout=WAIT_S, pred=lambda p: p["pid"] != ema_pid)
        ema_fills = self.fills("ema")
        wait_for(lambda: self.fills("ema") > ema_fills, WAIT_S, what="the restarted plugin trading again",
                 detail=self.detail)
        self.assertEqual({n: p["pid"] for n, p in self.run_.status().items() if n.startswith("trend-")},
                         trend_pids, "the built-in group was disturbed")
        for name in ("ema-0", "cross-0", "cross-1", "trend-0"):
            st = sv.read_stats(self.run_.run_dir, name) or {}
            self.assertEqual(st.get("strategy_errors", 0), 0, f"{name} threw: {self.detail()}")

        self.tpctl("shutdown")
        self.assertEqual(self.run_.wait_exit(timeout=60), 0, self.run_.log())
        with open(self.run_.log_path, errors="replace") as f:
            summary = f.read()
        for group in GROUPS:
            self.assertIn(group, summary)


if __name__ == "__main__":
    unittest.main()
