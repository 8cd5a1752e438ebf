"""Where the programs and the Python strategy runtime are, seen from the
scripts: in a checkout, or in an installed tree (`cmake --install`, the
Debian package). The same scripts run in both, so the difference is found
on disk rather than configured.

  checkout    <repo>/scripts/                 programs: <repo>/build/release/bin
                                              runtime:  <repo>/strategy/python
  installed   <prefix>/lib/trading-pipeline/  programs: <prefix>/lib/trading-pipeline/bin
                                              runtime:  <prefix>/lib/trading-pipeline/tp_strategy

An installed tree is the one with bin/ beside the scripts: a checkout's
scripts/ has none, and the install puts the programs there (CMakeLists.txt)
so that an installed supervisor needs no --bin-dir, wherever the prefix.
Installed, tp_strategy sits beside tp_supervisor and tp_proto.py, which it
imports: one directory on PYTHONPATH serves both (a checkout's runtime finds
scripts/ from its own place instead: tp_strategy/_shared.py).
"""

import os

# The directory of supervisor.py and tpctl (symlinks resolved: /usr/bin/tpctl
# points into the installed tree).
SCRIPTS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def installed(scripts_dir: str = SCRIPTS_DIR) -> bool:
    return os.path.isdir(os.path.join(scripts_dir, "bin"))


def default_bin_dir(scripts_dir: str = SCRIPTS_DIR) -> str:
    """The programs' directory when neither --bin-dir nor supervisor.bin_dir says."""
    if installed(scripts_dir):
        return os.path.join(scripts_dir, "bin")
    return os.path.join(os.path.dirname(scripts_dir), "build", "release", "bin")


def strategy_python_dir(scripts_dir: str = SCRIPTS_DIR) -> str:
    """The directory holding the tp_strategy package (a python group's
    `python3 -m tp_strategy` needs it on PYTHONPATH)."""
    if installed(scripts_dir):
        return scripts_dir
    return os.path.join(os.path.dirname(scripts_dir), "strategy", "python")
