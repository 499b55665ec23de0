"""pymon's import graph, read from the source (every import: ``TYPE_CHECKING`` blocks
and function bodies included), by module or by package.

    python tools/importgraph.py              # package -> packages it imports, one per line
    python tools/importgraph.py --modules    # the same by module
    python tools/importgraph.py --dot        # Graphviz (pipe to `dot -Tsvg`)
    python tools/importgraph.py --cycles     # every cycle; exit 1 if there is one

A *package* is a subpackage of pymon (``pymon.engine``, ``pymon.web``...); a module
directly under ``pymon`` (``pymon.model``, ``pymon.daemon``...) counts as its own.
``tests/test_architecture.py`` holds the rules the graph must keep.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["ROOT", "cycles", "module_graph", "package_graph", "package_of"]

ROOT = Path(__file__).resolve().parents[1] / "src" / "pymon"

Graph = dict[str, set[str]]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(tree: ast.AST, here: str, is_package: bool, known: set[str]) -> set[str]:
    """The known modules ``here`` imports (``from a import b`` counts ``a.b`` if a module)."""
    found: set[str] = set()
    package = here if is_package else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module ``pkg.mod``; any other name
            # is read from ``pkg`` itself.
            subs = [f"{base}.{alias.name}" for alias in node.names]
            names = [s for s in subs if s in known]
            if len(names) < len(subs):
                names.append(base)
        else:
            continue
        for name in names:
            # The longest known module the name starts with (a.b.C -> a.b).
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def module_graph(root: Path = ROOT) -> Graph:
    """Every module of the package at ``root`` -> the modules of it that it imports."""
    paths = {_module_name(p, root): p for p in root.rglob("*.py")}
    known = set(paths)
    return {
        name: _imported(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in paths.items()
    }


def package_of(module: str) -> str:
    """``pymon.engine.rules`` -> ``pymon.engine``; ``pymon.model`` -> ``pymon.model``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def package_graph(modules: Mapping[str, Iterable[str]]) -> Graph:
    """The module graph folded by :func:`package_of` (a package's own imports dropped)."""
    graph: Graph = {}
    for module, targets in modules.items():
        here = package_of(module)
        edges = graph.setdefault(here, set())
        edges.update(package_of(t) for t in targets if package_of(t) != here)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _dot(graph: Mapping[str, Iterable[str]]) -> str:
    lines = ["digraph pymon {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    for node in sorted(graph):
        lines.append(f'  "{node}";')
        lines.extend(f'  "{node}" -> "{target}";' for target in sorted(graph[node]))
    lines.append("}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the graph as asked; with ``--cycles``, exit 1 when there is one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="by module, not by package")
    parser.add_argument("--dot", action="store_true", help="Graphviz output")
    parser.add_argument("--cycles", action="store_true", help="print cycles only")
    args = parser.parse_args(argv)
    modules = module_graph()
    graph = modules if args.modules else package_graph(modules)
    if args.cycles:
        found = cycles(graph)
        for group in found:
            print(" <-> ".join(group))
        return 1 if found else 0
    if args.dot:
        print(_dot(graph))
        return 0
    for node in sorted(graph):
        print(f"{node} -> {', '.join(sorted(graph[node])) or '(nothing)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
