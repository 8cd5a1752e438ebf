"""Helpers for the tests that read Prometheus metrics: an HTTP GET that never
raises, the samples of one metric in an exposition, `promtool check
metrics`, and Debian's prometheus server on a temporary config."""

import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from ports import free_port

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def http_get(url, timeout=5.0):
    """(status, body text); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, ""


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


def promtool_check_metrics(text):
    """(ok, promtool's output) of `promtool check metrics` on an exposition."""
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return r.returncode == 0, r.stdout + r.stderr


class Prometheus:
    """Debian's prometheus on a temporary config scraping every second, the
    targets listed (`targets`) or read from a file_sd file (`file_sd`), with
    `rules` (files) loaded."""

    def __init__(self, workdir, targets=(), file_sd=None, rules=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
            if rules:
                f.write("rule_files:\n" + "".join(f"  - {json.dumps(r)}\n" for r in rules))
            f.write("scrape_configs:\n  - job_name: tp\n")
            if file_sd:
                f.write(f"    file_sd_configs:\n      - files: [{json.dumps(file_sd)}]\n        refresh_interval: 1s\n")
            else:
                f.write(f"    static_configs:\n      - targets: [{', '.join(repr(t) for t in targets)}]\n")
        self.log_path = os.path.join(workdir, "prometheus.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir}/tsdb",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def api(self, path, **params):
        """The `data` of a GET /api/v1/<path>; None when it does not answer."""
        status, body = http_get(f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params))
        if status != 200:
            return None
        reply = json.loads(body)
        assert reply["status"] == "success", reply
        return reply["data"]

    def evaluate(self, promql):
        """(result, None) of an instant query, or (None, Prometheus' error)
        when it does not parse or cannot be evaluated."""
        status, body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        try:
            reply = json.loads(body)
        except ValueError:
            return None, f"HTTP {status}: {body[:200]!r}"
        if reply.get("status") != "success":
            return None, f"{reply.get('errorType')}: {reply.get('error')}"
        return reply["data"]["result"], None

    def query(self, promql):
        """[(labels dict, float value)] of an instant query."""
        data = self.api("query", query=promql)
        return [] if data is None else [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
