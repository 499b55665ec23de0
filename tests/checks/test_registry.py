"""The registry: one explicit table of check types, which no protocol module imports."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import pymon.checks
from pymon.checks import REGISTRY, CheckType, check_type
from pymon.checks.spec import CheckSpec
from tools.importgraph import module_graph

PACKAGE = Path(pymon.checks.__file__).parent
# Modules of the package that are not a protocol: the surface, the table, shared helpers.
NOT_A_TYPE = {"registry", "base", "spec", "deadlines", "echoes"}


def test_every_protocol_module_has_its_row() -> None:
    modules = {m.name for m in pkgutil.iter_modules([PACKAGE])}
    protocols = {name for name in modules - NOT_A_TYPE if not name.startswith("_")}
    assert protocols == set(REGISTRY)


def test_each_row_is_a_check_type_with_a_spec_model_and_a_summary() -> None:
    for name, kind in REGISTRY.items():
        assert isinstance(kind, CheckType)
        assert kind.name == name
        assert issubclass(kind.spec, CheckSpec)
        assert kind.run.__module__ == f"pymon.checks.{name}"
        assert kind.summary, name


def test_default_thresholds_are_in_the_table() -> None:
    assert set(check_type("http").thresholds) == {"status_code", "cert_days_left"}
    assert set(check_type("tls").thresholds) == {"cert_days_left"}
    assert set(check_type("ping").thresholds) == {"loss_pct"}
    assert set(check_type("process").thresholds) == {"count"}
    assert not check_type("tcp").thresholds


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown check type 'gopher' \(known: dns, ftp, heartbeat"):
        check_type("gopher")


def test_no_protocol_module_imports_the_registry() -> None:
    # The table imports the protocols, never the other way (tools/importgraph.py;
    # tests/test_architecture.py checks the whole tree for cycles).
    checks = {m: t for m, t in module_graph().items() if m.startswith("pymon.checks.")}
    for name, imported in checks.items():
        if name != "pymon.checks.registry":
            assert not imported & {"pymon.checks", "pymon.checks.registry"}, name
