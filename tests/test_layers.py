"""The package's layers (ARCHITECTURE.md): each subpackage imports only from the layers below it,
no module imports (or reaches into) another module's private names, and no two modules import
each other when they load."""
import ast
import functools
import pathlib

import pytest

import backpropviz as bpv

PKG = pathlib.Path(bpv.__file__).parent
LAYERS = ["core", "theory", "display", "teach", "live", "lab", "widgets"]     # from the bottom up


def modules() -> dict[str, pathlib.Path]:
    """'core.trace' → its file, for every module of the package ('' is backpropviz itself)."""
    return _modules(PKG)


@functools.lru_cache(maxsize=4)
def _modules(pkg: pathlib.Path) -> dict[str, pathlib.Path]:
    out = {}
    for f in pkg.rglob("*.py"):
        parts = f.relative_to(pkg).with_suffix("").parts
        out[".".join(p for p in parts if p != "__init__")] = f
    return out


def resolve(name: str, node: ast.ImportFrom) -> str | None:
    """The package-relative module an import names ('core.trace'), None outside backpropviz."""
    if node.level == 0:
        mod = node.module or ""
        return mod[len("backpropviz."):] if mod.startswith("backpropviz.") else (
            "" if mod == "backpropviz" else None)
    here = name.split(".") if name else []
    is_pkg = modules()[name].name == "__init__.py"
    base = here if is_pkg else here[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, top_level_only: bool = False):
    """(target module, imported names, line) for every import from backpropviz in a module."""
    tree = ast.parse(modules()[name].read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            if target is None:
                continue
            for a in node.names:        # `from ..core import modules as M`: the module itself
                sub = f"{target}.{a.name}" if target else a.name
                yield (sub if sub in modules() else target), a.name, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("backpropviz."):
                    yield a.name[len("backpropviz."):], None, node.lineno


def layer(name: str) -> int | None:
    first = name.split(".")[0]
    return LAYERS.index(first) if first in LAYERS else None


def upward_imports() -> list[str]:
    bad = []
    for name in modules():
        mine = layer(name)
        if mine is None:
            continue                       # backpropviz/__init__.py: the public face, above all
        for target, _, line in imports(name):
            theirs = layer(target)
            if theirs is None or theirs > mine:
                bad.append(f"{name} (line {line}) imports {target or 'backpropviz'}")
    return bad


def private_reach_ins() -> list[str]:
    bad = []
    for name, path in modules().items():
        aliases = {}
        for target, imported, line in imports(name):
            if imported and imported.startswith("_") and not imported.startswith("__"):
                bad.append(f"{name} (line {line}) imports {target}.{imported}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):          # `from . import modules as M` … `M._private`
            target = resolve(name, node) if isinstance(node, ast.ImportFrom) else None
            for a in node.names if target is not None else ():
                if (f"{target}.{a.name}" if target else a.name) in modules():
                    aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                bad.append(f"{name} (line {node.lineno}) uses {node.value.id}.{node.attr}")
    return bad


def cycles() -> list[str]:
    graph = {n: {t for t, _, _ in imports(n, top_level_only=True) if t != n} for n in modules()}
    found, done = [], set()

    def visit(n, stack):
        if n in stack:
            found.append(" → ".join(stack[stack.index(n):] + [n]))
            return
        if n in done:
            return
        for d in sorted(graph.get(n, ())):
            visit(d, stack + [n])
        done.add(n)
    for n in sorted(graph):
        visit(n, [])
    return found


TOP = {"", "cli", "__main__", "serverext"}   # above every layer, as __init__: the package's
#                                             face, its command and its server extension


def test_every_module_is_in_a_layer():
    assert {layer(n) for n in modules() if n not in TOP} - {None} == set(range(len(LAYERS)))
    assert [n for n in modules() if n not in TOP and layer(n) is None] == []


def test_no_layer_imports_from_a_layer_above_it():
    assert upward_imports() == []


def test_no_module_imports_or_reaches_into_another_modules_private_names():
    assert private_reach_ins() == []


def test_no_import_cycle_when_modules_load():
    assert cycles() == []


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """Each check finds what it looks for, in a package made for the purpose."""
    pkg = tmp_path / "backpropviz"
    for sub in ("core", "teach"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from ..teach import b\n")            # upward
    (pkg / "core" / "c.py").write_text("from . import a as A\nx = A._hidden\n")
    (pkg / "teach" / "b.py").write_text("from ..core.c import _secret\nfrom ..core import a\n")
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    assert upward_imports() == ["core.a (line 1) imports teach.b"]
    assert sorted(private_reach_ins()) == ["core.c (line 2) uses A._hidden",
                                           "teach.b (line 1) imports core.c._secret"]
    assert "core.a → teach.b → core.a" in cycles()


@pytest.mark.parametrize("name", ["trace", "check", "circuit"])
def test_no_module_is_made_callable(name):
    """bpv.trace, bpv.check and bpv.circuit are functions (no module with a swapped __class__)."""
    import types
    assert callable(getattr(bpv, name)) and not isinstance(getattr(bpv, name), types.ModuleType)
    assert "__class__ =" not in "".join(p.read_text() for p in modules().values())
