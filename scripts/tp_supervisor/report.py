"""What the supervisor reports: the status reply (JSON), the status line
(--status-line) and the summary (--summary), from its processes and the
programs' stats files."""

import collections
import os
import re
import sqlite3
import time

from . import metrics
from .portfolio import portfolio_settings, read_snapshot
from .settings import ConfigError
from .states import RUNNING
from .stats import TOP_FIELDS, current_stats, read_stats


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


# executor.stats.json's trading state keys -> the status reply's "trading".
TRADING_FIGURES = {"trading_state": "state", "trading_state_cause": "cause",
                   "trading_state_since_ns": "since_ns", "flatten_pending": "flatten_pending",
                   "open_orders": "open_orders"}


def trading_status(ex):
    """The executor's trading state (ACTIVE, REDUCING, HALTED), its cause,
    since when, open orders and flatten pending, from its stats; None when
    they have no trading_state (an executor older than the kill switch)."""
    if not isinstance((ex or {}).get("trading_state"), str):
        return None
    return {out: ex[key] for key, out in TRADING_FIGURES.items() if key in ex}


def status(arb, with_stats: bool = False) -> dict:
    """The reply to {"cmd": "status"}; with `with_stats` ({"cmd": "status",
    "stats": true}) also "stats": name -> what tpctl top reads of each
    process's current stats file (stats.TOP_FIELDS). Each stats file is read
    once: the executor's, read for the groups and trading, is handed on."""
    now = time.monotonic()
    ex = read_stats(arb.run_dir, "executor")
    reply = {"ok": True, "pid": os.getpid(), "host": getattr(arb, "host", None), "run_dir": arb.run_dir,
             "bin_dir": arb.bin_dir, "instances": len(arb.instances()),
             "shutting_down": arb.shutting_down,
             "groups": groups_status(arb, ex or {}),
             "processes": [p.to_json(now) for p in arb.procs]}
    trading = trading_status(ex)
    if trading is not None:
        reply["trading"] = trading
    if arb.s.metrics_port:
        reply["metrics"] = metrics_status(arb)
    if with_stats:
        reply["stats"] = {name: {k: data[k] for k in TOP_FIELDS if k in data}
                          for name, data in current_stats(arb.run_dir, reply["processes"],
                                                          {"executor": ex}).items()}
    return reply


def metrics_status(arb) -> dict:
    """Where the metrics are: the supervisor's endpoint, the targets file,
    and each process's address."""
    host = arb.s.metrics_host
    return {"url": f"http://{metrics.address(host, arb.s.metrics_port)}/metrics",
            "targets_file": os.path.join(arb.run_dir, metrics.TARGETS_FILE),
            "processes": {p.name: metrics.address(host, arb.metrics_port(p)) for p in arb.procs}}


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
            f"equity {_fmt(ex.get('equity'), 2)} {ex.get('account_currency') or ''}  "
            f"trading {ex.get('trading_state') or 'n/a'}  "
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
    snap = read_snapshot(arb.run_dir)
    quotes = quote_currencies(snap)
    lines += group_summary(arb, ex, order_books(arb.run_dir), quotes)
    lines += trading_lines(ex)
    lines += portfolio_lines(ex, snap, _portfolio_settings(arb))
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


def group_summary(arb, ex, books=None, quotes=None) -> list:
    """The summary's lines per strategy group: its processes, the signals
    its instances emitted and had acked (over every life of each, departed
    instances' included), and the executor's signals, fills, positions and
    realised PnL for it (executor.stats.json "groups", when it has them, in
    each instrument's quote currency: `quotes`, else quote_currency_of);
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
                         f"realised PnL {_fmt(pnl.get(sym), 2):>10} {quote_currency_of(sym, quotes)}")
        if not positions and not pnl:
            lines.append("    no positions")
    return lines


def quote_currencies(snap) -> dict:
    """instrument -> quote currency, from the watcher's last valuation."""
    return {v.get("instrument"): v.get("quote_currency") for v in (snap or {}).get("lines", [])
            if isinstance(v, dict) and v.get("quote_currency")}


def quote_currency_of(sym, quotes=None) -> str:
    """An instrument's quote currency: as the executor valued it, else the
    second half of a 6-letter symbol (the config's default), else "?"."""
    if quotes and quotes.get(sym):
        return quotes[sym]
    return sym[3:] if len(sym) == 6 and sym.isalpha() else "?"


def trading_lines(ex) -> list:
    """The executor's trading state (executor.stats.json) at the end."""
    state = ex.get("trading_state")
    if not isinstance(state, str):
        return ["trading:          n/a"]
    text = f"trading:          {state}"
    since = ex.get("trading_state_since_ns")
    if state != "ACTIVE" or ex.get("trading_state_cause"):
        text += f" ({ex.get('trading_state_cause') or 'no cause given'}"
        if _num(since) and since > 0:
            text += ", since " + _clock(since)
        text += ")"
    if ex.get("flatten_pending") is True:
        text += ", flatten pending"
    return [text + f"; open orders {_fmt(ex.get('open_orders'))}, "
            f"control commands {_fmt(ex.get('control_commands'))}"]


def _portfolio_settings(arb) -> dict:
    try:
        return portfolio_settings(getattr(arb, "config_path", None), getattr(arb, "overrides", ()))
    except ConfigError:
        return {}


# One instrument's line of the portfolio table: its position, average
# price and mark; its PnL in its quote currency; the rate and the PnL in the
# account currency.
_PNL_ROW = "  {:<10}{:>10}{:>12}{:>12}{:>12}{:>12}{:>5}{:>12}{:>15}{:>17}"


def portfolio_lines(ex, snap, settings=None) -> list:
    """The portfolio in the account currency. From one valuation: the last
    the executor published (the watcher's snapshot: PORTFOLIO and its
    PNL.<sym> lines), else the totals of executor.stats.json alone. The
    totals count the converted lines only; a line whose rate is unknown
    shows "n/a" there and makes the portfolio incomplete."""
    settings = settings or {}
    event = (snap or {}).get("event")
    src = event if isinstance(event, dict) else ex
    ccy = src.get("account_currency") or settings.get("account_currency") or "?"
    capital = (snap or {}).get("capital", settings.get("capital"))
    equity, realized, unrealized = src.get("equity"), src.get("realized_pnl"), src.get("unrealized_pnl")
    complete = src.get("complete") if event is not None else src.get("portfolio_complete")
    if not _num(equity):
        lines = ["portfolio:        n/a (no valuation from the executor)"]
    else:
        lines = [f"portfolio:        account {ccy}: equity {_fmt(equity, 2)} = capital {_fmt(capital, 2)}"
                 f" + realised {_fmt(realized, 2)} + unrealised {_fmt(unrealized, 2)}; "
                 f"day's PnL {_fmt(src.get('daily_pnl'), 2)}; "
                 + ("complete" if complete is True else
                    "INCOMPLETE (a PnL with no rate to the account currency is left out)")
                 + (f"; valued {_clock(event.get('ts_ns'))} (the executor's last valuation)" if event else "")]
    if event is None:
        positions = ex.get("positions")
        if isinstance(positions, dict) and positions:
            lines.append("  no PORTFOLIO event received; positions (all groups), PnL in the quote currency:")
        for sym in sorted(positions) if isinstance(positions, dict) else ():
            v = positions[sym] if isinstance(positions[sym], dict) else {}
            lines.append(f"  {sym:<10} position {_fmt(v.get('position'), 0):>10}  "
                         f"avg price {_fmt(v.get('avg_price'), 5):>10}  "
                         f"realised PnL {_fmt(v.get('realized_pnl'), 2):>10} {quote_currency_of(sym)}")
        return lines
    lines.append(_PNL_ROW.format("instrument", "position", "avg price", "mark", "realised", "unrealised",
                                 "ccy", f"rate {ccy}", f"realised {ccy}", f"unrealised {ccy}"))
    for v in snap["lines"]:
        if not isinstance(v, dict):
            continue
        converted = _num(v.get("rate_to_account")) and v["rate_to_account"] > 0
        account = ((_fmt(v.get("rate_to_account"), 6), _fmt(v.get("realized_account"), 2),
                    _fmt(v.get("unrealized_account"), 2)) if converted else ("n/a", "n/a", "n/a"))
        lines.append(_PNL_ROW.format(
            str(v.get("instrument")), _fmt(v.get("position"), 0), _fmt(v.get("avg_price"), 5),
            _fmt(v.get("mark_price"), 5) if v.get("mark_price") else "none", _fmt(v.get("realized_pnl"), 2),
            _fmt(v.get("unrealized_pnl"), 2), str(v.get("quote_currency") or "?"), *account))
    lines.append(_PNL_ROW.format(f"total {ccy}", "", "", "", "", "", "", "", _fmt(realized, 2),
                                 _fmt(unrealized, 2)))
    return lines


def _clock(ts_ns) -> str:
    """A wall-clock instant as local HH:MM:SS.mmm."""
    if not _num(ts_ns) or ts_ns <= 0:
        return "n/a"
    return time.strftime("%H:%M:%S", time.localtime(ts_ns / 1e9)) + f".{int(ts_ns // 1_000_000 % 1000):03d}"


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

