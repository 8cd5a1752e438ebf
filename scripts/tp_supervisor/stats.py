"""The programs' stats files, as the supervisor reads them: for the heartbeat
(policy.Heartbeat) and for the reports."""

import json
import os


def read_stats(run_dir: str, name: str):
    """The parsed <run_dir>/<name>.stats.json, or None when missing/unreadable."""
    try:
        with open(os.path.join(run_dir, name + ".stats.json"), "rb") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def stats_signature(run_dir: str, name: str):
    """(mtime_ns, inode, size) of <run_dir>/<name>.stats.json, or None: one
    stat(2), cheap enough to poll every loop; the file is only parsed when
    this changes (the programs replace it atomically, so a write is a new inode)."""
    try:
        st = os.stat(os.path.join(run_dir, name + ".stats.json"))
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)
