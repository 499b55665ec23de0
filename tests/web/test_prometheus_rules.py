"""examples/prometheus-rules.yml: it parses as a Prometheus rule file, and every metric
(and label) its expressions name is one pymon's /metrics really exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from pymon.engine.ports import AckFigures, Health, NodeView, ReloadStatus
from tests.support.port import SOME_TIME
from tests.web.helpers import app_client
from tests.web.reports_data import seeded_port

RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus-rules.yml"
#: Labels Prometheus adds to every scraped series itself.
SCRAPE_LABELS = {"job", "instance"}
SELECTOR = re.compile(r"\b(pymon_[a-z0-9_]+)(?:\{([^}]*)\})?")


async def exported() -> dict[str, set[str]]:
    """Every series name /metrics exports with its label names (a seeded fake port
    with every optional family present: acks, a reload, nodes)."""
    port = seeded_port()
    port.figures = Health(
        started_at=SOME_TIME - 60,
        services=3,
        acks=AckFigures(port=2525),
        reload=ReloadStatus(ok=True, at=SOME_TIME, source="sighup"),
    )
    port.node_views = [NodeView("n1", "h", 1, "", True, 256, 0.5, "sum", 1.0)]
    async with app_client(port) as client:
        text = (await client.get("/metrics")).text
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def rules() -> list[dict[str, Any]]:
    document = YAML(typ="safe").load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_file_is_a_rule_file() -> None:
    document = YAML(typ="safe").load(RULES.read_text())
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"]
    found = rules()
    alerts = [rule["alert"] for rule in found]
    assert len(alerts) == len(set(alerts))
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["expr"].strip() and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in ("warning", "critical")
    # SLA burn, a service down and pymon's own health are all there.
    assert {"PymonSlaBurn", "PymonServiceDown", "PymonAbsent"} <= set(alerts)


async def test_every_metric_and_label_a_rule_names_is_exported() -> None:
    series = await exported()
    used: set[str] = set()
    for rule in rules():
        for name, selector in SELECTOR.findall(rule["expr"]):
            used.add(name)
            assert name in series, f"{rule['alert']}: /metrics has no {name}"
            labels = {part.split("=")[0].strip() for part in selector.split(",") if part.strip()}
            missing = labels - series[name] - SCRAPE_LABELS
            assert not missing, f"{rule['alert']}: {name} has no label {missing}"
        for matched in re.findall(r"on\(([^)]*)\)", rule["expr"]):
            for label in (part.strip() for part in matched.split(",")):
                assert label in SCRAPE_LABELS or any(label in s for s in series.values())
    assert {"pymon_service_uptime_ratio", "pymon_service_sla_target_ratio"} <= used
