"""The rooms of the house: import rules read from the source, every import counted.

Every ``import`` in the product's modules counts, wherever it stands (module level, inside a
function, under ``TYPE_CHECKING``): a lazy import is still a corridor between two rooms.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("appliance", "drivers", "central", "models")
NOT_PRODUCT = ("models.training",)  # the workshop: in the repository, not in the wheel


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(tops: tuple[str, ...], *, workshop: bool) -> dict[str, Path]:
    found = {}
    for top in tops:
        for path in sorted((REPO / top).rglob("*.py")):
            name = module_name(path)
            if workshop or not name.startswith(NOT_PRODUCT):
                found[name] = path
    return found


MODULES = modules_under(PRODUCT, workshop=False)
WITH_WORKSHOP = modules_under(PRODUCT, workshop=True)


def imports_of(name: str, path: Path, known: dict[str, Path] = MODULES) -> set[str]:
    """The ``known`` modules ``name`` imports, resolved to modules where they are modules."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def room(name: str) -> str:
    """The package a module lives in, two levels deep (``appliance.store``, ``drivers.r30x``)."""
    return ".".join(name.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def edges(source_prefix: str, target_prefixes: tuple[str, ...]) -> list[str]:
    """Every import from a module under ``source_prefix`` into one under a target prefix."""
    return sorted(
        f"{source} -> {target}"
        for source, targets in GRAPH.items() if _under(source, source_prefix)
        for target in targets if any(_under(target, t) for t in target_prefixes)
    )


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_graph_was_read() -> None:
    # a rule over an empty or unresolved graph would pass whatever the code does
    assert len(MODULES) > 100
    assert "appliance.store.store" in GRAPH["appliance.capture.booking"]
    assert "drivers.worker" in GRAPH["appliance.capture.booking"]


def test_no_module_cycle() -> None:
    assert cycles(GRAPH) == []


def test_no_package_cycle() -> None:
    rooms: dict[str, set[str]] = defaultdict(set)
    for source, targets in GRAPH.items():
        for target in targets:
            if room(source) != room(target):
                rooms[room(source)].add(room(target))
    assert cycles(rooms) == []


@pytest.mark.parametrize("pure", ["appliance.imaging", "appliance.records", "appliance.minutiae"])
def test_pure_layers_touch_no_io_layer(pure: str) -> None:
    io_layers = ("appliance.store", "appliance.sync", "appliance.web", "appliance.capture",
                 "appliance.app", "appliance.cli", "drivers")
    assert edges(pure, io_layers) == []


def test_web_never_touches_a_driver_or_the_composition_root() -> None:
    assert edges("appliance.web", ("drivers", "appliance.app")) == []


def test_capture_does_not_call_into_sync() -> None:
    assert edges("appliance.capture", ("appliance.sync",)) == []


def test_drivers_import_only_the_shared_core() -> None:
    core = {"appliance.domain", "appliance.errors", "appliance.handoff"}
    reaching = [e for e in edges("drivers", ("appliance",)) if e.split(" -> ")[1] not in core]
    assert reaching == []


def test_packages_own_their_config_sections() -> None:
    """Only the composition root (and its runtime reconfiguration), the CLI and the reference
    generator read the whole config."""
    readers = {e.split(" -> ")[0] for e in edges("appliance", ("appliance.config",))}
    assert readers <= {"appliance.app", "appliance.reconfigure", "appliance.config_reference",
                       "appliance.preflight"} | {
        m for m in MODULES if _under(m, "appliance.cli")}


def test_central_imports_only_the_protocol_and_tls_settings() -> None:
    allowed = ("appliance.sync.protocol", "appliance.sync.commands", "appliance.sync.signing",
               "appliance.sync.receipts", "appliance.sync.config", "appliance.sync.tls",
               "appliance.errors")
    reaching = [e for e in edges("central", ("appliance",))
                if not e.split(" -> ")[1].startswith(allowed)]
    assert reaching == []


def test_the_workshop_is_not_imported_by_the_product() -> None:
    training = set(WITH_WORKSHOP) - set(MODULES)
    assert "models.training.train" in training, "the workshop moved: update NOT_PRODUCT"
    reaching = [f"{name} -> {sorted(targets & training)}"
                for name, path in MODULES.items()
                if (targets := imports_of(name, path, WITH_WORKSHOP)) & training]
    assert reaching == []
