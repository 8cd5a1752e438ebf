"""What the supervisor reports: the status reply (JSON), the status line
(--status-line) and the summary (--summary), from its processes and the
programs' stats files."""

import collections
import os
import re
import sqlite3
import time

from .states import RUNNING
from .stats import read_stats


# The executor's per-group figures (executor.stats.json "groups": {G: {...}}).
GROUP_FIGURES = ("signals", "rejected", "fills", "positions", "realized_pnl")


def executor_groups(ex) -> dict:
    """executor.stats.json's "groups" (group -> figures), {} when it has none."""
    groups = (ex or {}).get("groups")
    return {g: v for g, v in groups.items() if isinstance(v, dict)} if isinstance(groups, dict) else {}


def groups_status(arb, ex=None) -> list:
    """One entry per group, in config order: its kind, instance count and
    instruments, with the executor's figures for it when its stats have them;
    then groups the executor knows that the deployment does not (any more)."""
    figures = executor_groups(ex if ex is not None else read_stats(arb.run_dir, "executor"))
    out = []
    for g in arb.groups.values():
        entry = {"name": g.name, "kind": g.kind, "instances": len(arb.instances(g.name)),
                 "instruments": list(g.instruments)}
        if g.name in figures:
            entry["executor"] = {k: figures[g.name][k] for k in GROUP_FIGURES if k in figures[g.name]}
        out.append(entry)
    for name in sorted(set(figures) - set(arb.groups)):
        out.append({"name": name, "kind": None, "instances": 0, "instruments": [],
                    "executor": {k: figures[name][k] for k in GROUP_FIGURES if k in figures[name]}})
    return out


def status(arb) -> dict:
    """The reply to {"cmd": "status"}."""
    now = time.monotonic()
    return {"ok": True, "pid": os.getpid(), "run_dir": arb.run_dir,
            "bin_dir": arb.bin_dir, "instances": len(arb.instances()),
            "shutting_down": arb.shutting_down,
            "groups": groups_status(arb),
            "processes": [p.to_json(now) for p in arb.procs]}


def _strategy_stats(run_dir, group=None):
    """<G>-<k>.stats.json of every group (or of `group`), departed
    instances' included: name -> parsed stats (None if unreadable). A group
    name has no "-", so "<G>-<digits>" is never another group's file."""
    pattern = re.compile(r"^([a-z][a-z0-9_]*)-(\d+)\.stats\.json$")
    found = []
    for f in _listdir(run_dir):
        m = pattern.match(f)
        if m and (group is None or m.group(1) == group):
            found.append((m.group(1), int(m.group(2)), f[:-len(".stats.json")]))
    return {n: read_stats(run_dir, n) for _, _, n in sorted(found)}


# A strategy's counters that the reports add up over all of its lives: a
# restarted process starts them from 0 in its new stats file.
COUNTED = ("signals_emitted", "signals_acked")


def remember_life(lives: dict, run_dir: str, name: str, pid) -> None:
    """Keeps the counters of `name`'s stats file in lives[name][pid] if pid
    `pid` wrote it (called when that process has exited: its file is its
    last word, or at most one stats period older after a SIGKILL)."""
    data = read_stats(run_dir, name)
    if data and data.get("pid") == pid:
        lives.setdefault(name, {})[pid] = {k: data[k] for k in COUNTED if _num(data.get(k))}


def _strategy_totals(arb, group=None):
    """name -> {counter: sum over every life of that instance} for the
    instances of every group (or of `group`) with a stats file or a past life;
    a counter no life has is None. A life is a pid: the current stats file's
    replaces what was kept of the same pid."""
    current = _strategy_stats(arb.run_dir, group)
    lives = getattr(arb, "lives", {})
    names = set(current) | {n for n in lives if group is None or n.rpartition("-")[0] == group}
    out = {}
    for name in sorted(names, key=lambda n: (n.rpartition("-")[0], int(n.rpartition("-")[2]))):
        per_pid = dict(lives.get(name, {}))
        data = current.get(name)
        if data:
            per_pid[data.get("pid")] = {k: data[k] for k in COUNTED if _num(data.get(k))}
        out[name] = {k: _sum(per_pid.values(), k) for k in COUNTED}
    return out


def _sum(stats, key):
    """The sum of `key` over the stats that have it; None when none has."""
    values = [s.get(key) for s in stats if s and _num(s.get(key))]
    return sum(values) if values else None


def status_line(arb, elapsed: float) -> str:
    gw = read_stats(arb.run_dir, "gateway") or {}
    ex = read_stats(arb.run_dir, "executor") or {}
    dl = read_stats(arb.run_dir, "dead_letter") or {}
    signals = _sum(_strategy_totals(arb).values(), "signals_emitted")
    per_group = ""
    if len(arb.groups) > 1:
        per_group = " (" + " ".join(
            f"{g} {_fmt(_sum(_strategy_totals(arb, g).values(), 'signals_emitted'))}"
            for g in arb.groups) + ")"
    positions = ex.get("positions")
    open_pos = (sum(1 for v in positions.values()
                    if isinstance(v, dict) and v.get("position")) if isinstance(positions, dict) else None)
    states = collections.Counter(p.state for p in arb.procs)
    bad = [f"{p.name}={p.state}" for p in arb.procs if p.state != RUNNING]
    state_txt = f"{states[RUNNING]}/{len(arb.procs)} running" + (f" ({', '.join(bad)})" if bad else "")
    return (f"[{elapsed:6.1f}s] ticks/s {_fmt(gw.get('ticks_per_s'), 0)}  "
            f"ticks {_fmt(gw.get('ticks_published'))}  "
            f"signals {_fmt(signals)}{per_group}  "
            f"orders {_fmt(ex.get('orders_sent'))}  fills {_fmt(ex.get('fills'))}  "
            f"working {_fmt(ex.get('orders_working'))}  "
            f"open positions {_fmt(open_pos)}  dead letters {_fmt(dl.get('dead_letters'))}  "
            f"| {state_txt}")


def summary(arb) -> str:
    gw = read_stats(arb.run_dir, "gateway") or {}
    ex = read_stats(arb.run_dir, "executor") or {}
    dg = read_stats(arb.run_dir, "dll_gateway") or {}
    dl = read_stats(arb.run_dir, "dead_letter") or {}
    strat = _strategy_totals(arb)
    width = max([14] + [len(p.name) + 2 for p in arb.procs])
    lines = [f"== summary ({arb.run_dir}) ==",
             f"{'process':<{width}}{'state':<10}{'restarts':>9}  last exit"]
    for p in arb.procs:
        lines.append(f"{p.name:<{width}}{p.state:<10}{p.restarts:>9}  {p.last_exit or '-'}")
    sig_parts = [f"{n} {_fmt(s.get('signals_emitted'))}" for n, s in strat.items()]
    lines += [
        f"ticks published:  {_fmt(gw.get('ticks_published'))}",
        f"signals emitted:  {_fmt(_sum(strat.values(), 'signals_emitted'))}"
        + (f" ({', '.join(sig_parts)})" if sig_parts else ""),
        f"orders sent:      {_fmt(ex.get('orders_sent'))}",
        f"fills:            {_fmt(ex.get('fills'))}"
        f" (partial {_fmt(ex.get('partial_fills'))}, broker rejects {_fmt(ex.get('broker_rejects'))})",
        order_life_line(ex),
        report_stream_line(ex, dg),
    ]
    lines += group_summary(arb, ex, order_books(arb.run_dir))
    positions = ex.get("positions")
    if isinstance(positions, dict) and positions:
        lines.append("positions (all groups):")
        for sym in sorted(positions):
            v = positions[sym] if isinstance(positions[sym], dict) else {}
            lines.append(f"  {sym:<10} position {_fmt(v.get('position'), 0):>10}  "
                         f"avg price {_fmt(v.get('avg_price'), 5):>10}  "
                         f"realised PnL {_fmt(v.get('realized_pnl'), 2):>10}")
    else:
        lines.append("positions:        n/a" if positions is None else "positions:        none")
    by_reason = dl.get("by_reason")
    if isinstance(by_reason, dict) and by_reason:
        reasons = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(by_reason.items()))
    else:
        reasons = "none" if isinstance(by_reason, dict) else "n/a"
    lines.append(f"dead letters:     {_fmt(dl.get('dead_letters'))} (by reason: {reasons})")
    lat = ex.get("latency_tick_to_fill_us")
    lat = lat if isinstance(lat, dict) else {}
    lines.append(f"tick->fill latency: p50 {_fmt(lat.get('p50'), 0)} us, p99 {_fmt(lat.get('p99'), 0)} us"
                 f" (n={_fmt(lat.get('count'))})")
    return "\n".join(lines)


def order_life_line(ex) -> str:
    """What became of the orders beyond their first answer (executor stats):
    working at the broker now, canceled (by whom), expired there."""
    refused = ex.get("cancels_refused")
    refused = sum(v for v in refused.values() if _num(v)) if isinstance(refused, dict) else None
    return (f"order life:       working {_fmt(ex.get('orders_working'))}, "
            f"canceled {_fmt(ex.get('canceled'))} (cancel requests {_fmt(ex.get('cancel_requests'))}, "
            f"sent to the broker {_fmt(ex.get('cancels_sent'))}, refused {_fmt(refused)}), "
            f"expired {_fmt(ex.get('expired_at_broker'))}")


def report_stream_line(ex, dg) -> str:
    """The execution report stream end to end: what dll_gateway stored (and
    published) against what the executor took in, and how: applied (news:
    a later fill, cancel or expiry), known (it had applied the answer that
    carried the same change), gaps found and reports fetched over REQ/REP.
    The two counts agree once the executor has caught up."""
    return (f"reports:          dll_gateway stored {_fmt(dg.get('report_seq'))} "
            f"(broker reports {_fmt(dg.get('broker_reports'))}), executor through seq "
            f"{_fmt(ex.get('report_next_seq') - 1 if _num(ex.get('report_next_seq')) else None)}: "
            f"applied {_fmt(ex.get('reports_applied'))}, known {_fmt(ex.get('reports_known'))}, "
            f"unknown order {_fmt(ex.get('reports_unknown_order'))}; gaps {_fmt(ex.get('report_gaps'))}, "
            f"fetched {_fmt(ex.get('reports_fetched'))}, duplicates {_fmt(ex.get('reports_duplicate'))}, "
            f"invalid transitions {_fmt(ex.get('invalid_transitions'))}")


# Per group from executor.db: its orders, those filled (of which by a
# report: a fill that reached the executor after the answer to the submit, a
# resting order's), resting now (open at the broker), canceled (on request:
# a cancel the strategy or the executor asked for; the others are IOC
# remainders), expired and rejected. A status is text in executor.db.
BOOK_KEYS = ("orders", "filled", "filled_by_report", "resting", "canceled", "canceled_on_request",
             "expired", "rejected")
_BOOK_QUERIES = (
    ("SELECT strategy, COUNT(*), SUM(status = 'FILLED'), "
     "SUM(status IN ('ACCEPTED', 'PARTIALLY_FILLED')), "
     "SUM(status = 'CANCELED'), SUM(status = 'CANCELED' AND cancel_state != ''), "
     "SUM(status = 'EXPIRED'), SUM(status = 'REJECTED') FROM orders GROUP BY strategy",
     ("orders", "filled", "resting", "canceled", "canceled_on_request", "expired", "rejected")),
    ("SELECT o.strategy, COUNT(DISTINCT r.client_order_id) FROM reports r "
     "JOIN orders o ON o.client_order_id = r.client_order_id "
     "WHERE r.applied = 1 AND r.last_quantity > 0 GROUP BY o.strategy",
     ("filled_by_report",)),
)


def order_books(run_dir, path=None):
    """group -> {BOOK_KEYS: count} read from the executor's database
    (<run_dir>/executor.db, read only), or None when it cannot be read: the
    executor holds it exclusively while it runs, so this is for the summary
    after the programs stopped."""
    path = path or os.path.join(run_dir, "executor.db")
    if not os.path.exists(path):
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return None
    books = collections.defaultdict(lambda: dict.fromkeys(BOOK_KEYS, 0))
    try:
        for query, keys in _BOOK_QUERIES:
            for row in con.execute(query):
                books[row[0]].update({k: int(v or 0) for k, v in zip(keys, row[1:])})
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return dict(books)


def terms_text(g) -> str:
    """A group's order terms as the summary names them: "market IOC", or
    "limit GTC 1 bp, cancel after 1000 ms"."""
    if getattr(g, "order_type", "market") != "limit":
        return "market IOC"
    text = f"limit {str(g.time_in_force).upper()}"
    if g.time_in_force == "gtd":
        text += f" {g.good_till_ms} ms" if g.good_till_ms else " (signal TTL)"
    if g.limit_offset_bps:
        text += f" {_fmt(g.limit_offset_bps)} bp{'s' if g.limit_offset_bps != 1 else ''}"
    if g.cancel_after_ms:
        text += f", cancel after {g.cancel_after_ms} ms"
    return text


def group_summary(arb, ex, books=None) -> list:
    """The summary's lines per strategy group: its processes, the signals
    its instances emitted and had acked (over every life of each, departed
    instances' included), and the executor's signals, fills, positions and
    realised PnL for it (executor.stats.json "groups", when it has them);
    with `books` (order_books) what became of its orders."""
    lines = ["strategy groups:"]
    for g in groups_status(arb, ex):
        procs = arb.instances(g["name"])
        kind = g["kind"] or "not in this deployment"
        lines.append(f"  {g['name']} ({kind}): {len(procs)} process{'es' if len(procs) != 1 else ''}"
                     + (" (" + ", ".join(f"{p.name} {p.state}" for p in procs) + ")" if procs else ""))
        stats = _strategy_totals(arb, g["name"]).values()
        fig = g.get("executor")
        lines.append(f"    signals emitted {_fmt(_sum(stats, 'signals_emitted'))}, "
                     f"acked {_fmt(_sum(stats, 'signals_acked'))}; executor: "
                     + (f"signals {_fmt(fig.get('signals'))}, "
                        + (f"rejected {_fmt(fig.get('rejected'))}, " if "rejected" in fig else "")
                        + f"fills {_fmt(fig.get('fills'))}"
                        if fig is not None else "no per-group figures"))
        book = (books or {}).get(g["name"])
        if book is not None:
            spec = arb.groups.get(g["name"])
            lines.append(f"    orders {book['orders']}" + (f" ({terms_text(spec)})" if spec else "")
                         + f": filled {book['filled']} ({book['filled_by_report']} later, by report), "
                         f"resting now {book['resting']}, "
                         f"canceled {book['canceled']} ({book['canceled_on_request']} on request), "
                         f"expired {book['expired']}, rejected {book['rejected']}")
        if fig is None:
            continue
        positions = fig.get("positions") if isinstance(fig.get("positions"), dict) else {}
        pnl = fig.get("realized_pnl") if isinstance(fig.get("realized_pnl"), dict) else {}
        for sym in sorted(set(positions) | set(pnl)):
            lines.append(f"    {sym:<10} position {_fmt(positions.get(sym), 0):>10}  "
                         f"realised PnL {_fmt(pnl.get(sym), 2):>10}")
        if not positions and not pnl:
            lines.append("    no positions")
    return lines


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v, decimals=None) -> str:
    if not _num(v):
        return "n/a"
    if decimals is None:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"
    return f"{v:.{decimals}f}"

