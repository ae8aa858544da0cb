"""The architecture, enforced: layers and command-line modules on top (import-linter contracts in
pyproject.toml), no module-level import cycle, imports at module top, every third-party import declared.

Each check also runs on a deliberately broken copy or a tiny tree, to prove it can fail.
"""

from __future__ import annotations

import ast
import collections
import importlib.metadata
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser under its old name
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vlm_classdata", "corpora_stats", "builders", "imagewikiqa", "cards")


# ----- the scans ----------------------------------------------------------------------------------
def modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every module of the packages under ``root``."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names an import statement imports (``from a import b`` gives ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: top level and inside top-level if/try/with blocks, not
    under ``if TYPE_CHECKING:``."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.With):
            todo += node.body


def function_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports inside a function or method body (each once, however deeply nested)."""
    seen: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in seen:
                    seen.add(id(node))
                    yield node


def import_cycles(root: Path) -> list[list[str]]:
    """Strongly connected components (more than one module) of the module-level import graph."""
    mods = modules(root)
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in module_level_imports(tree):
            # the module imported (``from a.b import c``: a.b, and a.b.c when c is a module); the packages
            # above it are initialised first, but a package importing its own submodules is no cycle
            for target in imported_names(node, name, path.name == "__init__.py"):
                if target in mods and target != name:
                    graph[name].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                cycles.append(sorted(component))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return cycles


def inner_import_problems(root: Path) -> list[str]:
    """Function-level imports that break the rule: our own code always; the standard library always; a
    third-party library only with a comment on the import (why it is deferred: heavy, optional)."""
    problems = []
    for name, path in modules(root).items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in function_level_imports(ast.parse(source)):
            target = imported_names(node, name, path.name == "__init__.py")[0]
            top = target.split(".")[0]
            where = f"{path.relative_to(root)}:{node.lineno} imports {target}"
            if top in PACKAGES:
                problems.append(f"{where} (our own code: import it at module top)")
            elif top in sys.stdlib_module_names:
                problems.append(f"{where} (standard library: import it at module top)")
            elif "#" not in "\n".join(lines[node.lineno - 1: node.end_lineno]):
                problems.append(f"{where} (third-party inside a function needs a comment saying why)")
    return problems


def private_imports_across_packages(root: Path) -> list[str]:
    """``from X import _name`` where X is in another top-level package: a package uses only public names of
    the packages below it (private modules are the import-linter contract's)."""
    problems = []
    for name, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and not node.level and node.module):
                continue
            if node.module.split(".")[0] in PACKAGES and node.module.split(".")[0] != name.split(".")[0]:
                problems += [f"{path.relative_to(root)}:{node.lineno} imports {node.module}.{alias.name}"
                             for alias in node.names if alias.name.startswith("_")]
    return problems


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def undeclared_imports(root: Path) -> list[str]:
    """Top-level third-party modules the packages import whose distribution pyproject.toml does not declare."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    declared = {_dist_key(re.match(r"[A-Za-z0-9_.\-]+", s).group(0)) for s in specs}
    dists = importlib.metadata.packages_distributions()
    missing = collections.defaultdict(set)
    for name, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                top = imported_names(node, name, False)[0].split(".")[0]
                if top in PACKAGES or top in sys.stdlib_module_names or top == "__future__":
                    continue
                if not {_dist_key(d) for d in dists.get(top, [top])} & declared:
                    missing[top].add(str(path.relative_to(root)))
    return [f"{top} (imported by {', '.join(sorted(files))})" for top, files in sorted(missing.items())]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the contracts of ``root``/pyproject.toml on the packages under ``root``."""
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


# ----- the architecture of this tree ----------------------------------------------------------------
def test_import_contracts_hold() -> None:
    """Layers cards > imagewikiqa > builders > corpora_stats > vlm_classdata, and only command-line modules
    (``*.__main__``, ``builders.imagenet_qa``) import command-line modules (function-level imports count)."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[result.stdout.find("Broken contracts"):] + result.stderr


def test_no_module_level_import_cycle() -> None:
    assert import_cycles(ROOT) == []


def test_imports_of_our_own_code_and_the_standard_library_are_at_module_top() -> None:
    problems = inner_import_problems(ROOT)
    assert problems == [], f"{len(problems)} function-level imports:\n" + "\n".join(problems)


def test_packages_use_only_public_names_of_other_packages() -> None:
    assert private_imports_across_packages(ROOT) == []


def test_every_third_party_import_is_a_declared_dependency() -> None:
    assert undeclared_imports(ROOT) == []


# ----- the checks can fail ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken_copy(tmp_path_factory) -> Path:
    """The five packages (Python files only) and pyproject.toml, with a foundation module importing cards
    and a non-CLI module importing a CLI inside a function."""
    root = tmp_path_factory.mktemp("broken")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package,
                        ignore=lambda d, names: [n for n in names if not (n.endswith(".py") or (Path(d) / n).is_dir())
                                                 or n == "__pycache__"])
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    names = root / "vlm_classdata" / "names.py"
    names.write_text(names.read_text(encoding="utf-8") + "\nimport cards  # a layer upwards\n", encoding="utf-8")
    errors = root / "vlm_classdata" / "errors.py"
    errors.write_text(errors.read_text(encoding="utf-8")
                      + "\n\ndef _cli():\n    import cards.__main__\n    return cards.__main__\n", encoding="utf-8")
    return root


def test_contracts_fail_on_an_upward_import_and_a_function_level_cli_import(broken_copy: Path) -> None:
    result = lint_imports(broken_copy)
    assert result.returncode != 0
    out = result.stdout
    assert "Layers: cards > imagewikiqa > builders > corpora_stats > vlm_classdata BROKEN" in out
    assert "vlm_classdata.names -> cards" in out
    assert "Only command-line modules import command-line modules BROKEN" in out
    assert "vlm_classdata.errors -> cards.__main__" in out


def test_inner_import_scan_names_each_offender(broken_copy: Path) -> None:
    problems = inner_import_problems(broken_copy)
    assert any(p.startswith("vlm_classdata/errors.py:") and "imports cards.__main__ (our own code" in p
               for p in problems)


def test_cycle_and_dependency_scans_find_what_they_look_for(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "vlm_classdata" / "a.py").write_text("from vlm_classdata import b\nimport yaml\n")
    (tmp_path / "vlm_classdata" / "b.py").write_text(textwrap.dedent("""\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from vlm_classdata import c
        from . import a
        def f():
            import numpy  # heavy: only f needs it
            import json
    """))
    (tmp_path / "vlm_classdata" / "c.py").write_text("import vlm_classdata.b\n")
    (tmp_path / "cards" / "d.py").write_text("from vlm_classdata.a import _helper, public\nfrom cards import _x\n")
    (tmp_path / "cards" / "pkg").mkdir()  # a package importing its submodules is no cycle ...
    (tmp_path / "cards" / "pkg" / "__init__.py").write_text("from cards.pkg.x import X\n")
    (tmp_path / "cards" / "pkg" / "x.py").write_text("import cards.pkg.y\nX = 1\n")
    (tmp_path / "cards" / "pkg" / "y.py").write_text("")
    (tmp_path / "cards" / "pkg2").mkdir()  # ... but a submodule importing from its package's namespace is one
    (tmp_path / "cards" / "pkg2" / "__init__.py").write_text("from cards.pkg2.x import X\nY = 2\n")
    (tmp_path / "cards" / "pkg2" / "x.py").write_text("from cards.pkg2 import Y\nX = Y\n")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy>=1"]\n'
                                             '[project.optional-dependencies]\ndev = []\n')
    assert sorted(import_cycles(tmp_path)) == [["cards.pkg2", "cards.pkg2.x"],
                                               ["vlm_classdata.a", "vlm_classdata.b"]]  # c's is TYPE_CHECKING only
    assert inner_import_problems(tmp_path) == [
        "vlm_classdata/b.py:7 imports json (standard library: import it at module top)"]
    assert undeclared_imports(tmp_path) == ["yaml (imported by vlm_classdata/a.py)"]
    assert private_imports_across_packages(tmp_path) == ["cards/d.py:1 imports vlm_classdata.a._helper"]
