#!/usr/bin/env python3
"""The Python strategy beside the C++ one, same run: the real gateway
publishes a synthetic feed (4 instruments) to two strategy groups at once,
`cpp` (the C++ strategy program, every_nth) and `py` (python3 -m tp_strategy
running trivial:EveryNth, the same work), one instance each. The benchmark
binds the signals endpoint itself (no executor: what is measured is the
strategy tier) and reads the strategies' stats files.

Figures:
  highest gap-free rate   the highest rate of a ladder at which the Python
                          strategy saw every tick it was sent with no seq gap
                          and kept up (done within 1 s of the gateway's last
                          tick); the C++ strategy's result at the same rates
                          is shown beside it
  tick->signal latency    created_ts_ns - causation_ts_ns of each signal (the
                          gateway's publish time of the causing tick to the
                          signal's creation, same host clock), p50/p99, at a
                          fixed moderate rate and at the highest gap-free rate

  bench/python_strategy/bench.py --bin-dir build/release/bin [--quick] [--out F.json]
scripts/bench runs it after pipeline_bench (figures in bench/results/)."""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import msgpack  # noqa: E402
import zmq  # noqa: E402

LADDER = [10_000, 20_000, 35_000, 50_000, 75_000, 100_000, 150_000, 200_000, 300_000]
LATENCY_RATE = 10_000
EVERY_NTH = 100
# The SUB sockets dial the tick endpoint once the gateway binds it (ZeroMQ
# redials every 100 ms): the ticks published before they join are not theirs
# to miss. A gap after the first tick is counted by the strategy (gaps).
JOIN_ALLOWANCE_S = 0.5


def config(d, rate, ticks):
    ep = {k: f"ipc://{d}/{k}.ipc" for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
    return "\n".join([
        "[run]", f'dir = "{d}/run"', "stats_interval_ms = 100", 'log_level = "warn"',
        "[endpoints]", *(f'{k} = "{v}"' for k, v in ep.items()),
        "[gateway]", f"rate = {rate}", f"max_ticks = {ticks}", "heartbeat_ms = 200",
        "[strategy]", "resend_ms = 600000", "signal_ttl_ms = 600000", "feed_timeout_ms = 5000",
        "max_tick_age_ms = 60000", "max_signal_tick_age_ms = 60000",
        "[[strategy.groups]]", 'name = "cpp"', 'kind = "every_nth"', "instances = 1",
        "[strategy.groups.params]", f"n = {EVERY_NTH}",
        "[[strategy.groups]]", 'name = "py"', 'kind = "python"', 'entry = "trivial:EveryNth"',
        f'python_path = "{HERE}"', "instances = 1",
        "[strategy.groups.params]", f"n = {EVERY_NTH}", "",
    ]), ep


def read_stats(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def percentile(xs, q):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def trial(bin_dir, rate, seconds, pin=False):
    """One run at `rate`: returns per-group figures."""
    ticks = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="tp_pybench_") as d:
        text, ep = config(d, rate, ticks)
        cfg = os.path.join(d, "deploy.toml")
        with open(cfg, "w") as f:
            f.write(text)
        os.makedirs(os.path.join(d, "run"))
        ctx = zmq.Context()
        pull = ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, 0)
        pull.bind(ep["signals"])
        procs = {}
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "strategy", "python"), PYTHONDONTWRITEBYTECODE="1")
        logs = open(os.path.join(d, "logs.txt"), "ab")
        taskset = lambda cpu: ["taskset", "-c", str(cpu)] if pin else []  # noqa: E731
        try:
            procs["cpp"] = subprocess.Popen(taskset(1) + [os.path.join(bin_dir, "strategy"), "--config", cfg,
                                                          "--group", "cpp", "--shard", "0", "--shards", "1"],
                                            stdout=logs, stderr=subprocess.STDOUT)
            procs["py"] = subprocess.Popen(taskset(1) + [sys.executable, "-m", "tp_strategy", "--config", cfg,
                                                         "--group", "py", "--shard", "0", "--shards", "1"],
                                           stdout=logs, stderr=subprocess.STDOUT, env=env)
            run = os.path.join(d, "run")
            for g in ("cpp", "py"):
                wait_for(lambda: read_stats(os.path.join(run, f"{g}-0.stats.json")), 20, f"{g}-0 to start")
            procs["gateway"] = subprocess.Popen(taskset(0) + [os.path.join(bin_dir, "gateway"), "--config", cfg],
                                                stdout=logs, stderr=subprocess.STDOUT)
            signals = {"cpp": {}, "py": {}}

            def drain(ms):
                end = time.monotonic() + ms / 1000
                while (left := end - time.monotonic()) > 0:
                    if pull.poll(int(left * 1000) + 1):
                        while True:
                            try:
                                p = pull.recv(zmq.NOBLOCK)
                            except zmq.Again:
                                break
                            m = msgpack.unpackb(p)
                            sid, group, created, cause = m[2], m[3], m[10], m[13]
                            signals.setdefault(group, {}).setdefault(sid, created - cause)

            gw_path = os.path.join(run, "gateway.stats.json")

            def gateway_done():
                drain(50)
                s = read_stats(gw_path)
                return s if s and s.get("ticks_published", 0) >= ticks else None
            gw = wait_for(gateway_done, seconds * 20 + 30, "the gateway to publish every tick")
            last_tick = gw["last_tick_ns"]
            final, done_at = {}, {}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                drain(100)
                for g in ("cpp", "py"):
                    s = read_stats(os.path.join(run, f"{g}-0.stats.json"))
                    if not s:
                        continue
                    prev = final.get(g)
                    if prev is None or s["ticks_received"] != prev["ticks_received"]:
                        done_at[g] = s["ts_ns"]
                    final[g] = s
                if all(g in final and final[g]["ts_ns"] > done_at[g] + 300_000_000 for g in ("cpp", "py")):
                    break
            gw = read_stats(gw_path) or gw
            span = max(1, gw["last_tick_ns"] - gw["first_tick_ns"])
            out = {"rate": rate, "ticks": ticks, "achieved_rate": round(gw["ticks_published"] * 1e9 / span)}
            for g in ("cpp", "py"):
                s = final[g]
                lat = list(signals.get(g, {}).values())
                lag_s = max(0.0, (done_at[g] - last_tick) / 1e9)
                out[g] = {
                    "received": s["ticks_received"], "gaps": s["gaps"], "out_of_order": s["out_of_order"],
                    "lag_s": round(lag_s, 3), "signals": len(lat),
                    "tick_to_signal_us": {"p50": percentile(lat, 0.5) / 1e3, "p99": percentile(lat, 0.99) / 1e3},
                    "gap_free": s["gaps"] == 0 and s["out_of_order"] == 0 and s["ticks_received"] >= ticks - JOIN_ALLOWANCE_S * rate
                    and lag_s < 1.0,
                }
            return out
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs.values():
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            logs.close()
            ctx.destroy(0)


def fmt(t, g):
    r = t[g]
    return (f"{'yes' if r['gap_free'] else 'NO ':>3}  recv {r['received']:>8}/{t['ticks']:<8} gaps {r['gaps']:<6} "
            f"lag {r['lag_s']:5.2f}s  tick->signal p50 {r['tick_to_signal_us']['p50']:8.1f} us "
            f"p99 {r['tick_to_signal_us']['p99']:9.1f} us")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "release", "bin"))
    ap.add_argument("--quick", action="store_true", help="2 s per rate instead of 5")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--pin", action="store_true", help="gateway on CPU 0, strategies on CPU 1")
    ap.add_argument("--max-rate", type=int, default=LADDER[-1])
    ap.add_argument("--out", help="write the figures as JSON here")
    a = ap.parse_args()
    seconds = a.seconds or (2.0 if a.quick else 5.0)
    print(f"== python strategy beside C++ every_nth: {seconds:g} s per rate, signal every {EVERY_NTH}th tick, "
          f"load {open('/proc/loadavg').read().split()[0]}, {os.cpu_count()} CPUs", flush=True)
    trials, best = [], None
    lat_trial = trial(a.bin_dir, LATENCY_RATE, seconds, a.pin)
    trials.append(lat_trial)
    for rate in [r for r in LADDER if r <= a.max_rate]:
        t = lat_trial if rate == LATENCY_RATE else trial(a.bin_dir, rate, seconds, a.pin)
        if t is not lat_trial:
            trials.append(t)
        print(f"  rate {rate:>7} (achieved {t['achieved_rate']:>7}/s)\n    py : {fmt(t, 'py')}\n    cpp: {fmt(t, 'cpp')}",
              flush=True)
        if t["py"]["gap_free"]:
            best = t
        else:
            break
    summary = {
        "python_gap_free_rate": best["achieved_rate"] if best else 0,
        "python_gap_free_rate_requested": best["rate"] if best else 0,
        "cpp_gap_free_at_that_rate": bool(best and best["cpp"]["gap_free"]),
        "latency_rate": LATENCY_RATE,
        "python_tick_to_signal_us": lat_trial["py"]["tick_to_signal_us"],
        "cpp_tick_to_signal_us": lat_trial["cpp"]["tick_to_signal_us"],
        "python_tick_to_signal_us_at_best": best["py"]["tick_to_signal_us"] if best else None,
        "cpp_tick_to_signal_us_at_best": best["cpp"]["tick_to_signal_us"] if best else None,
        "target_ticks_per_s": 50_000,
        "trials": trials,
    }
    print("== python strategy figures")
    print(f"  highest gap-free rate, python strategy: {summary['python_gap_free_rate']:,} ticks/s "
          f"(requested {summary['python_gap_free_rate_requested']:,}; target >= 50,000; C++ every_nth gap-free "
          f"at the same rate: {'yes' if summary['cpp_gap_free_at_that_rate'] else 'no'})")
    for g, name in (("py", "python"), ("cpp", "C++   ")):
        lo, hi = lat_trial[g]["tick_to_signal_us"], (best or lat_trial)[g]["tick_to_signal_us"]
        print(f"  tick->signal {name}: p50 {lo['p50']:.1f} us, p99 {lo['p99']:.1f} us at {LATENCY_RATE:,}/s; "
              f"p50 {hi['p50']:.1f} us, p99 {hi['p99']:.1f} us at {(best or lat_trial)['rate']:,}/s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"written {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
