"""The real gateway and dead_letter with metrics.port set: their /metrics
pass `promtool check metrics` and say what their stats files say
(MetricsEndpoints, tier process), and a real Prometheus (Debian's
`prometheus`, on a temporary config scraping both every second) reads the
same figures through its query API (RealPrometheus, tier system).

Programs run in a temporary directory on ipc:// endpoints; the metrics and
Prometheus listen on free loopback ports; every wait polls a stats file or an
HTTP API with a deadline; children are always killed. Skipped, saying why,
when promtool or prometheus is not installed."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from waiting import read_json, wait_for  # noqa: E402

BIN_DIR = os.environ.get("TP_BIN_DIR", "")
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
# A reason with every character the exposition format escapes.
ODD_REASON = 'odd "reason" \\ with\nnewline'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    """(status, body text); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, ""


def letter(reason, detail="from the metrics test"):
    # proto's DeadLetter: version, type, source, reason, detail, ts_ns, original.
    return msgpack.packb([9, 1, "executor", reason, detail, time.time_ns(), b"original"], use_bin_type=True)


def push_letters(endpoint, frames):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 5000)
    sock.connect(endpoint)
    for frame in frames:
        sock.send(frame)
    sock.close()
    ctx.term()


def samples(text, name):
    """{frozenset of label pairs: value} of `name`'s samples in an exposition,
    read with the format's escapes undone (enough for these tests' labels)."""
    out = {}
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels, value = {}, line.rsplit(" ", 1)[1]
        if "{" in line:
            body = line[len(name) + 1:line.rindex("}")]
            i = 0
            while i < len(body):
                eq = body.index("=", i)
                key, j, val = body[i:eq], eq + 2, []
                while body[j] != '"':
                    if body[j] == "\\":
                        j += 1
                        val.append({"n": "\n"}.get(body[j], body[j]))
                    else:
                        val.append(body[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 2  # past '"' and ','
        out[frozenset(labels.items())] = float(value)
    return out


class Deployment:
    """A gateway and a dead_letter sink with metrics on, in a temp dir."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp_metrics_")
        self.dir = self.tmp.name
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir)
        self.ep = {k: f"ipc://{self.dir}/{k}.sock"
                   for k in ("ticks", "signals", "order_events", "orders", "dead_letters")}
        self.config = os.path.join(self.dir, "deploy.toml")
        with open(self.config, "w") as f:
            f.write("[run]\n" f'dir = "{self.run_dir}"\n' "stats_interval_ms = 200\n\n[endpoints]\n")
            f.write("".join(f'{k} = "{v}"\n' for k, v in self.ep.items()))
        self.procs = {}
        self.ports = {}

    def start(self, name, *sets, port=None):
        self.ports[name] = port or free_port()
        args = [os.path.join(BIN_DIR, name), "--config", self.config, "--set", f"metrics.port={self.ports[name]}"]
        for s in sets:
            args += ["--set", s]
        with open(self.log_path(name), "ab") as log:
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        return self.procs[name]

    def wait_up(self, name):
        wait_for(lambda: self.stats(name) and http_get(self.url(name))[0] == 200, 10,
                 what=f"{name}'s stats and /metrics", detail=lambda: self.log(name))

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}/metrics"

    def metrics(self, name):
        status, body = http_get(self.url(name))
        assert status == 200, (name, status, body)
        return body

    def log_path(self, name):
        return os.path.join(self.run_dir, name + ".log")

    def log(self, name):
        try:
            with open(self.log_path(name)) as f:
                return f.read()
        except OSError:
            return ""

    def stats(self, name):
        return read_json(os.path.join(self.run_dir, f"{name}.stats.json"))

    def stop(self, name, timeout=5.0):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout)

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        self.tmp.cleanup()


@unittest.skipUnless(BIN_DIR, "TP_BIN_DIR is not set (ctest sets it)")
class MetricsEndpoints(unittest.TestCase):
    def setUp(self):
        self.d = Deployment()
        self.addCleanup(self.d.close)

    def test_both_endpoints_pass_promtool_and_agree_with_their_stats(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian: apt-get install prometheus)")
        d = self.d
        d.start("dead_letter")
        d.start("gateway", "gateway.rate=2000", "gateway.max_ticks=1500")
        d.wait_up("dead_letter")
        d.wait_up("gateway")
        push_letters(d.ep["dead_letters"], [letter("trading_halted")] * 3 + [letter(ODD_REASON)] * 2)
        wait_for(lambda: (d.stats("dead_letter") or {}).get("dead_letters") == 5, 10, what="5 letters stored")
        wait_for(lambda: (d.stats("gateway") or {}).get("ticks_published") == 1500, 10, what="1500 ticks")

        for name in ("gateway", "dead_letter"):
            # Published with the stats file, so after the figure reached its end
            # the next snapshot carries it.
            stats_key, metric = {"gateway": ("ticks_published", "tp_gateway_ticks_published_total"),
                                 "dead_letter": ("dead_letters", "tp_dead_letter_letters_total")}[name]
            want = d.stats(name)[stats_key]
            wait_for(lambda: sum(samples(d.metrics(name), metric).values()) == want, 5,
                     what=f"{metric} == {want}", detail=lambda: d.metrics(name))
            text = d.metrics(name)
            check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                                   timeout=30)
            self.assertEqual(check.returncode, 0, f"{name}:\n{check.stdout}{check.stderr}\n{text}")
            for family in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                           "process_start_time_seconds", "tp_metrics_snapshot_timestamp_seconds"):
                self.assertIn(f"# TYPE {family} ", text, name)
            self.assertIn(f'{{program="{name}",process="{name}"}}', text)

        by_reason = samples(d.metrics("dead_letter"), "tp_dead_letter_letters_total")
        self.assertEqual({dict(k)["reason"]: v for k, v in by_reason.items()},
                         {"trading_halted": 3.0, ODD_REASON: 2.0})
        self.assertEqual(d.stats("dead_letter")["by_reason"], {"trading_halted": 3, ODD_REASON: 2})
        rss = samples(d.metrics("gateway"), "process_resident_memory_bytes")
        self.assertGreater(next(iter(rss.values())), 1 << 20)

        self.assertEqual(d.stop("gateway"), 0)
        self.assertEqual(d.stop("dead_letter"), 0)
        self.assertEqual(http_get(d.url("gateway"), timeout=2)[0], 0, "the endpoint is gone with the program")

    def test_a_taken_port_is_a_clear_start_error(self):
        d = self.d
        d.start("dead_letter")
        d.wait_up("dead_letter")
        gw = d.start("gateway", port=d.ports["dead_letter"])
        self.assertEqual(gw.wait(10), 1)
        self.assertIn(f"cannot listen on 127.0.0.1:{d.ports['dead_letter']}", d.log("gateway"))
        self.assertEqual(http_get(d.url("dead_letter"))[0], 200, "the first program still serves")

    def test_off_by_default_and_a_public_host_refused(self):
        d = self.d
        p = subprocess.run([os.path.join(BIN_DIR, "gateway"), "--config", d.config, "--set",
                            "metrics.host=0.0.0.0", "--set", "metrics.port=1"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics.host must be a loopback address", p.stdout + p.stderr)


class Prometheus:
    """Debian's prometheus on a temporary config, scraping `targets` every second."""

    def __init__(self, workdir, targets):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: tp\n    static_configs:\n"
                    f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
        self.log_path = os.path.join(workdir, "prometheus.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir}/tsdb",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def query(self, promql):
        """[(labels dict, float value)] of an instant query."""
        status, body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if status != 200:
            return []
        reply = json.loads(body)
        assert reply["status"] == "success", reply
        return [(r["metric"], float(r["value"][1])) for r in reply["data"]["result"]]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@unittest.skipUnless(BIN_DIR, "TP_BIN_DIR is not set (ctest sets it)")
class RealPrometheus(unittest.TestCase):
    def test_prometheus_scrapes_both_and_agrees_with_the_stats_files(self):
        if not PROMETHEUS:
            self.skipTest("the prometheus server is not installed (Debian: apt-get install prometheus)")
        d = Deployment()
        self.addCleanup(d.close)
        d.start("dead_letter")
        d.start("gateway", "gateway.rate=1000", "gateway.max_ticks=6000")
        d.wait_up("dead_letter")
        d.wait_up("gateway")
        prom = Prometheus(d.dir, [f"127.0.0.1:{d.ports['gateway']}", f"127.0.0.1:{d.ports['dead_letter']}"])
        self.addCleanup(prom.close)

        wait_for(lambda: sorted(v for _, v in prom.query('up{job="tp"}')) == [1.0, 1.0], 20,
                 what="up == 1 for both targets", detail=prom.log)

        # While the gateway publishes: a counter Prometheus scraped is never
        # ahead of the stats file read after the query.
        live = wait_for(lambda: prom.query("tp_gateway_ticks_published_total > 0"), 10,
                        what="a scrape with ticks", detail=prom.log)
        seen = live[0][1]
        self.assertLessEqual(seen, d.stats("gateway")["ticks_published"])
        self.assertEqual(live[0][0]["program"], "gateway")

        push_letters(d.ep["dead_letters"], [letter("trading_halted")] * 4 + [letter(ODD_REASON)] * 3
                     + [b"\xc1 not msgpack"])

        # Once the feed is done the figures stop moving: the next scrapes
        # must match the stats files exactly.
        wait_for(lambda: (d.stats("gateway") or {}).get("ticks_published") == 6000, 15, what="6000 ticks")
        wait_for(lambda: prom.query("tp_gateway_ticks_published_total")
                 and prom.query("tp_gateway_ticks_published_total")[0][1] == 6000, 10,
                 what="Prometheus sees 6000 ticks", detail=prom.log)

        want = wait_for(lambda: (d.stats("dead_letter") or {}).get("dead_letters") == 8
                        and d.stats("dead_letter")["by_reason"], 10, what="8 letters stored")
        self.assertEqual(want, {"trading_halted": 4, ODD_REASON: 3, "malformed": 1})

        def by_reason():
            return {m["reason"]: v for m, v in prom.query("tp_dead_letter_letters_total")}

        wait_for(lambda: by_reason() == {k: float(v) for k, v in want.items()}, 10,
                 what=f"Prometheus' letters by reason == {want}", detail=lambda: f"{by_reason()}")
        # The process metrics come with each scrape, labelled like the rest.
        rss = wait_for(lambda: len(prom.query('process_resident_memory_bytes{job="tp"}')) == 2
                       and prom.query('process_resident_memory_bytes{job="tp"}'), 5, what="both programs' RSS")
        self.assertEqual(sorted(m["program"] for m, _ in rss), ["dead_letter", "gateway"])
        self.assertTrue(all(v > (1 << 20) for _, v in rss), rss)

if __name__ == "__main__":
    unittest.main()
