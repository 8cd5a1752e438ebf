"""The shipped Grafana dashboard (config/grafana/trading-pipeline.json) as the
tests read it: its panels, each query target, a target's PromQL with the
template variables put in the way Grafana puts them in before it asks
Prometheus, and the label_values() queries of its variables."""

import json
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "config", "grafana", "trading-pipeline.json")
# What every panel and target names as its data source: the dashboard's
# datasource variable, so that an import asks which Prometheus to use.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# $var, ${var}, ${var:format} and the deprecated [[var]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"label_values\((?:(.+),\s*)?(\w+)\)\Z")


def load(path=DASHBOARD):
    with open(path) as f:
        return json.load(f)


def panels(dashboard):
    """Every panel, rows included, and the panels a collapsed row holds."""
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def targets(dashboard):
    """[(panel, target)] of every query target of every panel."""
    return [(p, t) for p in panels(dashboard) for t in p.get("targets", [])]


def variables(dashboard, kind=None):
    return [v for v in dashboard["templating"]["list"] if kind is None or v["type"] == kind]


def all_values(dashboard):
    """{name: what Grafana puts in for "All"} of the multi-value query
    variables: their allValue (a regex, for =~ matchers)."""
    return {v["name"]: v["allValue"] for v in variables(dashboard, "query")}


def substitute(expr, values):
    """`expr` with each $variable replaced from `values`, as Grafana does
    before it sends a query; KeyError naming a variable `values` lacks."""
    return _VARIABLE.sub(lambda m: values[next(g for g in m.groups() if g)], expr)


def label_values(variable):
    """(series selector or None, label) of a query variable's
    label_values([selector,] label)."""
    query = variable["query"]
    query = query["query"] if isinstance(query, dict) else query
    m = _LABEL_VALUES.match(query.strip())
    if not m:
        raise ValueError(f"not a label_values() query: {query}")
    return m.group(1), m.group(2)
