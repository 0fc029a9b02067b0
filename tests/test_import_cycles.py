"""No import cycles inside popdens: imports point down the layers (kernels, models and grid
at the bottom; network, assembly and result above them; the backends; io, scenario, plot
and the cli on top). Read from the source with ``ast``, so imports inside functions
(lazy imports) and ``importlib.import_module("popdens....")`` count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "popdens"


def module_names() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is a package __init__)}`` of every module of popdens."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        names[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return names


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments (module names passed to importlib)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            out.update({t.id: node.value.value for t in node.targets
                        if isinstance(t, ast.Name)})
    return out


def _from_import(node: ast.ImportFrom, package: str) -> list[str]:
    """Candidate targets of ``from X import a, b``: ``X.a`` (a submodule) or ``X``."""
    base = node.module or ""
    if node.level:
        parent = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _dynamic_import(node: ast.Call, constants: dict[str, str]) -> list[str]:
    """The module of ``importlib.import_module(name)`` when ``name`` is known statically."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "import_module" and node.args):
        return []
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name) and arg.id in constants:
        return [constants[arg.id]]
    return []


def imports_of(name: str, path: Path, is_package: bool, modules) -> set[str]:
    """popdens modules that ``name`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if is_package else name.rpartition(".")[0]
    constants = _string_constants(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            candidates = _from_import(node, package)
            submodules = [c for c in candidates[:-1] if c in modules]
            found.update(submodules or candidates[-1:])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call):
            found.update(_dynamic_import(node, constants))
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, is_package, modules)
            for name, (path, is_package) in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the graph, or None (iterative depth-first search)."""
    state = dict.fromkeys(graph, 0)          # 0 new, 1 on the current path, 2 done
    for root in sorted(graph):
        if state[root]:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_popdens_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, ("import cycle: " + " -> ".join(cycle) + "; move the shared "
                           "code down into a module that both can import")


def test_the_scanner_sees_lazy_and_dynamic_imports():
    graph = import_graph()
    # lazy: inside a function of scenario/building.py
    assert "popdens.network" in graph["popdens.scenario.building"]
    # dynamic: importlib.import_module(_ND_MODULE) in backends/montecarlo.py
    assert "popdens.backends.montecarlo_nd" in graph["popdens.backends.montecarlo"]
    # and a cycle made of such edges is found
    graph["popdens.backends.montecarlo_nd"] = graph["popdens.backends.montecarlo_nd"] | {
        "popdens.backends.montecarlo"}
    assert find_cycle(graph) is not None
