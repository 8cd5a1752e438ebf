"""The executor's portfolio for the summary: what the config says of it
(account currency, capital, the order-events endpoint and CURVE keys), and a
watcher that keeps the last valuation the executor published (its PNL.<sym>
lines and the PORTFOLIO event that closes them, one ts_ns) in
<run dir>/portfolio.json.

The watcher runs as its own process (`python3 -m tp_supervisor.portfolio`):
it needs pyzmq and msgpack, and the supervisor itself keeps to the standard
library (no native code in the process that must not crash). Without them,
or when it cannot connect, the summary shows the executor's totals from its
stats file and no lines per instrument."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from .settings import read_root, read_text

SCRIPTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAPSHOT = "portfolio.json"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:7103"
DEFAULTS = {"account_currency": "USD", "capital": 1000000.0}
STOP_GRACE_S = 2.0


def portfolio_settings(config_path=None, overrides=()) -> dict:
    """account_currency, capital, the order-events endpoint and the
    [security] keys a client needs, from the deployment file and --set
    overrides (defaults as config/default.toml). The programs have checked
    the file; a value of the wrong type here falls back to the default."""
    root = read_root(read_text(config_path) if config_path else "", overrides,
                     config_path or "<defaults>")

    def table(name):
        t = root.get(name)
        return t if isinstance(t, dict) else {}

    pf, ep, sec = table("portfolio"), table("endpoints"), table("security")
    out = dict(DEFAULTS)
    if isinstance(pf.get("account_currency"), str):
        out["account_currency"] = pf["account_currency"]
    if isinstance(pf.get("capital"), (int, float)) and not isinstance(pf.get("capital"), bool):
        out["capital"] = float(pf["capital"])
    out["endpoint"] = ep.get("order_events") if isinstance(ep.get("order_events"), str) else DEFAULT_ENDPOINT
    out["curve"] = sec.get("curve") is True
    for k in ("server_public_key", "client_public_key", "client_secret_key"):
        out[k] = sec.get(k) if isinstance(sec.get(k), str) else ""
    return out


def read_snapshot(run_dir):
    """The last valuation the watcher kept: {"capital", "event": PORTFOLIO
    fields, "lines": [PNL fields...]} (one ts_ns), or None."""
    try:
        with open(os.path.join(run_dir, SNAPSHOT)) as f:
            snap = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(snap, dict) and isinstance(snap.get("event"), dict) and isinstance(snap.get("lines"), list)
    return snap if ok else None


# -- the supervisor's side --------------------------------------------------

def start_watch(run_dir, config_path=None, overrides=(), log=None):
    """Starts the watcher for a run (its output appended to
    <run_dir>/logs/portfolio.log); None when it cannot be started."""
    from .watcher import start_process
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    try:
        os.unlink(os.path.join(run_dir, SNAPSHOT))  # an earlier run's is not this one's
    except FileNotFoundError:
        pass
    cmd = [sys.executable, "-m", "tp_supervisor.portfolio", "--out", os.path.join(run_dir, SNAPSHOT)]
    if config_path:
        cmd += ["--config", config_path]
    for o in overrides:
        cmd += ["--set", o]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SCRIPTS_DIR, env.get("PYTHONPATH")) if p)
    try:
        with open(os.path.join(run_dir, "logs", "portfolio.log"), "ab") as logf:
            return start_process(cmd, logf, env)
    except (OSError, subprocess.SubprocessError) as e:
        if log:
            log(f"portfolio watcher not started: {e}")
        return None


def stop_watch(proc) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE_S; waits for it."""
    if proc is None:
        return
    from .watcher import signal_group
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


# -- the watcher process ----------------------------------------------------

def _key(path, what):
    """A Z85 key from a key file (comment lines start with #)."""
    if not path:
        raise RuntimeError(f"security.{what} must be set when curve = true")
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return line.encode()
    raise RuntimeError(f"security.{what}: {path} holds no key")


def _write(path, snap) -> bool:
    """Replaces the snapshot; False when it cannot be written (a full disk:
    the previous one stays, and the next valuation tries again)."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(snap, f)
        os.replace(tmp, path)  # a reader sees the old snapshot or the new one, whole
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def watch(out_path, cfg) -> int:
    import zmq
    import tp_proto
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.rcvhwm = 10000
    for topic in (b"PNL.", b"PORTFOLIO"):
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    if cfg["curve"] and cfg["endpoint"].startswith("tcp://"):
        sub.curve_serverkey = _key(cfg["server_public_key"], "server_public_key")
        sub.curve_publickey = _key(cfg["client_public_key"], "client_public_key")
        sub.curve_secretkey = _key(cfg["client_secret_key"], "client_secret_key")
    sub.connect(cfg["endpoint"])
    lines, snapshots, bad, write_failures = {}, 0, 0, 0
    try:
        while True:
            # Once asked to stop (the programs have stopped), what is queued
            # still counts: the executor's last valuation may be in it.
            if not sub.poll(0 if stop else 100):
                if stop:
                    break
                continue
            frames = sub.recv_multipart()
            if len(frames) != 2:
                bad += 1
                continue
            try:
                name, fields = tp_proto.decode(frames[1])
            except tp_proto.ProtocolError:
                bad += 1
                continue
            if name == "instrument_pnl":
                # A valuation's lines share its ts_ns: a newer one starts afresh.
                if any(v["ts_ns"] != fields["ts_ns"] for v in lines.values()):
                    lines = {}
                lines[fields["instrument"]] = fields
            elif name == "portfolio_event":
                same = [v for v in lines.values() if v["ts_ns"] == fields["ts_ns"]]
                fields["state"] = tp_proto.TRADING_STATES.get(fields["state"], fields["state"])
                if _write(out_path, {"capital": cfg["capital"], "event": fields, "lines": same,
                                     "received_ns": time.time_ns()}):
                    snapshots += 1
                else:
                    write_failures += 1
                lines = {}
    finally:
        sub.close(0)
        ctx.term()
    print(f"portfolio watcher: {snapshots} valuations kept, {write_failures} not written, "
          f"{bad} frames not understood", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tp_supervisor.portfolio",
                                 description="Keep the executor's last published valuation in a file.")
    ap.add_argument("--out", required=True, help="the snapshot file (JSON), replaced at each PORTFOLIO event")
    ap.add_argument("--config")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    try:
        cfg = portfolio_settings(args.config, args.overrides)
        return watch(args.out, cfg)
    except Exception as e:  # noqa: BLE001 - a helper: say why and stop, the summary does without it
        print(f"portfolio watcher: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
