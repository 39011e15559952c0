"""The arrows between packages point down: nothing beneath api/ imports it, the engine imports
no package above it, and the projections import neither replay/ nor the composition root."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Where the source lies (a package, or one file) -> the packages it must never import.
FORBIDDEN = {
    "engine": {"api", "projections", "replay", "runtime", "supplier_adapters", "supplier_sim",
               "httpx"},
    "supplier_adapters": {"api", "projections", "replay", "runtime", "supplier_sim"},
    "supplier_sim": {"api", "projections", "replay", "runtime"},
    "projections": {"api", "replay", "runtime"},
    "replay": {"api", "runtime"},
    "runtime": {"api"},
    "bench": {"api"},
    # Tests below e2e/ drive the engine through the composition root, never through HTTP.
    "tests/conftest.py": {"api"},
    "tests/unit": {"api"},
    "tests/integration": {"api"},
}


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def sources(where: str) -> list[Path]:
    path = ROOT / where
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def test_an_import_inside_a_function_is_seen():
    source = "import engine.app\n\ndef late():\n    from api.runtime import Runtime\n"
    assert imports_of(source) == [(1, "engine"), (4, "api")]


@pytest.mark.parametrize("where", FORBIDDEN)
def test_no_arrow_points_up(where):
    files = sources(where)
    assert files, f"nothing to check in {where}"
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {package}"
             for path in files
             for line, package in imports_of(path.read_text(encoding="utf-8"))
             if package in FORBIDDEN[where]]
    assert wrong == []
