"""The programs' stats files, as the supervisor reads them: for the heartbeat
(policy.Heartbeat) and for the reports."""

import json
import os


# tpctl top's rate columns (top.py): each the first counter of its list that
# a program's stats have (the gateway publishes ticks, a strategy and
# dll_gateway receive them; a strategy emits signals, the executor receives
# them; the executor sends orders, dll_gateway receives them). A strategy's
# stale signals are the ones it did not send because their tick was too old
# (a backlog after a pause or a cut link). A dead letter is counted by the
# program that sent it and by the sink that wrote it.
RATE_COLUMNS = (
    ("TICKS/S", ("ticks_published", "ticks_received")),
    ("SIGNALS/S", ("signals_emitted", "signals_received")),
    ("STALE/S", ("signals_stale",)),
    ("ORDERS/S", ("orders_sent", "orders_received")),
    ("FILLS/S", ("fills",)),
    ("DEAD/S", ("dead_letters",)),
)

# What tpctl top reads of a stats file (top.py): sent in a status reply with
# "stats" (a host's supervisor to tpctl on another host), nothing more, so
# that a reply stays small however much a program's stats hold.
TOP_FIELDS = (("pid", "ts_ns")
              # the rate columns' counters
              + tuple(key for _, keys in RATE_COLUMNS for key in keys)
              # the alerts
              + ("alert", "disk_low", "disk_free_bytes", "disk_floor_bytes", "feed_alive", "breaker",
                 "broker_alive")
              # the executor's heading and positions
              + ("trading_state", "trading_state_cause", "open_orders", "equity", "account_currency",
                 "daily_pnl", "latency_tick_to_fill_us", "positions"))


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
