"""The image installs every package the project ships: a package left out of the Dockerfile
only fails when the container starts."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_package_is_copied_into_the_image():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = {pattern.rstrip("*") for pattern in
               project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$",
                            (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    assert shipped and shipped <= copied, f"not copied: {shipped - copied}"
