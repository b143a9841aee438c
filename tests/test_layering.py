"""The layers import one way: geo <- planner <- usecases <- web, zoneplan (the CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> the first-party packages it must never import (at module level or inside functions)
FORBIDDEN = {
    "geo": {"planner", "usecases", "web", "zoneplan"},
    "planner": {"usecases", "web", "zoneplan"},
    "usecases": {"web", "zoneplan"},
    "web": {"zoneplan"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_never_imports_the_layers_above_it(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules found under {package}/"
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in modules
    }
    assert {name: bad for name, bad in wrong.items() if bad} == {}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from web.deps import get_store\n    import zoneplan.cli\n")
    assert imported_packages(module) == {"web", "zoneplan"}
