"""The package's layers, checked: no import points up the order, data and models never meet, no circle.

The order (docs/ARCHITECTURE.md): core < text < data = models < inference < evals < stages < studies
< plots < faces (the modules at the top of the package). Every import of a minilm module counts,
at module level or inside a function, so a circle cannot hide behind a late import.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minilm"
LAYERS = {"core": 0, "text": 1, "data": 2, "models": 2, "inference": 3, "evals": 4, "stages": 5, "studies": 6,
          "plots": 7}
FACES = 8  # cli, pipeline, bench, course, __main__: the top of the package
# The shims for the names of the old flat layout: minilm/_aliases.py (the table) and the data folder's
# __init__ (minilm.data was a module). They point at every layer by design; only the package's own
# __init__ (which installs them) may import them.
SHIMS = {"minilm._aliases", "minilm.data"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(f): f for f in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 2 and parts[1] in LAYERS else FACES


def imports(module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every minilm import in ``module``, at any depth."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "minilm":
                continue
            for alias in node.names:  # `from . import x` imports the module x
                found.append((node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "minilm"]
    return found


GRAPH = {m: {target for _, target in imports(m) if target != m} for m in MODULES}


def test_the_package_has_its_layers():
    assert set(LAYERS) <= {m.split(".")[1] for m in MODULES if m.count(".") >= 1}
    # Each layer folder is a plain package: an empty __init__.py, no re-export layer (data's is the shim).
    for folder in LAYERS:
        init = PACKAGE / folder / "__init__.py"
        assert init.exists() and (folder == "data" or init.read_text() == ""), init


def test_only_the_package_init_imports_the_shims():
    users = {m for m in MODULES if m not in SHIMS and any(t in SHIMS for _, t in imports(m))}
    assert users <= {"minilm"}


@pytest.mark.parametrize("module", sorted(set(MODULES) - SHIMS - {"minilm"}))
def test_no_import_points_up_or_across(module):
    problems = []
    for line, target in imports(module):
        if target in SHIMS - {"minilm.data"} or (target not in MODULES):
            problems.append(f"line {line}: {target} is not a module of the package (an old name?)")
            continue
        if target == "minilm.data":
            problems.append(f"line {line}: the minilm.data shim (import a module inside minilm.data)")
        elif layer(target) > layer(module):
            problems.append(f"line {line}: {target} is above {module}")
        elif layer(target) == layer(module) < FACES and target.split(".")[1] != module.split(".")[1]:
            problems.append(f"line {line}: {target} and {module} are peers (data and models never import each other)")
    assert not problems, f"{module}:\n" + "\n".join(problems)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the circles of ``graph`` (components of more than one module)."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
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
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle():
    assert strongly_connected(GRAPH) == []


def test_the_circle_finder_finds_circles():  # the check above can fail
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_the_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    module = "minilm.core.files"
    source = MODULES[module].read_text(encoding="utf-8") + "\n\ndef _late():\n    from ..stages import sft\n"
    fake = tmp_path / "files.py"
    fake.write_text(source)
    monkeypatch.setitem(MODULES, module, fake)
    monkeypatch.setattr(Path, "relative_to", Path.relative_to)
    with pytest.raises(AssertionError, match="minilm.stages.sft is above minilm.core.files"):
        test_no_import_points_up_or_across(module)
