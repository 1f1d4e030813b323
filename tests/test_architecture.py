"""The package's import structure: no cycles, and each layer imports only the layers below it.

The import graph is read from the source with :mod:`ast` (nothing is imported): every
``import`` / ``from … import`` statement of every module of ``src/binarynet``, at module level
and inside functions (a lazy import is still a dependency), relative ones resolved against the
module's package. ``from pkg import name`` counts as an import of the submodule ``pkg.name`` when
that module exists, else of ``pkg``. Imports under ``if TYPE_CHECKING:`` never run and are left
out. An edge to a module means running that module's code, so:

- a cycle is a chain of binarynet modules that leads back to its start;
- "X does not import Y" means no chain of imports from X reaches Y;
- "X imports no torch" means no chain from X reaches a module that imports ``torch`` (or
  ``triton``, which imports it).

Each failure message spells out the offending chain, file and line of every step.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "binarynet"
TORCH = ("torch", "triton")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (a binarynet module, or an outside top-level name)."""

    source: str
    target: str
    line: int
    lazy: bool  # inside a function (runs when the function is called)

    def __str__(self) -> str:
        where = "in a function, " if self.lazy else ""
        return f"{self.source} -> {self.target} ({where}{_path(self.source)}:{self.line})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _path(module: str) -> str:
    return str(_modules()[module].relative_to(SRC.parent))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement under ``tree`` with whether it is inside a function."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), in_function)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        lazy = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        yield from _imports(node, lazy)


def _resolve(module: str, name: str) -> str:
    """The longest prefix of the dotted ``name`` that is a binarynet module (or its top level
    name when it is outside the package)."""
    modules = _modules()
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return parts[0]


@cache
def import_graph() -> dict[str, tuple[Edge, ...]]:
    """{module: its import edges}, for every module of the package."""
    modules = _modules()
    graph: dict[str, tuple[Edge, ...]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: list[Edge] = []
        for node, lazy in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [_resolve(module, alias.name) for alias in node.names]
            else:
                assert isinstance(node, ast.ImportFrom)
                if node.level:
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = []
                for alias in node.names:
                    submodule = f"{origin}.{alias.name}"
                    targets.append(submodule if submodule in modules else _resolve(module, origin))
            for target in targets:
                if target != module:
                    edges.append(Edge(module, target, node.lineno, lazy))
        graph[module] = tuple(edges)
    return graph


def _chain(start: str, goal, eager: bool = False) -> list[Edge] | None:
    """The shortest chain of imports from ``start`` to a module for which ``goal`` holds (with
    ``eager``, of module-level imports only: what importing ``start`` runs)."""
    graph = import_graph()
    previous: dict[str, Edge | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for edge in graph.get(module, ()):
                if eager and edge.lazy:
                    continue
                if goal(edge.target):
                    chain = [edge]
                    while (step := previous[chain[0].source]) is not None:
                        chain.insert(0, step)
                    return chain
                if edge.target in previous:
                    continue
                previous[edge.target] = edge
                if edge.target in graph:
                    following.append(edge.target)
        frontier = following
    return None


def _describe(chain: list[Edge]) -> str:
    return "\n  " + "\n  ".join(str(edge) for edge in chain)


def _cycles() -> list[list[Edge]]:
    """One shortest cycle through each module that lies on a cycle (deduplicated)."""
    found: dict[frozenset[str], list[Edge]] = {}
    for module in import_graph():
        chain = _chain(module, lambda target, module=module: target == module)
        if chain is not None:
            found.setdefault(frozenset(edge.source for edge in chain), chain)
    return list(found.values())


def _modules_matching(pattern: str) -> list[str]:
    if pattern.endswith(".*"):
        prefix = pattern[:-2]
        return [m for m in _modules() if m == prefix or m.startswith(prefix + ".")]
    assert pattern in _modules(), f"{pattern} is not a module of the package"
    return [pattern]


# --------------------------------------------------------------------------------------------


def test_the_graph_sees_every_module_and_lazy_and_relative_imports() -> None:
    graph = import_graph()
    assert {
        "binarynet.config",
        "binarynet.training.checkpoint",
        "binarynet.backends.engine.model",
    } <= set(graph)
    # a lazy import inside a function is an edge (cli imports the training code lazily)
    assert any(e.target == "binarynet.training.trainer" and e.lazy for e in graph["binarynet.cli"])
    # "from binarynet.graph import bnnfile" is the submodule, not the package
    assert any(
        e.target == "binarynet.graph.bnnfile" for e in graph["binarynet.backends.engine.model"]
    )


def test_no_import_cycle_in_the_package() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles in binarynet:" + "".join(
        _describe(chain) + "\n" for chain in cycles
    )


def _in(*packages: str):
    """A goal: the target is one of ``packages`` (a module or a package with its modules)."""
    return lambda target: any(target == p or target.startswith(p + ".") for p in packages)


TRAINING = "binarynet.training"
EXPORT = "binarynet.export"
BACKENDS = "binarynet.backends"
ANALYSIS = "binarynet.analysis"

# (modules, what no chain of imports from them may reach, why)
LAYERS = [
    (
        "binarynet.graph.*",
        (TRAINING, EXPORT, BACKENDS, ANALYSIS, *TORCH),
        "the graph is the bottom of the deployed side: NumPy only",
    ),
    (
        "binarynet.backends.engine.*",
        (TRAINING, EXPORT, ANALYSIS, *TORCH),
        "a back-end reads the graph, never the training side",
    ),
    ("binarynet.backends.c.*", (TRAINING, EXPORT, ANALYSIS, *TORCH), "likewise"),
    ("binarynet.backends.qonnx.*", (TRAINING, EXPORT, ANALYSIS, *TORCH), "likewise"),
    # Triton's kernels take torch tensors: the GPU back-end imports torch when a kernel runs,
    # never the training code.
    ("binarynet.backends.gpu.*", (TRAINING, EXPORT, ANALYSIS), "likewise"),
    ("binarynet.data.*", (TRAINING, EXPORT, BACKENDS, ANALYSIS, *TORCH), "data are uint8 arrays"),
    (
        "binarynet.training.*",
        (EXPORT, BACKENDS, ANALYSIS),
        "training comes before export: it never sees the deployed side",
    ),
    ("binarynet.export.*", (BACKENDS, ANALYSIS), "export makes graphs; back-ends run them"),
    ("binarynet.analysis.bench", (TRAINING, EXPORT, *TORCH), "bench times .bnn files"),
    ("binarynet.config", (TRAINING, EXPORT, BACKENDS, ANALYSIS, *TORCH), "registries only"),
    ("binarynet.filekind", ("binarynet",), "sniffs bytes, imports nothing of binarynet"),
    ("binarynet.atomic", ("binarynet",), "writes files, imports nothing of binarynet"),
]


@pytest.mark.parametrize(("pattern", "forbidden", "why"), LAYERS, ids=[x[0] for x in LAYERS])
def test_each_layer_imports_only_the_layers_below(pattern: str, forbidden, why: str) -> None:
    goal = _in(*forbidden)
    for module in _modules_matching(pattern):
        chain = _chain(module, goal)
        assert chain is None, f"{module} must not reach {forbidden} ({why}):" + _describe(chain)


@pytest.mark.parametrize(
    "pattern", ["binarynet", "binarynet.cli", "binarynet.deploy", "binarynet.analysis.*"]
)
def test_imports_no_torch_at_module_level(pattern: str) -> None:
    """Commands and tools that take torch models import torch only inside the functions that
    need it, so that ``binarynet eval`` and the engine's users never load it."""
    for module in _modules_matching(pattern):
        chain = _chain(module, lambda target: target in TORCH, eager=True)
        assert chain is None, f"importing {module} imports torch:" + _describe(chain)


def test_a_cycle_and_a_chain_are_reported_with_every_step(monkeypatch) -> None:
    """The checker itself: a made-up graph with a cycle a → b → a and a chain to torch."""
    fake = {
        "binarynet.a": (Edge("binarynet.a", "binarynet.b", 3, False),),
        "binarynet.b": (
            Edge("binarynet.b", "binarynet.a", 7, True),
            Edge("binarynet.b", "torch", 1, False),
        ),
    }
    monkeypatch.setitem(globals(), "import_graph", lambda: fake)
    monkeypatch.setitem(globals(), "_path", lambda module: f"{module}.py")
    (cycle,) = _cycles()
    assert [(e.source, e.target) for e in cycle] in (
        [("binarynet.a", "binarynet.b"), ("binarynet.b", "binarynet.a")],
        [("binarynet.b", "binarynet.a"), ("binarynet.a", "binarynet.b")],
    )
    chain = _chain("binarynet.a", lambda target: target in TORCH)
    assert chain is not None
    assert _describe(chain) == (
        "\n  binarynet.a -> binarynet.b (binarynet.a.py:3)"
        "\n  binarynet.b -> torch (binarynet.b.py:1)"
    )
    # the lazy edge b -> a counts for a chain, not for what importing b runs
    assert _chain("binarynet.b", _in("binarynet.a")) is not None
    assert _chain("binarynet.b", _in("binarynet.a"), eager=True) is None
    assert _chain("binarynet.a", _in("binarynet")) is not None  # a package with its modules


def test_every_subpackage_says_what_lives_there_and_what_it_may_import() -> None:
    """The first paragraph of each subpackage's docstring: two lines, the second naming what the
    package imports (the rules above check that it is so)."""
    for module, path in _modules().items():
        if path.name != "__init__.py" or module == PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
        first = doc.split("\n\n")[0].splitlines()
        assert len(first) == 2, f"{path}: the docstring's first paragraph has {len(first)} lines"
        assert "import" in first[1].lower(), f"{path}: its second line does not say what it imports"
