"""Where the supervisor finds the programs and the Python strategy runtime
(scripts/tp_supervisor/layout.py): build/release/bin and strategy/python in a
checkout, as before packaging; bin/ and its own directory in an installed
tree (cmake/Packaging.cmake's layout), whatever the prefix."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "scripts")
sys.dont_write_bytecode = True
sys.path.insert(0, SCRIPTS)
from tp_supervisor import layout  # noqa: E402
from tp_supervisor.arbiter import Arbiter  # noqa: E402
from tp_supervisor.settings import parse_settings  # noqa: E402

PY_GROUP = '[[strategy.groups]]\nname = "py"\nkind = "python"\nentry = "m:C"\n'


class CheckoutLayoutTest(unittest.TestCase):
    def test_a_checkout_runs_build_release_and_strategy_python(self):
        self.assertEqual(layout.SCRIPTS_DIR, SCRIPTS)
        self.assertFalse(layout.installed())
        self.assertEqual(layout.default_bin_dir(), os.path.join(REPO, "build", "release", "bin"))
        self.assertEqual(layout.strategy_python_dir(), os.path.join(REPO, "strategy", "python"))
        self.assertTrue(os.path.isfile(os.path.join(layout.strategy_python_dir(), "tp_strategy", "__init__.py")))

    def test_a_python_group_gets_the_runtime_of_its_supervisor_on_its_path(self):
        arb = Arbiter(parse_settings(PY_GROUP), "/r", "/bin-dir", None, [], out=None, err=None)
        env = arb.environment(arb.instances("py")[0])
        self.assertEqual(env["PYTHONPATH"].split(os.pathsep)[0], os.path.join(REPO, "strategy", "python"))


class InstalledLayoutTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tplayout")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        # An installed tree at an unusual prefix: lib/trading-pipeline with bin/.
        self.home = os.path.join(self.tmp, "opt", "lib", "trading-pipeline")
        os.makedirs(os.path.join(self.home, "bin"))

    def test_an_installed_tree_runs_its_own_bin_and_runtime(self):
        self.assertTrue(layout.installed(self.home))
        self.assertEqual(layout.default_bin_dir(self.home), os.path.join(self.home, "bin"))
        self.assertEqual(layout.strategy_python_dir(self.home), self.home)

    def test_an_installed_supervisor_looks_for_the_programs_beside_itself(self):
        # A copy, not a symlink: the layout follows the script's real path.
        shutil.copy(os.path.join(SCRIPTS, "supervisor.py"), self.home)
        shutil.copytree(os.path.join(SCRIPTS, "tp_supervisor"), os.path.join(self.home, "tp_supervisor"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        r = subprocess.run([sys.executable, os.path.join(self.home, "supervisor.py"),
                            "--run-dir", os.path.join(self.tmp, "run"), "--duration", "1"],
                           capture_output=True, text=True, timeout=30, cwd=self.tmp)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, rf"no executable .*gateway.* in {os.path.join(self.home, 'bin')} ")


if __name__ == "__main__":
    unittest.main()
