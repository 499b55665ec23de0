"""The house rules of pymon's imports, read from the source by ``tools/importgraph.py``
(every import counts: ``TYPE_CHECKING`` blocks and function bodies too).

Layers, lowest first: the values (model, errors, clock, text, events) -> config and
checks -> store -> engine -> the edges (notify, web) -> the composition root
(``pymon.daemon``) -> the command line. An edge reaches the engine through its port.
"""

from __future__ import annotations

import pytest

from tools.importgraph import cycles, module_graph, package_graph

MODULES = module_graph()
PACKAGES = package_graph(MODULES)

# What an edge (web, notify, shell, store...) may import from the engine: the port and
# the pure helpers beside it, never the runtime, the scheduler or the rules.
ENGINE_FACE = {
    "pymon.engine",
    "pymon.engine.ports",
    "pymon.engine.bus",
    "pymon.engine.maintenance",
    "pymon.engine.reconcile",
}


def importers_of(target: str) -> set[str]:
    """Modules that import ``target`` (or a module inside it)."""
    return {
        module
        for module, imported in MODULES.items()
        if any(t == target or t.startswith(f"{target}.") for t in imported)
    }


def test_the_graph_is_read() -> None:
    # Guards the rules below against passing on an empty graph.
    assert "pymon.engine.runtime" in MODULES["pymon.daemon"]
    assert "pymon.engine.ports" in MODULES["pymon.web.app"]
    assert len(MODULES) > 50


def test_no_module_imports_itself_back() -> None:
    assert cycles(MODULES) == []


def test_no_package_imports_itself_back() -> None:
    assert cycles(PACKAGES) == []


def test_only_the_command_line_builds_the_daemon() -> None:
    assert {m.partition(".cli")[0] + ".cli" for m in importers_of("pymon.daemon")} <= {"pymon.cli"}


def test_the_engine_does_not_know_its_edges() -> None:
    engine = {m for m in MODULES if m.startswith("pymon.engine")}
    for edge in ("pymon.web", "pymon.notify", "pymon.daemon", "pymon.cli", "pymon.shell"):
        assert not (importers_of(edge) & engine), f"the engine imports {edge}"


@pytest.mark.parametrize(
    "edge", ["pymon.web", "pymon.notify", "pymon.shell", "pymon.client", "pymon.store"]
)
def test_an_edge_sees_the_engine_only_through_its_port(edge: str) -> None:
    for module, imported in MODULES.items():
        if module == edge or module.startswith(f"{edge}."):
            reached = {t for t in imported if t.startswith("pymon.engine")}
            assert reached <= ENGINE_FACE, f"{module} imports {sorted(reached - ENGINE_FACE)}"


def test_the_store_is_below_the_engine_and_its_edges() -> None:
    store = {m for m in MODULES if m.startswith("pymon.store")}
    for upper in ("pymon.engine", "pymon.notify", "pymon.web", "pymon.events"):
        assert not (importers_of(upper) & store), f"the store imports {upper}"


def test_the_web_reads_the_store_only_as_values() -> None:
    for module, imported in MODULES.items():
        if module.startswith("pymon.web"):
            store = {t for t in imported if t.startswith("pymon.store")}
            assert store <= {"pymon.store.base"}, f"{module} imports {sorted(store)}"
