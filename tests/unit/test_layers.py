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


# The rooms of engine/ and the rooms each may build on; a room not named here may not be
# imported by another. The kernel builds on nothing; sales does not build on top-ups (a
# top-up's payment is opened through a function the composition hands in).
ENGINE = ROOT / "engine"
ROOMS_BENEATH = {
    "kernel": set(),
    "eventstore": {"kernel", "settings"},
    "settings": {"kernel", "eventstore"},
    "catalog": {"kernel", "eventstore"},
    "keys": {"kernel", "eventstore"},
    "ledger": {"kernel", "eventstore"},
    "codes": {"kernel", "eventstore", "catalog", "ledger"},
    "webhooks": {"kernel", "eventstore", "keys"},
    "sales": {"kernel", "eventstore", "catalog", "codes", "ledger"},
    "topups": {"kernel", "eventstore", "catalog", "ledger", "sales"},
}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "engine" and len(parts) > 1 else None


def engine_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += ([(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
                      if node.module == "engine" else [(node.lineno, node.module)])
    return found


def test_every_room_of_the_engine_is_placed():
    rooms = {path.stem if path.is_file() else path.name
             for path in ENGINE.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()}
    composition = {"__init__", "app", "topics"}  # the domain's face and what it assembles
    assert rooms - composition == set(ROOMS_BENEATH)


@pytest.mark.parametrize("room", ROOMS_BENEATH)
def test_a_room_builds_only_on_the_rooms_beneath_it(room):
    files = [ENGINE / f"{room}.py"] if (ENGINE / f"{room}.py").exists() else sorted(
        (ENGINE / room).rglob("*.py"))
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in files
             for line, module in engine_imports(path)
             if room_of(module) not in (None, room, *ROOMS_BENEATH[room])]
    assert wrong == []


def test_a_room_that_reaches_above_itself_is_seen(tmp_path):
    path = tmp_path / "paying.py"
    path.write_text("from engine.topups.fulfilment import Fulfilment\n", encoding="utf-8")
    [(_, module)] = engine_imports(path)
    assert room_of(module) == "topups" and "topups" not in ROOMS_BENEATH["sales"]
