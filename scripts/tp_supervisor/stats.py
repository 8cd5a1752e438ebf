"""The programs' stats files, as the supervisor reads them: for the heartbeat
(policy.Heartbeat) and for the reports."""

import json
import os


# What tpctl top reads of a stats file (top.py): sent in a status reply with
# "stats" (a host's supervisor to tpctl on another host), nothing more, so
# that a reply stays small however much a program's stats hold.
TOP_FIELDS = (
    "pid", "ts_ns",
    # the rate columns' counters (top.RATE_COLUMNS)
    "ticks_published", "ticks_received", "signals_emitted", "signals_received", "signals_stale",
    "orders_sent", "orders_received", "fills", "dead_letters",
    # the alerts
    "alert", "disk_low", "disk_free_bytes", "disk_floor_bytes", "feed_alive", "breaker", "broker_alive",
    # the executor's heading and positions
    "trading_state", "trading_state_cause", "open_orders", "equity", "account_currency", "daily_pnl",
    "latency_tick_to_fill_us", "positions",
)


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


def current_stats(run_dir: str, processes, already_read=None) -> dict:
    """name -> its stats file, for each of `processes` (a status reply's)
    whose file was written by the pid the supervisor runs now: a file left
    by an earlier life says nothing of this one. `already_read`: name -> what
    read_stats gave for a file the caller has read already (it is not read
    again)."""
    already_read = already_read or {}
    out = {}
    for p in processes:
        name = p["name"]
        data = already_read[name] if name in already_read else read_stats(run_dir, name)
        if data is not None and p.get("pid") and data.get("pid") == p["pid"]:
            out[name] = data
    return out
