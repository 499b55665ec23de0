"""The registry: one explicit table of check types, and a package without import cycles."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

import pymon.checks
from pymon.checks import REGISTRY, CheckType, check_type
from pymon.config.schema import CheckSpec

PACKAGE = Path(pymon.checks.__file__).parent
# Modules of the package that are not a protocol: the surface, the table, shared helpers.
NOT_A_TYPE = {"registry", "base"}

# base.py names heartbeat's HeartbeatBoard for CheckContext.heartbeats (a TYPE_CHECKING
# import); that seam is to be replaced, and with it this one allowance.
KNOWN_CYCLES: list[set[str]] = []


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ``modules`` that ``path`` imports, TYPE_CHECKING blocks and function bodies included.

    ``from package import module`` counts as importing the module, not the package's
    ``__init__`` (which Python runs first for any of its modules anyway).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                module = f"{node.module}.{alias.name}"
                found.add(module if module in modules else node.module)
    return found & modules


def _graph() -> dict[str, set[str]]:
    files = {"pymon.checks": PACKAGE / "__init__.py"} | {
        f"pymon.checks.{m.name}": PACKAGE / f"{m.name}.py" for m in pkgutil.iter_modules([PACKAGE])
    }
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module."""

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reached = {name: reach(name) for name in graph}
    cycles: list[set[str]] = []
    for name in sorted(graph):
        if name in reached[name] and not any(name in c for c in cycles):
            cycles.append({other for other in reached[name] if name in reached[other]})
    return cycles


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
    graph = _graph()
    for name, imported in graph.items():
        if name not in ("pymon.checks", "pymon.checks.registry"):
            assert not imported & {"pymon.checks", "pymon.checks.registry"}, name


def test_the_package_has_no_import_cycle() -> None:
    assert [c for c in _cycles(_graph()) if c not in KNOWN_CYCLES] == []
