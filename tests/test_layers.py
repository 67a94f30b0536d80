"""The package tree is the data flow: imports point down the stages, never up, never round.

Every module of ``fuzz/`` and ``verify/`` is parsed (not imported); every ``import`` counts,
also those inside functions, since a function-level import is still a dependency, only a
hidden one. The stages, lowest first:

    fuzz (errors, isolation) <- fuzz.ir <- fuzz.tracing <- fuzz.rules <- fuzz.gen
        <- fuzz.campaign <- fuzz.triage <- fuzz.commands, fuzz.cli

``verify/`` stands alone: it imports nothing from ``fuzz/`` (the CLI may import it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parent.parent

# Module-name prefix -> layer. The longest matching prefix wins.
LAYERS = {
    "fuzz": 0,  # the package itself and its foundation modules: errors, isolation
    "fuzz.ir": 1,
    "fuzz.tracing": 2,
    "fuzz.rules": 3,
    "fuzz.gen": 4,
    "fuzz.strategies": 4,  # the public Hypothesis API over the generator
    "fuzz.campaign": 5,
    "fuzz.triage": 6,
    "fuzz.commands": 7,
    "fuzz.cli": 7,
}
FOUNDATION = {"fuzz", "fuzz.errors", "fuzz.isolation"}
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("fuzz", "verify"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _package_of(mod: str, path: Path) -> str:
    return mod if path.name == "__init__.py" else mod.rpartition(".")[0]


def _imports(mod: str, path: Path) -> list[tuple[str, int, list[str]]]:
    """(imported project module, line, names taken from it) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = _package_of(mod, path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    found.append((alias.name, node.lineno, []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            attrs = []
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from pkg import module`: a dependency on that module alone
                    found.append((sub, node.lineno, []))
                else:
                    attrs.append(alias.name)
            if attrs and target in MODULES:
                found.append((target, node.lineno, attrs))
    return [f for f in found if f[0] != mod]


def _layer(mod: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if (mod == prefix or mod.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    if best and best[0] == "fuzz" and mod not in FOUNDATION:
        return None  # a module directly in fuzz/ that is not part of the foundation
    return best[1] if best else None


def test_every_fuzz_module_has_a_layer():
    stray = [m for m in MODULES if m.startswith("fuzz") and _layer(m) is None]
    assert not stray, f"modules outside the stage packages (move them into one): {stray}"


def test_imports_point_down():
    upward = []
    for mod, path in MODULES.items():
        if not mod.startswith("fuzz"):
            continue
        for target, line, _ in _imports(mod, path):
            if target.startswith("verify"):
                if _layer(mod) != LAYERS["fuzz.cli"]:
                    upward.append(f"{path.relative_to(REPO)}:{line} imports {target} (only the CLI may)")
                continue
            if _layer(target) > _layer(mod):
                upward.append(f"{path.relative_to(REPO)}:{line} imports {target} (layer {_layer(target)} > {_layer(mod)})")
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_verify_imports_nothing_from_fuzz():
    bad = [f"{p.relative_to(REPO)}:{line} imports {t}" for m, p in MODULES.items() if m.startswith("verify")
           for t, line, _ in _imports(m, p) if t.startswith("fuzz")]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = nx.DiGraph()
    for mod, path in MODULES.items():
        graph.add_node(mod)
        for target, _, _ in _imports(mod, path):
            graph.add_edge(mod, target)
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles (function-level imports count): {cycles}"


def test_no_private_name_crosses_modules():
    crossing = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text())
        module_aliases = {}
        for target, line, names in _imports(mod, path):
            crossing += [f"{path.relative_to(REPO)}:{line} takes {target}.{n}" for n in names
                         if n.startswith("_") and not n.startswith("__")]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in MODULES:
                        module_aliases[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.asname:
                        module_aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                crossing.append(f"{path.relative_to(REPO)}:{node.lineno} uses {module_aliases[node.value.id]}.{node.attr}")
    assert not crossing, "private names used across modules (make them public or move them):\n" + "\n".join(crossing)


@pytest.mark.parametrize("top", ["fuzz", "verify"])
def test_no_module_is_too_long(top):
    long = {str(p.relative_to(REPO)): n for m, p in MODULES.items() if m.startswith(top)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by idea): {long}"


def test_the_checker_sees_function_level_imports(tmp_path):
    """The walk must count an import inside a function (the way cycles used to hide)."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from fuzz.campaign import store\n    return store\n")
    found = _imports("fuzz.ir.fake", src)
    assert ("fuzz.campaign.store", 2, []) in found
    assert _layer("fuzz.campaign.store") > _layer("fuzz.ir.fake")


def test_test_modules_have_unique_names():
    """tests/ mirrors the packages without __init__.py files, so pytest imports each test
    module by its file name: two test_x.py in different folders collide at collection."""
    seen: dict[str, list[str]] = {}
    for path in (REPO / "tests").rglob("*.py"):
        if "data" in path.relative_to(REPO / "tests").parts or path.name == "conftest.py":
            continue
        seen.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"test modules with the same file name (rename one): {clashes}"
