"""The observability pack in docs/observability/: the Grafana dashboard, the Prometheus alert
rules and the KEDA ScaledObject parse, and every metric they query is one a worker serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from asyncjobs._running import ClaimedJob
from asyncjobs._store import QueueCounts, QueueKeys
from asyncjobs.metrics import QUEUE_TOTALS, WorkerMetrics

PACK = Path(__file__).parent.parent / "docs" / "observability"
#: Grafana's variables, as a query sees them once Grafana has filled them in.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$queue": ".*"}


def exported_names() -> set[str]:
    """Every sample name a worker's /metrics page holds once it ran a job and read Redis."""
    metrics = WorkerMetrics()
    job = ClaimedJob(QueueKeys("default"), "j", "t", b"", 1, 1, 0, 1, "w:1", claimed_ms=2)
    metrics.job_started(job)
    for outcome in ("succeeded", "retry", "failed"):
        metrics.job_ended(job, outcome, 0.01)
    stats = {name: 1 for name in QUEUE_TOTALS} | {"enqueued:t": 1}
    metrics.refresh("default", QueueCounts(1, 1, 1, 1, 1, stats))
    page = generate_latest(metrics.registry).decode()
    return {s.name for family in text_string_to_metric_families(page) for s in family.samples}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (it must parse)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((PACK / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
            assert match, variable
            queries.append(match.group(1))
    return queries


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((PACK / "prometheus-alerts.yaml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def keda_queries() -> list[str]:
    scaled = yaml.safe_load((PACK / "keda-scaledobject.yaml").read_text())
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert scaled["spec"]["minReplicaCount"] >= 1, "the workers report the depth themselves"
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"prometheus"}
    assert all(float(t["metadata"]["threshold"]) > 0 for t in triggers)
    return [t["metadata"]["query"] for t in triggers]


@pytest.mark.parametrize(
    "source", [dashboard_queries, lambda: [r["expr"] for r in alert_rules()], keda_queries]
)
def test_every_metric_the_pack_queries_is_one_a_worker_exports(source: Any) -> None:
    exported = exported_names()
    queries = source()
    assert queries
    for query in queries:
        unknown = metric_names(query) - exported
        assert not unknown, f"{query!r} uses {unknown}, which no worker exports"


def test_the_dashboard_is_one_grafana_imports() -> None:
    dashboard = json.loads((PACK / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and "datasource" in variables
        for target in panel["targets"]:
            assert 'queue=~"$queue"' in target["expr"], f"{panel['title']} follows $queue"


def test_every_alert_says_what_it_means_and_how_bad_it_is() -> None:
    rules = alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
