"""How a code string is read before it is fingerprinted.

Unicode NFKC first (full-width ``ＡＢＣ１`` and other compatibility forms become plain
``ABC1``), then surrounding space is dropped; a case-insensitive code is also upper-cased. A
code whose letters come from more than one script (Latin with Cyrillic or Greek look-alikes:
``A`` and ``А`` look the same and are not) is refused: the scripts are read from the Unicode
names of its letters, while digits, punctuation and symbols belong to no script.
"""

from __future__ import annotations

import unicodedata

MASK_STARS = "*" * 8
MASK_MIN_LENGTH = 8

# Japanese writes Han, hiragana and katakana side by side: one script for this purpose.
SCRIPT_ALIASES = {"HIRAGANA": "CJK", "KATAKANA": "CJK"}


def normalise(code: str) -> str:
    """The code as typed, in its NFKC form, without surrounding space."""
    return unicodedata.normalize("NFKC", code).strip()


def fold(code: str) -> str:
    """The case-insensitive form: upper case of the NFKC form (normalised again, because
    upper-casing may yield characters NFKC would change)."""
    return unicodedata.normalize("NFKC", normalise(code).upper())


def scripts_of(text: str) -> set[str]:
    """The scripts of the letters in ``text``; characters that are not letters are neutral."""
    scripts = set()
    for char in text:
        if unicodedata.category(char).startswith("L"):
            word = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
            scripts.add(SCRIPT_ALIASES.get(word, word))
    return scripts


def mixes_scripts(text: str) -> bool:
    return len(scripts_of(text)) > 1


def mask(code: str) -> str:
    """Enough of a code to recognise it, never enough to use it: at most a quarter of its
    characters (half at each end), none of a code shorter than 8, and always the same run of
    stars in the middle so the mask does not tell the code's exact length."""
    if len(code) < MASK_MIN_LENGTH:
        return MASK_STARS
    shown = len(code) // 4
    tail = shown // 2
    return code[:shown - tail] + MASK_STARS + code[len(code) - tail:]
