"""What the supervisor reports: the status reply (JSON), the status line
(--status-line) and the summary (--summary), from its processes and the
programs' stats files."""

import collections
import os
import time

from .states import RUNNING
from .stats import read_stats


def status(arb) -> dict:
    """The reply to {"cmd": "status"}."""
    now = time.monotonic()
    return {"ok": True, "pid": os.getpid(), "run_dir": arb.run_dir,
            "bin_dir": arb.bin_dir, "instances": len(arb.instances()),
            "shutting_down": arb.shutting_down,
            "processes": [p.to_json(now, arb.s.instruments) for p in arb.procs]}


def _strategy_stats(run_dir):
    names = sorted(f[:-len(".stats.json")] for f in _listdir(run_dir)
                   if f.startswith("strategy-") and f.endswith(".stats.json"))
    return {n: read_stats(run_dir, n) for n in names}


def status_line(arb, elapsed: float) -> str:
    gw = read_stats(arb.run_dir, "gateway") or {}
    ex = read_stats(arb.run_dir, "executor") or {}
    dl = read_stats(arb.run_dir, "dead_letter") or {}
    signals = [s.get("signals_emitted") for s in _strategy_stats(arb.run_dir).values()
               if s and _num(s.get("signals_emitted"))]
    positions = ex.get("positions")
    open_pos = (sum(1 for v in positions.values()
                    if isinstance(v, dict) and v.get("position")) if isinstance(positions, dict) else None)
    states = collections.Counter(p.state for p in arb.procs)
    bad = [f"{p.name}={p.state}" for p in arb.procs if p.state != RUNNING]
    state_txt = f"{states[RUNNING]}/{len(arb.procs)} running" + (f" ({', '.join(bad)})" if bad else "")
    return (f"[{elapsed:6.1f}s] ticks/s {_fmt(gw.get('ticks_per_s'), 0)}  "
            f"ticks {_fmt(gw.get('ticks_published'))}  "
            f"signals {_fmt(sum(signals) if signals else None)}  "
            f"orders {_fmt(ex.get('orders_sent'))}  fills {_fmt(ex.get('fills'))}  "
            f"open positions {_fmt(open_pos)}  dead letters {_fmt(dl.get('dead_letters'))}  "
            f"| {state_txt}")


def summary(arb) -> str:
    gw = read_stats(arb.run_dir, "gateway") or {}
    ex = read_stats(arb.run_dir, "executor") or {}
    dl = read_stats(arb.run_dir, "dead_letter") or {}
    strat = _strategy_stats(arb.run_dir)
    lines = [f"== summary ({arb.run_dir}) ==",
             f"{'process':<14}{'state':<10}{'restarts':>9}  last exit"]
    for p in arb.procs:
        lines.append(f"{p.name:<14}{p.state:<10}{p.restarts:>9}  {p.last_exit or '-'}")
    sig_parts = [f"{n} {_fmt((s or {}).get('signals_emitted'))}" for n, s in strat.items()]
    sig_total = [s.get("signals_emitted") for s in strat.values() if s and _num(s.get("signals_emitted"))]
    lines += [
        f"ticks published:  {_fmt(gw.get('ticks_published'))}",
        f"signals emitted:  {_fmt(sum(sig_total) if sig_total else None)}"
        + (f" ({', '.join(sig_parts)})" if sig_parts else ""),
        f"orders sent:      {_fmt(ex.get('orders_sent'))}",
        f"fills:            {_fmt(ex.get('fills'))}"
        f" (partial {_fmt(ex.get('partial_fills'))}, broker rejects {_fmt(ex.get('broker_rejects'))})",
    ]
    positions = ex.get("positions")
    if isinstance(positions, dict) and positions:
        lines.append("positions:")
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

