"""emolib's layout, checked from its source (issue 11; the README's "Architecture" section).

Every module belongs to one layer, and imports run one way:

* **foundations** import only foundations;
* **training** imports foundations and training;
* **inference** imports foundations and inference (never training, never the book's helpers);
* **top** (the CLI, the book's helpers, the live page's build step) may import anything.

Also checked: no import cycle between modules; no import of another emolib module inside a
function (only optional third-party packages are imported lazily, so an emolib module that needs
one may be imported inside ``try: ... except ImportError:``); no use of another module's
private (``_name``) names, in emolib, its benchmarks and its tools; no module over 700 lines; no
JavaScript, CSS or HTML over 40 lines inside a Python string (they live in ``emolib/web/``).

The check reads the source with :mod:`ast`, so it sees imports that run only in rare branches.
Run it as a script to print the import graph: ``python tests/test_layout.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "emolib"
MAX_LINES = 700
MAX_STRING_LINES = 40

LAYERS = {
    "foundation": {"utils", "labels", "fileio", "data", "gesture_data", "transforms", "augment", "models", "cards",
                   "metrics"},
    "training": {"optim", "distill", "train", "recipes", "experiment"},
    "inference": {"faces", "hands", "gestures", "pipeline", "drawing", "video", "webengine", "widgets",
                  "onnx_export", "serverext"},
    "top": {"cli", "pipeline_cli", "book", "livepage", "__main__", "__init__"},
}
MAY_IMPORT = {
    "foundation": {"foundation"},
    "training": {"foundation", "training"},
    "inference": {"foundation", "inference"},
    "top": {"foundation", "training", "inference", "top"},
}
LAYER_OF = {unit: layer for layer, units in LAYERS.items() for unit in units}


def module_name(path: Path) -> str:
    """``emolib/hands/palm.py`` -> ``emolib.hands.palm``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The top-level unit a module belongs to: ``emolib.hands.palm`` -> ``hands``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (``from ..fileio import x`` in emolib/hands/a.py)."""
    if node.level == 0:
        return node.module or ""
    base = module_name(path).split(".")
    if not is_package(path):
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class Imports(ast.NodeVisitor):
    """Collects (target module, line, inside a function?, names) for every emolib import."""

    def __init__(self, path: Path):
        self.path = path
        self.depth = 0
        self.optional = 0  # inside `try: ... except ImportError:` (an optional third-party package)
        self.found: list[tuple[str, int, bool, list[str]]] = []
        self.aliases: dict[str, str] = {}  # local name -> emolib module it is bound to

    @property
    def lazy(self) -> bool:
        """Imported inside a function, and not to guard an optional third-party package."""
        return self.depth > 0 and not self.optional

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Try(self, node: ast.Try):
        def names(handler):
            t = handler.type
            items = t.elts if isinstance(t, ast.Tuple) else [t]
            return {getattr(i, "id", None) for i in items}

        guarded = any(names(h) & {"ImportError", "ModuleNotFoundError"} for h in node.handlers)
        self.optional += guarded
        for child in node.body:
            self.visit(child)
        self.optional -= guarded
        for child in node.handlers + node.orelse + node.finalbody:
            self.visit(child)

    def visit_If(self, node: ast.If):
        test = node.test  # `if TYPE_CHECKING:` imports never run: skip them
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            if alias.name == "emolib" or alias.name.startswith("emolib."):
                self.found.append((alias.name, node.lineno, self.lazy, []))
                self.aliases[alias.asname or alias.name] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom):
        target = resolve(self.path, node)
        if target != "emolib" and not target.startswith("emolib."):
            return
        names = [a.name for a in node.names]
        modules = []
        for alias in node.names:  # `from . import data as D` imports the module emolib.data
            candidate = f"{target}.{alias.name}"
            if target == "emolib" and alias.name in TOP_NAMES:  # `from emolib import fit`: emolib.train
                candidate = f"emolib.{TOP_NAMES[alias.name]}"
            if module_file(candidate) is not None:
                modules.append(candidate)
                self.aliases[alias.asname or alias.name] = candidate
        if modules:
            for m in modules:
                self.found.append((m, node.lineno, self.lazy, []))
            rest = [n for n in names if f"{target}.{n}" not in modules and n not in TOP_NAMES]
            if rest:
                self.found.append((target, node.lineno, self.lazy, rest))
        else:
            self.found.append((target, node.lineno, self.lazy, names))


    def visit_Attribute(self, node: ast.Attribute):
        """``import emolib`` then ``emolib.train.fit``: an import of ``emolib.train`` where it is used."""
        if isinstance(node.value, ast.Name) and self.aliases.get(node.value.id) == "emolib":
            module = f"emolib.{TOP_NAMES.get(node.attr, node.attr)}"
            if module_file(module) is not None:
                self.found.append((module, node.lineno, self.lazy, []))
        self.generic_visit(node)


def _top_names() -> dict[str, str]:
    """The names ``import emolib`` offers lazily (``emolib.fit`` is ``emolib.train.fit``)."""
    tree = ast.parse((Path(__file__).resolve().parents[1] / "emolib" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_NAMES":
            return ast.literal_eval(node.value)
    return {}


TOP_NAMES = _top_names()


def module_file(module: str) -> Path | None:
    rel = Path(*module.split("."))
    for candidate in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def sources(folder: Path | None = None) -> list[Path]:
    folder = PACKAGE if folder is None else folder
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> tuple[ast.Module, Imports]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    visitor = Imports(path)
    visitor.visit(tree)
    return tree, visitor


def graph() -> dict[str, list[tuple[str, int, bool, list[str]]]]:
    return {module_name(p): parse(p)[1].found for p in sources()}


def same_family(a: str, b: str) -> bool:
    """A package and its own submodules (``emolib.hands`` and ``emolib.hands.palm``)."""
    return unit_of(a) == unit_of(b)


# --------------------------------------------------------------------------- the checks


def test_every_module_has_a_layer():
    units = {unit_of(module_name(p)) for p in sources()}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"put {missing} in a layer of tests/test_layout.py (and the README's module map)"


def test_imports_run_one_way():
    wrong = []
    for importer, imports in graph().items():
        src = LAYER_OF.get(unit_of(importer))
        for target, line, _, _ in imports:
            if same_family(importer, target) or target == "emolib":
                continue
            dst = LAYER_OF.get(unit_of(target))
            if src and dst and dst not in MAY_IMPORT[src]:
                wrong.append(f"{importer}:{line} ({src}) imports {target} ({dst})")
    assert not wrong, "imports against the layer directions:\n" + "\n".join(wrong)


def test_no_emolib_import_inside_a_function():
    lazy = [f"{importer}:{line} imports {target} inside a function"
            for importer, imports in graph().items()
            for target, line, inside, _ in imports
            if inside and not same_family(importer, target)]
    assert not lazy, "\n".join(lazy)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def unit_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for importer, imports in graph().items():
        for target, _, _, _ in imports:
            a, b = unit_of(importer), unit_of(target)
            if a != b and target != "emolib":
                edges.setdefault(a, set()).add(b)
    return edges


def test_no_import_cycle():
    cycle = find_cycle(unit_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def private_uses(path: Path) -> list[str]:
    tree, visitor = parse(path)
    here = module_name(path) if path.is_relative_to(PACKAGE) else None
    found = []
    for target, line, _, names in visitor.found:
        if here and same_family(here, target):
            continue
        for name in names:
            if name.startswith("_") and not name.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {target}.{name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in visitor.aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            target = visitor.aliases[node.value.id]
            if here and same_family(here, target):
                continue
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {target}.{node.attr}")
    return found


def test_no_private_reach_ins():
    files = sources() + sources(ROOT / "benchmarks") + sources(ROOT / "tools")
    found = [use for path in files for use in private_uses(path)]
    assert not found, "private names used from another module:\n" + "\n".join(found)


def test_no_module_over_700_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def docstring_nodes(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_no_long_code_in_python_strings():
    long = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = docstring_nodes(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and node.value.count("\n") >= MAX_STRING_LINES):
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} ({node.value.count(chr(10)) + 1} lines)")
    assert not long, "long strings (JavaScript, CSS or HTML belong in emolib/web/):\n" + "\n".join(long)


def test_every_emolib_name_imported_by_benchmarks_tools_and_tests_exists():
    """A moved or removed name breaks scripts that no other test runs (benchmarks, tools)."""
    import importlib

    missing = []
    for path in sources(ROOT / "benchmarks") + sources(ROOT / "tools") + sources(ROOT / "tests"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("emolib"):
                module = importlib.import_module(node.module)
                missing += [f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{a.name}" for a in node.names
                            if a.name != "*" and not hasattr(module, a.name)
                            and module_file(f"{node.module}.{a.name}") is None]
    assert not missing, "imported names that do not exist:\n" + "\n".join(missing)


# --------------------------------------------------------------------------- the check checks itself


def test_the_checker_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    """The checker on a tiny fake package: a lazy import, a private name, a cycle, a wrong direction."""
    fake = tmp_path / "emolib"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "data.py").write_text("from .pipeline import thing\n")  # foundation -> inference
    (fake / "pipeline.py").write_text("from . import data as D\n"
                                      "def f():\n    from .train import fit\n    return D._secret\n")
    (fake / "train.py").write_text("def g():\n    try:\n        from . import data\n"
                                   "    except ImportError:\n        return None\n")
    (fake / "faces.py").write_text("from emolib import fit\nimport emolib\n\n\ndef h():\n    return emolib.train.fit\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = graph()
    assert ("emolib.data", 1, False, []) in found["emolib.pipeline"]
    assert ("emolib.train", 3, True, ["fit"]) in found["emolib.pipeline"]
    assert found["emolib.train"] == [("emolib.data", 3, False, [])], "a guarded optional import is not lazy"
    assert ("emolib.train", 1, False, []) in found["emolib.faces"], "`from emolib import fit` is emolib.train"
    assert ("emolib.train", 6, True, []) in found["emolib.faces"], "`emolib.train.fit` in a function is lazy"
    assert find_cycle(unit_edges()) == ["data", "pipeline", "data"]
    assert private_uses(fake / "pipeline.py") == ["emolib/pipeline.py:4 uses emolib.data._secret"]
    with pytest.raises(AssertionError, match="data:1 \\(foundation\\) imports emolib.pipeline"):
        test_imports_run_one_way()
    with pytest.raises(AssertionError, match="inside a function"):
        test_no_emolib_import_inside_a_function()


if __name__ == "__main__":
    for importer, imports in sorted(graph().items()):
        targets = sorted({t for t, _, _, _ in imports if not same_family(importer, t)})
        print(f"{importer} [{LAYER_OF.get(unit_of(importer), '?')}] -> {', '.join(targets) or '-'}")
