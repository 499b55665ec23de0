"""The cluster on a fake engine port: every service carries the node that runs it,
``GET /api/v1/nodes``, the Nodes page, and the per-node series of ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from prometheus_client.parser import text_string_to_metric_families

from pymon.engine.ports import ClusterFigures, Health, NodeView
from pymon.model import Status
from tests.support.port import SOME_TIME, FakePort, fake_port
from tests.web.helpers import app_client

TOKEN_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("t0ken")
CONFIG = f"""
web:
  auth: {{read: true, tokens: [{{name: ci, token_hash: "{TOKEN_HASH}"}}]}}
defaults: {{flap_guard: {{failed: 1}}}}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: db, type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: orphan, type: tcp, host: 127.0.0.1, port: 9}}
"""
NODES = [
    NodeView("south", "h2", 22, "", False, 0, 42.5, "other-sum", 0.0),
    NodeView("north", "h1", 11, "dc-1", True, 256, 0.4, "sum", 12.345),
]


@pytest.fixture
def port() -> FakePort:
    port = fake_port(CONFIG, node_views=NODES, owners={"web": "north", "db": "south"})
    port.check("db", Status.FAILED, "connection refused")
    return port


@pytest.fixture
async def client(port: FakePort) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(port, headers={"Authorization": "Bearer t0ken"}) as c:
        yield c


async def test_every_service_names_its_node(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/services")).json()["services"]
    assert {s["name"]: s["node"] for s in listed} == {"web": "north", "db": "south", "orphan": None}
    assert (await client.get("/api/v1/services/db")).json()["node"] == "south"


async def test_the_nodes_by_name_with_their_figures(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/nodes")
    assert answer.status_code == 200
    assert answer.json() == {
        "nodes": [
            {
                "name": "north",
                "host": "h1",
                "pid": 11,
                "location": "dc-1",
                "alive": True,
                "shards": 256,
                "heartbeat_age": 0.4,
                "config_checksum": "sum",
                "checks_per_s": 12.345,
            },
            {
                "name": "south",
                "host": "h2",
                "pid": 22,
                "location": "",
                "alive": False,
                "shards": 0,
                "heartbeat_age": 42.5,
                "config_checksum": "other-sum",
                "checks_per_s": 0.0,
            },
        ]
    }


async def test_the_nodes_need_read_credentials(port: FakePort) -> None:
    async with app_client(port) as anonymous:
        assert (await anonymous.get("/api/v1/nodes")).status_code == 401


async def test_a_port_without_a_cluster_has_no_nodes() -> None:
    async with app_client(fake_port()) as c:
        assert (await c.get("/api/v1/nodes")).json() == {"nodes": []}


async def test_the_nodes_page_lists_each_node(client: httpx.AsyncClient) -> None:
    page = await client.get("/nodes")
    assert page.status_code == 200
    html = page.text
    assert 'href="/nodes" aria-current="page"' in html
    north = html[html.index('data-node="north"') : html.index('data-node="south"')]
    assert "alive" in north and ">256<" in north and "dc-1" in north and "12.3" in north
    south = html[html.index('data-node="south"') :]
    assert "gone" in south and "42 s ago" in south and "differs" in south
    assert "(this node)" not in html  # the fake port is no node of its own


async def test_the_nodes_page_marks_this_node(port: FakePort) -> None:
    port.figures = Health(
        started_at=SOME_TIME - 60, services=3, cluster=ClusterFigures("north", 256)
    )
    async with app_client(port, headers={"Authorization": "Bearer t0ken"}) as c:
        html = (await c.get("/nodes")).text
    north = html[html.index('data-node="north"') : html.index('data-node="south"')]
    assert "(this node)" in north
    assert "(this node)" not in html[html.index('data-node="south"') :]


async def test_a_service_page_names_its_node(client: httpx.AsyncClient) -> None:
    assert '<dd data-field="node">south</dd>' in (await client.get("/services/db")).text


async def test_metrics_label_services_by_node_and_show_each_node(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/metrics")).text
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    assert {s.labels["service"]: s.labels["node"] for s in families["pymon_service_up"]} == {
        "web": "north",
        "db": "south",
        "orphan": "",
    }
    shown = {
        name: {s.labels["node"]: s.value for s in families[name]}
        for name in (
            "pymon_node_up",
            "pymon_node_shards",
            "pymon_node_heartbeat_age_seconds",
            "pymon_node_checks_per_second",
        )
    }
    assert shown == {
        "pymon_node_up": {"north": 1.0, "south": 0.0},
        "pymon_node_shards": {"north": 256.0, "south": 0.0},
        "pymon_node_heartbeat_age_seconds": {"north": 0.4, "south": 42.5},
        "pymon_node_checks_per_second": {"north": 12.345, "south": 0.0},
    }


async def test_healthz_and_the_health_page_say_why_a_node_holds_no_shards(port: FakePort) -> None:
    problem = "config checksum abc differs from the cluster's def"
    port.figures = Health(
        started_at=SOME_TIME - 60, services=3, cluster=ClusterFigures("north", 0, problem)
    )
    async with app_client(port, headers={"Authorization": "Bearer t0ken"}) as c:
        health = (await c.get("/healthz")).json()
        page = (await c.get("/health")).text
    assert health["cluster"] == {"node": "north", "shards": 0, "problem": problem, "error": None}
    assert "Holds none because" in page and "differs from the cluster" in page
