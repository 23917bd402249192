"""The package's layers, read from the source with ast: no import loop, none from a lower layer up.

Every import of a faceunlock module counts, at module level or inside a function.
"""

import ast
from pathlib import Path

import faceunlock

PACKAGE = Path(faceunlock.__file__).parent

GROUND = {"faceunlock", "faceunlock.errors", "faceunlock.paths", "faceunlock.atomic", "faceunlock.decision"}
"""Plain definitions any layer may use; they import nothing of faceunlock outside the ground."""

MAY_IMPORT = {
    "ground": {"ground"},
    "config": {"ground"},
    "vision": {"ground", "config", "vision"},
    "core": {"ground", "config", "vision", "core"},
    "evaluation": {"ground", "config", "vision", "core", "evaluation"},
    "training": {"ground", "config", "vision", "core", "evaluation", "training"},
    "service": {"ground", "config", "vision", "core", "service"},
    "testing": {"ground", "service", "testing"},
    "commands": {"ground", "config", "vision", "core", "evaluation", "training", "service", "commands"},
}
"""Which layers each layer may import. Core is the rest: camera, store, model, pipeline, verify, ..."""


def layer(module: str) -> str:
    if module in GROUND or module.startswith("faceunlock.data"):
        return "ground"
    if module == "faceunlock.config":
        return "config"
    if module in ("faceunlock.cli", "faceunlock.__main__"):
        return "commands"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in MAY_IMPORT:
        return parts[1]
    return "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The faceunlock modules that a module imports (from-imports of a name resolve to its module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    g = graph()
    assert "faceunlock.vision.embed" in g["faceunlock.training.train"]
    assert "faceunlock.evaluation.lfw" in g["faceunlock.commands.evaluate"], "imports inside functions count"
    assert "faceunlock.vision.threads" in g["faceunlock.vision.detect"], "relative imports resolve"
    assert layer("faceunlock.service.daemon") == "service" and "service" not in MAY_IMPORT["vision"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    wrong = [
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in sorted(graph().items())
        for d in sorted(deps)
        if layer(d) not in MAY_IMPORT[layer(m)]
    ]
    assert wrong == []


def test_errors_import_nothing_of_faceunlock():
    assert graph()["faceunlock.errors"] == set()


def calls(path: Path, attribute: str) -> int:
    tree = ast.parse(path.read_text(), str(path))
    return sum(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attribute
        for n in ast.walk(tree)
    )


def test_torch_threads_are_set_in_one_place():
    callers = [name for name, path in modules().items() if calls(path, "set_num_threads")]
    assert callers == ["faceunlock.vision.threads"]
