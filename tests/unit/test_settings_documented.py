"""The README's settings table is the operator's reference: every variable engine/settings.py
reads has a row, and every row names a variable that is read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r'"(QUANYI_[A-Z0-9_]+)"')
ROW = re.compile(r"^\| `(QUANYI_[A-Z0-9_]+)` \|", re.MULTILINE)


def _read() -> set[str]:
    return set(VARIABLE.findall((ROOT / "engine" / "settings.py").read_text()))


def _documented() -> set[str]:
    return set(ROW.findall((ROOT / "README.md").read_text()))


def test_every_setting_read_has_a_row_in_the_readme_table():
    assert _read(), "no QUANYI_ variable found in engine/settings.py"
    assert sorted(_read() - _documented()) == []


def test_every_row_of_the_readme_table_is_a_setting_that_is_read():
    assert sorted(_documented() - _read()) == []
