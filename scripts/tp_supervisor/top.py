"""tpctl top: a live view of a running deployment, refreshed every second:
each program's state, pid, uptime and restarts (the supervisor's status
reply), its rates from the counter deltas between two readings of its
<run-dir>/<name>.stats.json, the executor's trading state, tick->fill
latency and positions, and the alerts firing. Curses on a terminal; plain
frames one after the other otherwise, and one frame with --once.

One host: the supervisor's control socket, the stats files read here. A
deployment over several hosts (--config with [[hosts]]): every host's
supervisor over tcp, each asked for its status with the stats top reads
(stats.TOP_FIELDS), within hostctl's status bound; a HOST column, and a host
that does not answer is a row UNREACHABLE and an alert.

The pure parts (a reading's counters, rates from two readings, the alerts,
the frame's lines) take values and return values; only run() and the
drawing touch the control socket, the files and the terminal."""

import os
import select
import signal
import sys
import time

from . import hostctl, remote
from .ctl import EXIT_NO_SUPERVISOR, EXIT_OK, NoSupervisor, _uptime, request
from .states import RUNNING
from .stats import RATE_COLUMNS, current_stats

HEADER = ("NAME", "STATE", "PID", "UPTIME", "RESTARTS") + tuple(c for c, _ in RATE_COLUMNS)
HOST_HEADER = ("HOST",) + HEADER
STATUS_TIMEOUT_S = 5.0


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def reading(stats):
    """What the rates need from one stats file: {"pid", "ts_ns", "counters":
    {column: value}}; None when it has no usable timestamp."""
    if not isinstance(stats, dict) or not _num(stats.get("ts_ns")):
        return None
    counters = {}
    for column, keys in RATE_COLUMNS:
        for key in keys:
            if _num(stats.get(key)):
                counters[column] = stats[key]
                break
    return {"pid": stats.get("pid"), "ts_ns": stats["ts_ns"], "counters": counters}


def rates(before, after) -> dict:
    """column -> per second between two readings of one program, by their own
    timestamps (the program's clock, not when top happened to read them).
    {} when they cannot be compared: a missing reading, another pid (a
    restart starts its counters from 0) or no time between them; a counter
    that went down is left out rather than shown negative."""
    if not before or not after or before["pid"] != after["pid"]:
        return {}
    dt = (after["ts_ns"] - before["ts_ns"]) / 1e9
    if dt <= 0:
        return {}
    out = {}
    for column, now in after["counters"].items():
        then = before["counters"].get(column)
        if then is not None and now >= then:
            out[column] = (now - then) / dt
    return out


class RateBook:
    """Each program's last rates. A stats file is rewritten once per
    stats_interval_ms, which may be longer than top's refresh: a reading with
    the same timestamp as the last keeps the rates already shown instead of
    dropping them, and the baseline only moves when the file changed."""

    def __init__(self):
        self._base = {}
        self._rates = {}

    def update(self, name: str, now) -> dict:
        base = self._base.get(name)
        if now is None:
            self._base.pop(name, None)
            self._rates.pop(name, None)
            return {}
        if base is not None and base["pid"] == now["pid"] and base["ts_ns"] == now["ts_ns"]:
            return self._rates.get(name, {})
        self._base[name] = now
        self._rates[name] = rates(base, now)
        return self._rates[name]

    def complete(self, names) -> bool:
        """True once every one of `names` has a rate (it has a stats file
        that changed since top first read it)."""
        return all(self._rates.get(n) for n in names)


def _bytes(n) -> str:
    if not _num(n):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def alerts(reply: dict, stats: dict) -> list:
    """The alerts firing, one line each: a process not RUNNING, a program's
    own "alert" (status reply or stats), its disk below its floor, a
    strategy whose feed is dead, the executor's circuit breaker not closed or
    dll_gateway not answering it, trading not ACTIVE, the supervisor
    shutting down. `stats`: name -> the stats of that process's current pid."""
    out = []
    if reply.get("shutting_down"):
        out.append("supervisor: shutting down")
    for p in reply.get("processes", []):
        name, data = p["name"], stats.get(p["name"]) or {}
        if p.get("host"):
            name = f"{p['host']}/{name}"
        if p.get("state") != RUNNING:
            why = f" (last exit: {p['last_exit']})" if p.get("last_exit") else ""
            out.append(f"{name}: {p.get('state')}{why}")
        alert = p.get("alert") or data.get("alert")
        if isinstance(alert, str) and alert:
            out.append(f"{name}: {alert}")
        if data.get("disk_low") is True:
            out.append(f"{name}: disk low ({_bytes(data.get('disk_free_bytes'))} free, "
                       f"floor {_bytes(data.get('disk_floor_bytes'))})")
        if data.get("feed_alive") is False:
            out.append(f"{name}: feed dead (no tick or heartbeat from the gateway)")
        if isinstance(data.get("breaker"), str) and data["breaker"] != "closed":
            out.append(f"{name}: circuit breaker {data['breaker']} (dll_gateway not answering)")
        elif data.get("broker_alive") is False:
            out.append(f"{name}: dll_gateway not answering")
    ex = stats.get("executor") or {}
    state = ex.get("trading_state")
    if isinstance(state, str) and state != "ACTIVE" and not any(f"trading {state}" in a for a in out):
        cause = ex.get("trading_state_cause")
        out.append(f"trading {state}" + (f": {cause}" if cause else ""))
    return out


def _rate_text(v) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 10 or v == 0 else f"{v:.1f}"


def _fmt(v, decimals=None) -> str:
    if not _num(v):
        return "n/a"
    if decimals is None:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"
    return f"{v:.{decimals}f}"


def _state(p: dict) -> str:
    state = p.get("state") or "?"
    if state == "BACKOFF" and p.get("restart_in_s") is not None:
        state += f" ({p['restart_in_s']:.1f}s)"
    elif state == "HUNG" and p.get("heartbeat_age_s") is not None:
        state += f" ({p['heartbeat_age_s']:.1f}s)"
    return state


def _table(rows) -> list:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def frame_lines(reply: dict, stats: dict, rates_by_name: dict, clock: str = "",
                interval: float = 1.0, live: bool = False) -> list:
    """The frame as lines of text: a heading (supervisor, how many running,
    trading, equity, tick->fill latency), one line per process with its
    rates, the alerts firing, the executor's positions per instrument."""
    procs = reply.get("processes", [])
    running = sum(p.get("state") == RUNNING for p in procs)
    where = reply.get("headline") or f"supervisor pid {reply.get('pid')}, run dir {reply.get('run_dir')}"
    lines = [f"tpctl top: {where}, {running}/{len(procs)} running" + (f", {clock}" if clock else "")]
    ex = stats.get("executor")
    if ex is not None:
        lat = ex.get("latency_tick_to_fill_us") if isinstance(ex.get("latency_tick_to_fill_us"), dict) else {}
        lines.append(f"trading {ex.get('trading_state') or 'n/a'}, open orders {_fmt(ex.get('open_orders'))}"
                     f" | equity {_fmt(ex.get('equity'), 2)} {ex.get('account_currency') or ''}"
                     f" (day's PnL {_fmt(ex.get('daily_pnl'), 2)})"
                     f" | tick->fill p50 {_fmt(lat.get('p50'), 0)} us, p99 {_fmt(lat.get('p99'), 0)} us"
                     f" (n={_fmt(lat.get('count'))})")
    else:
        lines.append("trading n/a (no stats from the executor)")
    hosts = any(p.get("host") for p in procs)
    rows = [HOST_HEADER if hosts else HEADER]
    for p in procs:
        r = rates_by_name.get(p["name"], {})
        row = (p["name"], _state(p), str(p.get("pid") or "-"), _uptime(p.get("uptime_s")),
               str(p.get("restarts", 0)), *(_rate_text(r.get(c)) for c, _ in RATE_COLUMNS))
        rows.append(((p.get("host") or "-",) + row) if hosts else row)
    lines += [""] + _table(rows)
    # Alerts before positions: a short window cuts the frame's bottom, and
    # an instrument list can be long.
    firing = alerts(reply, stats)
    lines += ["", f"ALERTS ({len(firing)})" if firing else "ALERTS: none"]
    lines += [f"  ! {a}" for a in firing]
    positions = (ex or {}).get("positions")
    lines.append("")
    if isinstance(positions, dict) and positions:
        prow = [("INSTRUMENT", "POSITION", "AVG PRICE", "LAST PRICE", "REALISED PNL")]
        for sym in sorted(positions):
            v = positions[sym] if isinstance(positions[sym], dict) else {}
            prow.append((sym, _fmt(v.get("position"), 0), _fmt(v.get("avg_price"), 5),
                         _fmt(v.get("last_price"), 5), _fmt(v.get("realized_pnl"), 2)))
        lines += _table(prow)
    else:
        lines.append("positions: " + ("none" if isinstance(positions, dict) else "n/a"))
    if live:
        lines += ["", f"refresh every {interval:g} s; q or Ctrl-C quits"]
    return lines


def local_reader(path: str):
    """One host: its supervisor's control socket, the stats files here."""
    def read():
        reply = request(path, {"cmd": "status"}, timeout=STATUS_TIMEOUT_S)
        return reply, current_stats(reply.get("run_dir") or "", reply.get("processes", []))
    return read


def hosts_reader(settings, targets, secret: bytes):
    """Every host's supervisor over tcp, at once (hostctl): one merged reply,
    each host's stats with it. NoSupervisor when no host answers."""
    def read():
        answers = hostctl.ask_all(targets, secret, {"cmd": "status", "stats": True}, hostctl.STATUS_TIMEOUT_S)
        if all(isinstance(a, remote.Unreachable) for a in answers.values()):
            raise NoSupervisor("; ".join(str(a) for a in answers.values()))
        reply = hostctl.merged_status(settings, answers)
        return reply, reply.pop("stats")
    return read


class Top:
    """One reading after another: the status reply, the stats, the rates.
    `read` gives (reply, stats) or raises NoSupervisor; `where` names what it
    asks in the messages."""

    def __init__(self, read, where: str, interval: float):
        self._read, self.where, self.interval = read, where, interval
        self.book = RateBook()
        self.error = None

    def read(self):
        """(reply, stats, rates); raises NoSupervisor."""
        reply, stats = self._read()
        return reply, stats, {p["name"]: self.book.update(p["name"], reading(stats.get(p["name"])))
                              for p in reply.get("processes", [])}

    def frame(self, live=True) -> list:
        """The lines to show now; a supervisor gone is said in the frame
        (a live view outlasts it, and shows it back when it returns)."""
        clock = time.strftime("%H:%M:%S")
        try:
            reply, stats, rates_now = self.read()
            self.error = None
        except NoSupervisor:
            self.error = self.error or clock
            return [f"tpctl top: no supervisor answering {self.where} (since {self.error})", "",
                    f"refresh every {self.interval:g} s; q or Ctrl-C quits"]
        return frame_lines(reply, stats, rates_now, clock, self.interval, live)


class _Quit(Exception):
    pass


def _on_term(signum, frame):
    raise _Quit()


def _draw(scr, lines, curses) -> None:
    h, w = scr.getmaxyx()
    scr.erase()
    for y, line in enumerate(lines[:h]):
        attr = curses.A_BOLD if line.startswith(("  ! ", "ALERTS (", "NAME ", "tpctl top")) else 0
        try:
            scr.addnstr(y, 0, line, max(w - 1, 0), attr)
        except curses.error:   # the last cell of a tiny window
            pass
    scr.refresh()


def _curses_loop(scr, top: Top, curses) -> None:
    try:
        curses.curs_set(0)
    except curses.error:
        pass
    while True:
        due = time.monotonic() + top.interval
        _draw(scr, top.frame(), curses)
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            scr.timeout(max(int(left * 1000), 1))
            key = scr.getch()
            if key in (ord("q"), ord("Q")):
                return
            if key == curses.KEY_RESIZE:
                break


def _plain_loop(top: Top, out) -> None:
    """Frames one after the other, for a pipe or a terminal curses cannot
    drive; a "q" line on stdin (when there is one) ends it as q does."""
    watch_stdin = not sys.stdin.closed and sys.stdin.readable()
    while True:
        due = time.monotonic() + top.interval
        out.write("\n".join(top.frame()) + "\n\n")
        out.flush()
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            if not watch_stdin:
                time.sleep(left)   # the refresh period itself, not a wait on a state
                break
            try:
                ready, _, _ = select.select([sys.stdin], [], [], left)
            except (OSError, ValueError):
                watch_stdin = False
                continue
            if ready:
                line = sys.stdin.readline()
                if not line:
                    watch_stdin = False
                elif line.strip().lower() == "q":
                    return


def once(top: Top, out) -> int:
    """One frame as plain text. Rates need two readings: the second comes
    after the interval, or later (at most one interval and a second more)
    while a running program's stats file has not been rewritten yet."""
    try:
        reply, _, _ = top.read()
        start = time.monotonic()
        time.sleep(top.interval)
        while True:
            reply, stats, rates_now = top.read()
            running = [p["name"] for p in reply.get("processes", []) if p.get("state") == RUNNING]
            if top.book.complete(running) or time.monotonic() - start >= 2 * top.interval + 1.0:
                break
            time.sleep(0.1)
    except NoSupervisor:
        print(f"tpctl: no supervisor running {top.where}", file=sys.stderr)
        return EXIT_NO_SUPERVISOR
    out.write("\n".join(frame_lines(reply, stats, rates_now, time.strftime("%H:%M:%S"), top.interval)) + "\n")
    out.flush()
    return EXIT_OK


def run(read, where: str, interval: float, one: bool = False) -> int:
    """tpctl top over `read` (local_reader or hosts_reader): 0 when q, Ctrl-C
    or SIGTERM ends it (the terminal restored), 2 when no supervisor answers
    at the start."""
    top = Top(read, where, interval)
    if one:
        return once(top, sys.stdout)
    try:
        top.read()
    except NoSupervisor:
        print(f"tpctl: no supervisor running {where}", file=sys.stderr)
        return EXIT_NO_SUPERVISOR
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        if sys.stdout.isatty() and sys.stdin.isatty():
            try:
                import curses
                curses.setupterm()
            except Exception:  # noqa: BLE001 - no curses, no terminfo for $TERM: plain frames
                curses = None
            if curses is not None:
                curses.wrapper(_curses_loop, top, curses)
                return EXIT_OK
        _plain_loop(top, sys.stdout)
    except (KeyboardInterrupt, _Quit):
        pass
    except BrokenPipeError:   # `tpctl top | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK
