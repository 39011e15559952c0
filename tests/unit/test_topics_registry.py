"""Every module that defines an aggregate is imported by engine/topics.py, which the event
store imports when it opens, so every stored topic resolves in any process."""

import ast
from pathlib import Path

import engine
from engine.topics import MODULES

ENGINE = Path(engine.__file__).parent


def defines_an_aggregate(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(node, ast.ClassDef) and any(
        isinstance(base, ast.Name) and base.id == "Aggregate" for base in node.bases)
        for node in tree.body)


def test_every_module_with_an_aggregate_is_registered():
    defining = {".".join(path.relative_to(ENGINE).with_suffix("").parts)
                for path in ENGINE.rglob("*.py") if defines_an_aggregate(path)}
    registered = {module.__name__.removeprefix("engine.") for module in MODULES}
    assert defining and defining <= registered, defining - registered
