"""The run report: one self-contained report.html in a run directory, read
from the files a stopped run leaves there (executor.db and dll_gateway.db,
read only once their programs have stopped: each holds its file exclusively
while it runs; the strategies' journals; the dead-letter files; the
*.stats.json files), with its figures drawn by matplotlib and embedded as
inline SVG. scripts/tp_report.py is its command line; scripts/demo calls it
at the end of a run.

Reading (read_run) and the figures' data (fills, positions, pnl, latencies,
throughput, dead letters) are plain functions over plain values, tested
without a deployment; only render_html imports matplotlib. A figure whose
data is absent is a note in the page, never an error."""

import collections
import dataclasses
import datetime
import glob
import html
import importlib.util
import io
import json
import math
import os
import re
import sqlite3
import sys

SIDES = {1: "BUY", 2: "SELL"}  # proto Side, as dll_gateway.db stores it
FLAT_EPSILON = 1e-9  # executor/src/position_book.cpp: a close that should land on zero may leave dust


# ---------------------------------------------------------------- reading

@dataclasses.dataclass
class Run:
    """What a stopped run left in its directory, as plain values."""
    run_dir: str
    orders: dict = dataclasses.field(default_factory=dict)        # executor.db orders: cid -> row
    signals: dict = dataclasses.field(default_factory=dict)       # executor.db signals: id -> row
    equity: list = dataclasses.field(default_factory=list)        # executor.db equity rows, by time
    exec_reports: dict = dataclasses.field(default_factory=dict)  # executor.db reports: seq -> row
    dll_orders: dict = dataclasses.field(default_factory=dict)    # dll_gateway.db orders: cid -> row
    dll_reports: list = dataclasses.field(default_factory=list)   # dll_gateway.db reports, by seq
    journal: dict = dataclasses.field(default_factory=dict)       # signal id -> its journaled fields
    letters: list = dataclasses.field(default_factory=list)       # dead letters: {ts_ns, source, reason}
    stats: dict = dataclasses.field(default_factory=dict)         # program name -> its stats
    quotes: dict = dataclasses.field(default_factory=dict)        # instrument -> quote currency
    problems: list = dataclasses.field(default_factory=list)      # files that could not be read, and why


def _rows(con, sql):
    cur = con.execute(sql)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur]


def _columns(con, table):
    return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


def _open_ro(path):
    """A read-only connection, or None when there is no file. The executor
    and dll_gateway hold theirs exclusively while they run: sqlite3.Error
    (locked) is the caller's to report."""
    if not os.path.exists(path):
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)


def read_executor_db(run, path):
    con = _open_ro(path)
    if con is None:
        run.problems.append(f"{os.path.basename(path)}: no such file")
        return
    try:
        cols = _columns(con, "orders")
        want = ["client_order_id", "signal_id", "instrument", "side", "quantity", "price_hint", "status",
                "filled_quantity", "fill_price", "causation_ts_ns", "created_ns", "updated_ns", "strategy",
                "order_type"]
        run.orders = {r["client_order_id"]: r for r in _rows(
            con, "SELECT " + ", ".join(c for c in want if c in cols) + " FROM orders")}
        run.signals = {r["signal_id"]: r for r in _rows(
            con, "SELECT signal_id, strategy, instrument, status, reason, received_ns FROM signals")}
        if "equity" in _tables(con):
            run.equity = _rows(con, "SELECT ts_ns, equity, realized_pnl, unrealized_pnl, daily_pnl, complete "
                                    "FROM equity ORDER BY ts_ns")
        if "reports" in _tables(con):
            run.exec_reports = {r["seq"]: r for r in _rows(
                con, "SELECT seq, client_order_id, status, last_quantity, applied, received_ns FROM reports")}
    except sqlite3.Error as e:
        run.problems.append(f"executor.db: {e} (is the executor still running? it holds the file)")
    finally:
        con.close()


def _tables(con):
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def read_dll_gateway_db(run, path):
    con = _open_ro(path)
    if con is None:
        run.problems.append(f"{os.path.basename(path)}: no such file")
        return
    try:
        run.dll_orders = {r["client_order_id"]: r for r in _rows(
            con, "SELECT client_order_id, broker_ts_ns, created_ts_ns, updated_ts_ns FROM orders")}
        run.dll_reports = _rows(con, "SELECT seq, client_order_id, instrument, side, last_quantity, last_price, "
                                     "broker_ts_ns, ts_ns FROM reports ORDER BY seq")
    except sqlite3.Error as e:
        run.problems.append(f"dll_gateway.db: {e} (is dll_gateway still running? it holds the file)")
    finally:
        con.close()


def read_journals(run, run_dir):
    """The signals the strategies journaled (S records of <G>-<k>.journal):
    their created_ts_ns and causation_ts_ns. A journal compacted during the
    run no longer has its acked signals: their first hops are then unknown."""
    try:
        import tp_proto
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import tp_proto
    if importlib.util.find_spec("msgpack") is None:  # tp_proto.decode imports it
        run.problems.append("strategy journals: not read (python3-msgpack is not installed)")
        return
    for path in sorted(glob.glob(os.path.join(run_dir, "*-*.journal"))):
        try:
            with open(path, "rb") as f:
                lines = f.readlines()
        except OSError as e:
            run.problems.append(f"{os.path.basename(path)}: {e.strerror}")
            continue
        for raw in lines:
            if not raw.startswith(b"S ") or not raw.endswith(b"\n"):
                continue
            try:
                name, fields = tp_proto.decode(bytes.fromhex(raw[2:-1].decode("ascii")))
            except (ValueError, tp_proto.ProtocolError):
                continue
            if name == "signal":
                run.journal.setdefault(fields["signal_id"], {
                    k: fields[k] for k in ("created_ts_ns", "causation_ts_ns", "instrument", "strategy")})


def dead_letter_files(run_dir):
    """dead_letters.jsonl and its rotated files, oldest first."""
    def age(p):
        m = re.search(r"\.(\d+)$", p)
        return -int(m.group(1)) if m else 0
    return sorted((p for p in glob.glob(os.path.join(run_dir, "dead_letters.jsonl*")) if not p.endswith(".tmp")),
                  key=age)


def read_dead_letters(run, run_dir):
    for path in dead_letter_files(run_dir):
        try:
            with open(path, "rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        continue  # torn last line
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(d, dict):
                        run.letters.append({"ts_ns": d.get("ts_ns") if isinstance(d.get("ts_ns"), int) else None,
                                            "source": str(d.get("source", "?")),
                                            "reason": str(d.get("reason", "?"))})
        except OSError as e:
            run.problems.append(f"{os.path.basename(path)}: {e.strerror}")


def read_stats_files(run, run_dir):
    for path in sorted(glob.glob(os.path.join(run_dir, "*.stats.json"))):
        try:
            with open(path, "rb") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            run.stats[os.path.basename(path)[:-len(".stats.json")]] = data


def read_quotes(run, run_dir):
    """instrument -> quote currency from the executor's last valuation
    (portfolio.json, written with --summary), when there is one."""
    try:
        with open(os.path.join(run_dir, "portfolio.json"), "rb") as f:
            snap = json.load(f)
        for v in snap.get("lines", []):
            if isinstance(v, dict) and v.get("instrument") and v.get("quote_currency"):
                run.quotes[v["instrument"]] = v["quote_currency"]
    except (OSError, ValueError, AttributeError):
        pass


def read_run(run_dir) -> Run:
    """Everything the report shows, from a stopped run's directory."""
    run = Run(run_dir=os.path.abspath(run_dir))
    read_executor_db(run, os.path.join(run_dir, "executor.db"))
    read_dll_gateway_db(run, os.path.join(run_dir, "dll_gateway.db"))
    read_journals(run, run_dir)
    read_dead_letters(run, run_dir)
    read_stats_files(run, run_dir)
    read_quotes(run, run_dir)
    return run


# ---------------------------------------------------------------- the figures' data

@dataclasses.dataclass(frozen=True)
class Fill:
    ts_ns: int          # when the broker filled it
    instrument: str
    side: str           # BUY or SELL
    quantity: float
    price: float
    group: str          # the order's strategy group ("" when the executor has no row for it)
    by_report: bool     # reached the executor as an execution report (a resting order's), not in the answer


def fills(run: Run) -> list:
    """Every fill, by time: from dll_gateway.db's reports (one per fill, with
    its own price) when there are any, else one per executor order that
    filled (its cumulative quantity at its average price, at its last
    update). by_report: the executor applied that report as news (the stream
    seq it stored with applied = 1)."""
    out = []
    for r in run.dll_reports:
        if not (r["last_quantity"] or 0) > 0:
            continue
        order = run.orders.get(r["client_order_id"], {})
        applied = run.exec_reports.get(r["seq"], {}).get("applied") == 1
        out.append(Fill(r["broker_ts_ns"] or r["ts_ns"], r["instrument"], SIDES.get(r["side"], "?"),
                        float(r["last_quantity"]), float(r["last_price"]), order.get("strategy") or "", applied))
    if not out:
        by_report = {r["client_order_id"] for r in run.exec_reports.values()
                     if r["applied"] == 1 and (r["last_quantity"] or 0) > 0}
        for o in run.orders.values():
            if (o.get("filled_quantity") or 0) > 0:
                out.append(Fill(o["updated_ns"], o["instrument"], o["side"], float(o["filled_quantity"]),
                                float(o["fill_price"]), o.get("strategy") or "", o["client_order_id"] in by_report))
    out.sort(key=lambda f: f.ts_ns)
    return out


class Book:
    """One instrument's position at average cost, as the executor keeps it
    (executor/src/position_book.cpp): a close realises against the average."""

    def __init__(self):
        self.position = self.avg_price = self.realized = 0.0

    def apply(self, side, quantity, price):
        signed = quantity if side == "BUY" else -quantity
        if self.position == 0 or (self.position > 0) == (signed > 0):
            opened = abs(self.position)
            self.avg_price = (opened * self.avg_price + quantity * price) / (opened + quantity)
            self.position += signed
            return
        direction = 1.0 if self.position > 0 else -1.0
        closed = min(quantity, abs(self.position))
        self.realized += (price - self.avg_price) * closed * direction
        self.position += signed
        if abs(self.position) < FLAT_EPSILON:
            self.position = self.avg_price = 0.0
        elif quantity > closed:
            self.avg_price = price

    def unrealized(self, mark):
        return (mark - self.avg_price) * self.position if self.position and mark else 0.0


def positions(fill_list) -> dict:
    """instrument -> {"t": [ts_ns], "total": [position after each fill],
    "groups": {group: [its position then]}}: a step series per instrument."""
    out = {}
    for f in fill_list:
        s = out.setdefault(f.instrument, {"t": [], "total": [], "groups": {}, "_now": collections.Counter()})
        s["_now"][f.group] += f.quantity if f.side == "BUY" else -f.quantity
        s["t"].append(f.ts_ns)
        s["total"].append(sum(s["_now"].values()))
        for g in set(s["groups"]) | {f.group}:
            s["groups"].setdefault(g, [0.0] * (len(s["t"]) - 1)).append(s["_now"][g])
    for s in out.values():
        del s["_now"]
    return out


def price_points(run: Run) -> dict:
    """instrument -> sorted [(ts_ns, price)]: each signal's trigger price (the
    causing tick's ask for a buy, bid for a sell) at that tick's time: the
    prices the run saw, as its records keep them (ticks are not stored)."""
    out = collections.defaultdict(list)
    for o in run.orders.values():
        if (o.get("causation_ts_ns") or 0) > 0 and (o.get("price_hint") or 0) > 0:
            out[o["instrument"]].append((o["causation_ts_ns"], float(o["price_hint"]), o["side"]))
    return {k: sorted(v) for k, v in out.items()}


def pnl(fill_list, marks=None) -> dict:
    """instrument -> {"t", "realized", "unrealized"}: its PnL in its quote
    currency after each fill and each mark, at average cost; unrealised
    valued at the last price seen (a fill's, or a mark's from `marks`:
    price_points)."""
    events = [(f.ts_ns, 1, f) for f in fill_list]
    for inst, points in (marks or {}).items():
        events += [(ts, 0, (inst, price)) for ts, price, *_ in points]
    events.sort(key=lambda e: (e[0], e[1]))
    books, last, out = {}, {}, {}
    for ts, kind, e in events:
        inst = e.instrument if kind else e[0]
        if kind:
            books.setdefault(inst, Book()).apply(e.side, e.quantity, e.price)
            last[inst] = e.price
        else:
            last[inst] = e[1]
            if inst not in books:
                continue  # no position yet: nothing to value
        b = books[inst]
        s = out.setdefault(inst, {"t": [], "realized": [], "unrealized": []})
        s["t"].append(ts)
        s["realized"].append(b.realized)
        s["unrealized"].append(b.unrealized(last[inst]))
    return out


def final_books(fill_list) -> dict:
    """instrument -> Book after every fill (the positions at the end)."""
    books = {}
    for f in fill_list:
        books.setdefault(f.instrument, Book()).apply(f.side, f.quantity, f.price)
    return books


# A round trip's hops, in order: (key, label, what it measures). Each is
# the difference of two stored timestamps; together they make tick->fill.
HOPS = (
    ("tick_to_signal", "tick → signal",
     "gateway time of the causing tick → the strategy created the signal (its journal)"),
    ("signal_to_executor", "signal → executor",
     "signal created → the executor received it (executor.db signals.received_ns)"),
    ("executor_to_dll", "executor → dll_gateway",
     "executor received the signal → dll_gateway received the order (dll_gateway.db created_ts_ns)"),
    ("dll_to_broker", "dll_gateway → broker",
     "dll_gateway received the order → the broker decided (its broker_ts_ns)"),
    ("broker_to_recorded", "broker → fill recorded",
     "the broker decided → the executor recorded the fill (executor.db orders.updated_ns)"),
)


def latencies(run: Run) -> dict:
    """Tick->fill and per-hop latencies in microseconds over the orders
    filled in the answer to their submit (as the executor's
    latency_tick_to_fill_us counts them; an order filled later by an
    execution report rested at the broker, which is not latency):
    {"tick_to_fill": [us], <hop key>: [us], "filled_later": n}."""
    later = {r["client_order_id"] for r in run.exec_reports.values() if r["applied"] == 1}
    out = {"tick_to_fill": [], "filled_later": 0, **{k: [] for k, _, _ in HOPS}}
    for cid, o in run.orders.items():
        if not (o.get("filled_quantity") or 0) > 0 or not (o.get("causation_ts_ns") or 0) > 0:
            continue
        if cid in later:
            out["filled_later"] += 1
            continue
        tick, recorded = o["causation_ts_ns"], o["updated_ns"]
        out["tick_to_fill"].append((recorded - tick) / 1e3)
        created = run.journal.get(o["signal_id"], {}).get("created_ts_ns")
        received = run.signals.get(o["signal_id"], {}).get("received_ns") or o.get("created_ns")
        dll = run.dll_orders.get(cid, {})
        points = [tick, created, received, dll.get("created_ts_ns"), dll.get("broker_ts_ns"), recorded]
        for i, (key, _, _) in enumerate(HOPS):
            a, b = points[i], points[i + 1]
            if a and b:
                out[key].append((b - a) / 1e3)
    return out


def percentile(values, q):
    """The nearest-rank q-quantile (0 < q <= 1) of `values`, None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def throughput(run: Run, fill_list, t0_ns, bin_s=1.0) -> dict:
    """name -> counts per `bin_s` second bin from t0_ns: signals received by
    the executor, orders it created, fills, dead letters."""
    series = {
        "signals received": [s["received_ns"] for s in run.signals.values() if s.get("received_ns")],
        "orders created": [o["created_ns"] for o in run.orders.values() if o.get("created_ns")],
        "fills": [f.ts_ns for f in fill_list],
        "dead letters": [d["ts_ns"] for d in run.letters if d["ts_ns"]],
    }
    width = int(bin_s * 1e9)
    ends = [max(v) for v in series.values() if v]
    if not ends:
        return {}
    bins = max(1, (max(ends) - t0_ns) // width + 1)
    out = {}
    for name, ts in series.items():
        counts = [0] * bins
        for t in ts:
            i = (t - t0_ns) // width
            if 0 <= i < bins:
                counts[i] += 1
        out[name] = counts
    return out


def dead_letters_by_reason(letters) -> dict:
    """reason -> Counter(source -> letters), from the dead-letter files."""
    out = collections.defaultdict(collections.Counter)
    for d in letters:
        out[d["reason"]][re.sub(r":\d+$", "", d["source"])] += 1
    return dict(out)


def start_ns(run: Run, fill_list):
    """The run's first recorded event (the report's time zero), or None."""
    candidates = [e["ts_ns"] for e in run.equity[:1]]
    candidates += [s["received_ns"] for s in run.signals.values() if s.get("received_ns")]
    candidates += [o["causation_ts_ns"] for o in run.orders.values() if (o.get("causation_ts_ns") or 0) > 0]
    candidates += [f.ts_ns for f in fill_list[:1]]
    candidates += [d["ts_ns"] for d in run.letters if d["ts_ns"]]
    return min(candidates) if candidates else None


def quote_currency(run: Run, instrument):
    if run.quotes.get(instrument):
        return run.quotes[instrument]
    return instrument[3:] if len(instrument) == 6 and instrument.isalpha() else "quote ccy"


# ---------------------------------------------------------------- rendering

@dataclasses.dataclass
class Figure:
    id: str
    title: str
    caption: str
    svg: str = ""     # inline <svg>...</svg>; empty when absent
    absent: str = ""  # why there is no picture


def _utc(ts_ns):
    return datetime.datetime.fromtimestamp(ts_ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _svg(fig, fig_id, title):
    """fig as an inline <svg>: its ids prefixed with fig_id (several figures
    share one page; matplotlib names clip paths and markers by hashes that
    may repeat), a <title> for readers and tests, no XML prologue."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    ids = set(re.findall(r'\sid="([^"]+)"', text))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{fig_id}-{old}"
        text = text.replace(f'id="{old}"', f'id="{new}"').replace(f"#{old})", f"#{new})") \
                   .replace(f'href="#{old}"', f'href="#{new}"')
    text = re.sub(r"<svg\b", f'<svg role="img" aria-labelledby="{fig_id}-title"', text, count=1)
    text = re.sub(r"(<svg\b[^>]*>)", rf'\1<title id="{fig_id}-title">{html.escape(title)}</title>', text, count=1)
    return text


def _new_figure(rows=1, height=3.2, width=10.0, **kw):
    from matplotlib.figure import Figure as MplFigure
    fig = MplFigure(figsize=(width, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False, **kw)[:, 0]
    return fig, list(axes)


def _log_axis(axis):
    """A log axis labelled at 1, 2 and 5 of each decade in plain numbers
    (a run's latencies often span less than one decade)."""
    from matplotlib import ticker
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


# A long run has more points than a page can carry as SVG: a line or a set
# of markers beyond this many is drawn through every k-th point (said in
# the legend), which keeps an hour's run to a few MB.
MAX_POINTS = 4000


def thin(n, limit=MAX_POINTS):
    """(indices to draw out of n points, stride k): every k-th from the
    first, and the last always (a position's or PnL's value at the end)."""
    if n <= limit:
        return list(range(n)), 1
    k = math.ceil(n / limit)
    idx = list(range(0, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx, k


def _pick(values, idx):
    return [values[i] for i in idx]


def _every(k):
    return f", every {k}th point" if k > 1 else ""


def _seconds(ts, t0):
    return [(t - t0) / 1e9 for t in ts]


def _time_label(t0):
    return f"time since start (s; start {_utc(t0)})"


def figure_equity(run, t0):
    fid, title = "fig-pnl-total", "Portfolio PnL over time (all instruments, account currency)"
    ccy = (run.stats.get("executor") or {}).get("account_currency") or "account currency"
    cap = "The executor's valuations (executor.db equity table, one row per portfolio.interval_ms): " \
          "realised, unrealised (positions at the latest tick's mid) and their sum, converted into " \
          f"{ccy}; equity = capital + total."
    if len(run.equity) < 1:
        return Figure(fid, title, cap, absent="No valuations: executor.db has no equity rows "
                                              "(the executor valued nothing, or the file is missing).")
    fig, (ax,) = _new_figure()
    idx, k = thin(len(run.equity))
    points = _pick(run.equity, idx)
    t = _seconds([e["ts_ns"] for e in points], t0)
    real = [e["realized_pnl"] for e in points]
    unreal = [e["unrealized_pnl"] for e in points]
    ax.plot(t, [a + b for a, b in zip(real, unreal)], color="black", lw=2, marker="." if k == 1 and len(t) < 200
            else None, label="total PnL" + _every(k))
    ax.plot(t, real, color="tab:blue", ls="--", label="realised")
    ax.plot(t, unreal, color="tab:orange", ls=":", label="unrealised")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(title)
    ax.set_xlabel(_time_label(t0))
    ax.set_ylabel(f"PnL ({ccy})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_pnl_by_instrument(run, fill_list, marks, t0):
    fid, title = "fig-pnl-instrument", "PnL over time per instrument (quote currency)"
    cap = "Rebuilt from the fills at average cost, as the executor books them (all groups together): " \
          "realised, and realised + unrealised with the position valued at the last price the run's " \
          "records show (a fill's price, or a signal's trigger price)."
    series = pnl(fill_list, marks)
    if not series:
        return Figure(fid, title, cap, absent="No fills in this run: no PnL to draw.")
    insts = sorted(series)
    fig, axes = _new_figure(len(insts), height=2.4, sharex=True)
    for ax, inst in zip(axes, insts):
        s = series[inst]
        idx, k = thin(len(s["t"]))
        t = _seconds(_pick(s["t"], idx), t0)
        ax.step(t, [s["realized"][i] + s["unrealized"][i] for i in idx], where="post", color="black",
                label="realised + unrealised" + _every(k))
        ax.step(t, _pick(s["realized"], idx), where="post", color="tab:blue", ls="--", label="realised")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{inst}: PnL", fontsize=10)
        ax.set_ylabel(f"PnL ({quote_currency(run, inst)})")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel(_time_label(t0))
    fig.suptitle(title)
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_positions(run, fill_list, t0):
    fid, title = "fig-positions", "Positions over time per instrument"
    cap = "Each instrument's net position after each fill (units of the base currency; > 0 long, < 0 short), " \
          "in total and per strategy group."
    series = positions(fill_list)
    if not series:
        return Figure(fid, title, cap, absent="No fills in this run: every position stayed flat.")
    insts = sorted(series)
    fig, axes = _new_figure(len(insts), height=2.2, sharex=True)
    for ax, inst in zip(axes, insts):
        s = series[inst]
        idx, k = thin(len(s["t"]))
        t = _seconds(_pick(s["t"], idx), t0)
        ax.step(t, _pick(s["total"], idx), where="post", color="black", lw=2, label="total" + _every(k))
        for g in sorted(s["groups"]):
            ax.step(t, _pick(s["groups"][g], idx), where="post", lw=1, label=f"group {g or '(none)'}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{inst}: position", fontsize=10)
        ax.set_ylabel("position (units)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel(_time_label(t0))
    fig.suptitle(title)
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_fills_on_price(run, fill_list, marks, t0):
    fid, title = "fig-fills", "Fills on the price per instrument"
    cap = "Grey: the price each signal triggered on (the causing tick's ask for a buy, its bid for a sell). " \
          "Markers: each fill at its price and broker time; filled hollow for a resting order's fill that " \
          "arrived later as an execution report."
    by_inst = collections.defaultdict(list)
    for f in fill_list:
        by_inst[f.instrument].append(f)
    insts = sorted(set(by_inst) | set(marks))
    if not insts:
        return Figure(fid, title, cap, absent="No fills and no signals in this run: no prices to draw.")
    fig, axes = _new_figure(len(insts), height=2.4, sharex=True)
    for ax, inst in zip(axes, insts):
        points = marks.get(inst, [])
        if points:
            idx, k = thin(len(points))
            points = _pick(points, idx)
            ax.plot(_seconds([p[0] for p in points], t0), [p[1] for p in points], color="grey", lw=0.8,
                    label="signal trigger price" + _every(k))
        for side, marker, color in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
            for later in (False, True):
                fs = [f for f in by_inst.get(inst, []) if f.side == side and f.by_report == later]
                if fs:
                    idx, k = thin(len(fs), MAX_POINTS // 4)
                    fs = _pick(fs, idx)
                    ax.scatter(_seconds([f.ts_ns for f in fs], t0), [f.price for f in fs], marker=marker, s=18,
                               facecolors="none" if later else color, edgecolors=color,
                               label=f"{side.lower()} fill" + (" (resting order, later)" if later else "")
                               + _every(k))
        ax.set_title(f"{inst}: fills on the price", fontsize=10)
        ax.set_ylabel(f"price ({quote_currency(run, inst)})")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel(_time_label(t0))
    fig.suptitle(title)
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_latency(run, lat):
    fid, title = "fig-latency", "Tick → fill latency (orders filled in the answer to their submit)"
    ex = (run.stats.get("executor") or {}).get("latency_tick_to_fill_us") or {}
    values = [v for v in lat["tick_to_fill"] if v > 0]
    cap = "From the gateway time of the tick that caused the signal to the executor recording the fill " \
          "(executor.db: orders.updated_ns - causation_ts_ns), over the orders whose fill came in the answer " \
          f"to their submit; {lat['filled_later']} filled later by an execution report (they rested at the " \
          "broker) are not counted."
    if ex.get("count"):
        cap += f" The executor's own histogram: p50 {ex.get('p50', 0):.0f} us, p99 {ex.get('p99', 0):.0f} us " \
               f"(n={ex.get('count')})."
    if not values:
        return Figure(fid, title, cap, absent="No order filled in the answer to its submit: no latency to draw.")
    import numpy as np
    fig, (ax,) = _new_figure(height=3.4)
    lo, hi = max(min(values), 1.0), max(max(values), 2.0)
    bins = np.geomspace(lo * 0.9, hi * 1.1, 40)
    ax.hist(values, bins=bins, color="tab:blue", alpha=0.8, label=f"orders (n={len(values)})")
    for q, style in ((0.5, "--"), (0.99, ":")):
        p = percentile(values, q)
        ax.axvline(p, color="black", ls=style, label=f"p{int(q * 100)} = {p:,.0f} us")
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_title(title)
    ax.set_xlabel("tick → fill latency (microseconds, log scale)")
    ax.set_ylabel("orders per bin")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_hops(lat):
    fid, title = "fig-hops", "Latency per hop, tick to fill (orders filled in the answer to their submit)"
    cap = "Each hop is the difference of two stored timestamps (one machine's wall clock): " + "; ".join(
        f"{label}: {what}" for _, label, what in HOPS) + \
        ". Boxes: quartiles; whiskers: 1st and 99th percentiles; the median is labelled."
    rows = [(label, [v for v in lat[key] if v > 0]) for key, label, _ in HOPS]
    rows = [(label, v) for label, v in rows if v]
    if not rows:
        return Figure(fid, title, cap, absent="No hop could be measured: no order filled in its answer.")
    fig, (ax,) = _new_figure(height=0.6 * len(rows) + 1.6)
    labels = [f"{label} (n={len(v)})" for label, v in rows][::-1]
    data = [v for _, v in rows][::-1]
    ax.boxplot(data, vert=False, whis=(1, 99), showfliers=False, labels=labels)
    for i, v in enumerate(data, start=1):
        med = percentile(v, 0.5)
        ax.annotate(f"p50 {med:,.0f} us", (med, i + 0.3), fontsize=8, ha="center")
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_title(title)
    ax.set_xlabel("latency (microseconds, log scale)")
    ax.set_ylabel("hop")
    ax.grid(alpha=0.3, axis="x")
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_throughput(run, fill_list, t0):
    fid, title = "fig-throughput", "Throughput over time"
    ends = [e for e in (run.equity[-1]["ts_ns"] if run.equity else None,
                        fill_list[-1].ts_ns if fill_list else None) if e]
    # One-second bins; wider ones for a long run (at most ~1,500 bins).
    bin_s = max(1, math.ceil((max(ends) - t0) / 1e9 / 1500)) if ends else 1
    cap = f"Events per second, counted in {bin_s}-second bins: signals the executor received, orders it " \
          "created, fills (broker time), dead letters the sink wrote; the last bin is a part of one."
    series = throughput(run, fill_list, t0, bin_s) if t0 is not None else {}
    if not any(sum(v) for v in series.values()):
        return Figure(fid, title, cap, absent="No signals, orders, fills or dead letters with a time: "
                                              "no throughput to draw.")
    fig, (ax,) = _new_figure()
    styles = {"signals received": ("-", 2.5), "orders created": ("--", 1.5), "fills": ("-", 1.2),
              "dead letters": (":", 1.5)}
    for name, counts in series.items():
        style, width = styles.get(name, ("-", 1))
        ax.step([i * bin_s for i in range(len(counts))], [c / bin_s for c in counts], where="post", ls=style,
                lw=width, label=name)
    ax.set_title(title)
    ax.set_xlabel(_time_label(t0))
    ax.set_ylabel("events per second")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def figure_dead_letters(run):
    fid, title = "fig-dead-letters", "Dead letters by reason"
    dl = run.stats.get("dead_letter") or {}
    cap = "Lines in dead_letters.jsonl and its rotated files, by reason, split by source program."
    if isinstance(dl.get("by_reason"), dict):
        cap += " The sink's own count (dead_letter.stats.json): " + (", ".join(
            f"{k} {v}" for k, v in sorted(dl["by_reason"].items())) or "none") + "."
    counts = dead_letters_by_reason(run.letters)
    if not counts:
        return Figure(fid, title, cap, absent="No dead letters in this run: the sink wrote none.")
    reasons = sorted(counts, key=lambda r: sum(counts[r].values()))
    sources = sorted({s for c in counts.values() for s in c})
    fig, (ax,) = _new_figure(height=0.45 * len(reasons) + 1.8)
    left = [0] * len(reasons)
    for s in sources:
        widths = [counts[r][s] for r in reasons]
        ax.barh(reasons, widths, left=left, label=f"from {s}")
        left = [a + b for a, b in zip(left, widths)]
    for i, total in enumerate(left):
        ax.annotate(f"{total:,}", (total, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("dead letters (count)")
    ax.set_ylabel("reason")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return Figure(fid, title, cap, svg=_svg(fig, fid, title))


def _guarded(make, fid, title, *args):
    """make(*args), or a Figure saying why it could not be drawn: one bad
    figure must not cost the others."""
    try:
        return make(*args)
    except Exception as e:  # noqa: BLE001 - reported in the page, the rest still drawn
        return Figure(fid, title, "", absent=f"This figure could not be drawn: {type(e).__name__}: {e}")


def figures(run: Run) -> list:
    fill_list = fills(run)
    marks = price_points(run)
    t0 = start_ns(run, fill_list)
    lat = latencies(run)
    if t0 is None:
        t0 = 0
    return [
        _guarded(figure_equity, "fig-pnl-total", "Portfolio PnL over time", run, t0),
        _guarded(figure_pnl_by_instrument, "fig-pnl-instrument", "PnL per instrument", run, fill_list, marks, t0),
        _guarded(figure_positions, "fig-positions", "Positions over time", run, fill_list, t0),
        _guarded(figure_fills_on_price, "fig-fills", "Fills on the price", run, fill_list, marks, t0),
        _guarded(figure_latency, "fig-latency", "Tick → fill latency", run, lat),
        _guarded(figure_hops, "fig-hops", "Latency per hop", lat),
        _guarded(figure_throughput, "fig-throughput", "Throughput over time", run, fill_list, t0),
        _guarded(figure_dead_letters, "fig-dead-letters", "Dead letters by reason", run),
    ]


def _fmt(v, nd=0):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "n/a"
    return f"{v:,.{nd}f}"


def summary_rows(run: Run, fill_list) -> list:
    """(label, value) rows of the page's head table."""
    gw, ex, dl = (run.stats.get(n) or {} for n in ("gateway", "executor", "dead_letter"))
    lat = ex.get("latency_tick_to_fill_us") if isinstance(ex.get("latency_tick_to_fill_us"), dict) else {}
    return [
        ("ticks published (gateway)", _fmt(gw.get("ticks_published"))),
        ("signals received (executor)", _fmt(len(run.signals))),
        ("orders", _fmt(len(run.orders))),
        ("fills", _fmt(len(fill_list))),
        ("dead letters", _fmt(len(run.letters))),
        ("equity at the end", f"{_fmt(run.equity[-1]['equity'], 2)} {ex.get('account_currency') or ''}"
         if run.equity else "n/a"),
        ("tick → fill (executor)", f"p50 {_fmt(lat.get('p50'))} us, p99 {_fmt(lat.get('p99'))} us, "
                                    f"n={_fmt(lat.get('count'))}"),
        ("trading state", str(ex.get("trading_state") or "n/a")),
    ]


# The page records its own script errors and how each figure rendered into
# the DOM (data-errors, data-rendered), so a headless browser's dump shows them.
_PAGE_SCRIPT = """
(function () {
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message || e)); });
  window.addEventListener("load", function () {
    var figs = document.querySelectorAll("figure");
    for (var i = 0; i < figs.length; i++) {
      var svg = figs[i].querySelector("svg");
      var box = svg ? svg.getBoundingClientRect() : null;
      figs[i].setAttribute("data-rendered", box && box.width > 0 && box.height > 0 ? "yes" : "no");
    }
    document.body.setAttribute("data-errors", String(errors.length));
    document.getElementById("load-errors").textContent = errors.join("\\n");
    document.body.setAttribute("data-loaded", "yes");
  });
})();
"""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1050px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; font-size: 0.9em; }
figure { margin: 1.5em 0; border-top: 1px solid #ddd; padding-top: 0.5em; }
figure h2 { font-size: 1.1em; margin: 0.3em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #444; }
.absent { background: #f6f6f6; border: 1px dashed #aaa; padding: 1em; color: #555; }
.problems { color: #a00; }
"""


def render_html(run: Run) -> str:
    """The whole page: head table, final positions, the figures."""
    import matplotlib
    matplotlib.use("Agg")  # no display; Figure objects are drawn without pyplot
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "tp-report", "font.size": 9})
    fill_list = fills(run)
    figs = figures(run)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Run report: {html.escape(run.run_dir)}</title>",
             f"<style>{_STYLE}</style><script>{_PAGE_SCRIPT}</script></head><body>",
             f"<h1>Run report</h1><p>{html.escape(run.run_dir)}"]
    t0 = start_ns(run, fill_list)
    if t0:
        parts.append(f" &middot; from {_utc(t0)}")
    parts.append(f" &middot; written {_utc(int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1e9))}</p>")
    parts.append('<pre id="load-errors" hidden></pre>')
    if run.problems:
        parts.append('<ul class="problems">' + "".join(f"<li>{html.escape(p)}</li>" for p in run.problems)
                     + "</ul>")
    parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                                     for k, v in summary_rows(run, fill_list)) + "</table>")
    books = final_books(fill_list)
    if books:
        parts.append("<table><tr><th>instrument</th><th>position at the end</th><th>avg price</th>"
                     "<th>realised PnL (quote ccy)</th></tr>" + "".join(
                         f"<tr><td>{html.escape(i)}</td><td>{_fmt(b.position)}</td><td>{_fmt(b.avg_price, 5)}</td>"
                         f"<td>{_fmt(b.realized, 2)} {html.escape(quote_currency(run, i))}</td></tr>"
                         for i, b in sorted(books.items())) + "</table>")
    parts.append('<nav><p>' + " &middot; ".join(f'<a href="#{f.id}">{html.escape(f.title)}</a>' for f in figs)
                 + "</p></nav>")
    for f in figs:
        status = "absent" if not f.svg else "ok"
        body = f.svg if f.svg else f'<p class="absent">{html.escape(f.absent)}</p>'
        parts.append(f'<figure id="{f.id}" data-status="{status}"><h2>{html.escape(f.title)}</h2>{body}'
                     f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir, out=None) -> str:
    """Writes the report (default <run_dir>/report.html) atomically and
    returns its path."""
    out = out or os.path.join(run_dir, "report.html")
    text = render_html(read_run(run_dir))
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out)
    return out
