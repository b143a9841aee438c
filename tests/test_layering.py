"""The layers import one way (geo <- planner <- usecases <- web, zoneplan), and modules stay short."""

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


# --------------------------------------------------------------------------- module size
# Every Python module of the project stays at most MAX_LINES long (the aim is ~600), so a
# newcomer can read one in a sitting; a longer one needs its reason here.
MAX_LINES = 650
PROJECT_DIRS = ("geo", "planner", "usecases", "web", "zoneplan", "scripts", "benchmarks", "tests")
# path from the project root -> why it is longer (none today: keep it that way)
LONG_MODULES: dict[str, str] = {}


def project_modules() -> list[Path]:
    """Every Python module of the project (the virtualenv and node_modules left out)."""
    return sorted(p for d in PROJECT_DIRS for p in (ROOT / d).rglob("*.py"))


def line_count(path: Path) -> int:
    """Lines in a text file."""
    return len(path.read_text(encoding="utf-8").splitlines())


def too_long(paths: list[Path], allowed: dict[str, str], limit: int = MAX_LINES) -> list[str]:
    """The modules over ``limit`` lines that are not in ``allowed``, with their length."""
    return [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in paths
        if (n := line_count(path)) > limit and str(path.relative_to(ROOT)) not in allowed
    ]


def test_no_module_grows_past_the_limit_without_a_stated_reason() -> None:
    modules = project_modules()
    assert len(modules) > 100  # the walk found the project
    wrong = too_long(modules, LONG_MODULES)
    assert wrong == [], (
        f"split these along their seams (at most ~600 lines each), or add each to "
        f"LONG_MODULES with its reason: {wrong}"
    )


def test_every_allowed_long_module_exists_is_long_and_says_why() -> None:
    for name, reason in LONG_MODULES.items():
        path = ROOT / name
        assert path.exists(), f"{name} is gone: remove it from LONG_MODULES"
        assert line_count(path) > MAX_LINES, f"{name} is short now: remove it from LONG_MODULES"
        assert len(reason.split()) >= 5, f"{name}: give a reason, not a label"


def test_the_size_check_sees_a_long_module() -> None:
    module = ROOT / "tests" / "test_layering.py"
    assert too_long([module], {}, limit=10) == [
        f"tests/test_layering.py ({line_count(module)} lines)"
    ]
    assert too_long([module], {"tests/test_layering.py": "a reason"}, limit=10) == []
    assert too_long([module], {}) == []
