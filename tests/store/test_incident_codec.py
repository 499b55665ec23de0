"""Incident.to_dict / Incident.from_dict: the one JSON form of an incident, both ways,
and the store's incident rows made from it."""

from __future__ import annotations

import dataclasses
import json
from typing import cast

import pytest
from sqlalchemy.engine import RowMapping

from pymon.model import Ack, Incident, Status
from pymon.store.sql.rows import incident_from_row, incident_row
from pymon.store.sql.schema import incident_table

OPEN = Incident("i1", "web", 10.5, Status.ERROR, Status.FAILED, last_notice_at=11.0)
ACKED = dataclasses.replace(
    OPEN, notices=3, pending=False, escalated=True, ack=Ack("ann", "on it", 12.0, 99.0)
)
CLOSED = dataclasses.replace(
    OPEN, status=Status.WARN, closed_at=20.0, ack=Ack("bob", "", 13.0, None)
)


@pytest.mark.parametrize("incident", [OPEN, ACKED, CLOSED], ids=["open", "acked", "closed"])
def test_an_incident_survives_json_both_ways(incident: Incident) -> None:
    assert Incident.from_dict(json.loads(json.dumps(incident.to_dict()))) == incident


def test_the_json_shape_is_pinned() -> None:
    assert ACKED.to_dict() == {
        "id": "i1",
        "service": "web",
        "opened_at": 10.5,
        "closed_at": None,
        "status": "error",
        "worst": "failed",
        "notices": 3,
        "last_notice_at": 11.0,
        "pending": False,
        "escalated": True,
        "ack": {"author": "ann", "comment": "on it", "at": 12.0, "expires": 99.0},
    }
    assert OPEN.to_dict()["ack"] is None


def test_every_incident_field_is_in_the_json() -> None:
    # A field added to Incident but not to its codec would not survive a restart.
    assert set(OPEN.to_dict()) == {f.name for f in dataclasses.fields(Incident)}
    assert set(ACKED.to_dict()["ack"]) == {f.name for f in dataclasses.fields(Ack)}


@pytest.mark.parametrize("incident", [OPEN, ACKED, CLOSED], ids=["open", "acked", "closed"])
def test_an_incident_row_fills_every_column_and_reads_back(incident: Incident) -> None:
    row = incident_row(incident)
    assert set(row) == set(incident_table.columns.keys())
    assert incident_from_row(cast(RowMapping, row)) == incident
