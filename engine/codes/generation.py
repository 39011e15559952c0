"""Platform-generated redemption codes (兑换码): drawn from a CSPRNG over a charset and a
pattern, and refused when the pattern's space is too small for the count to stay unguessable.

The rule: a batch of ``count`` codes needs at least 2^40 candidate codes per code it holds
(``space >= count * 2^40``), so that one guess hits a live code with odds of at most 1 in
2^40. The default pattern (12 characters over 32 symbols, 2^60) holds the largest batch,
100,000 codes (about 2^56.6 needed). Generated codes are case-insensitive, so the charset and
literals are folded to upper case (two characters that fold alike are refused).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from engine.kernel.code_strings import fold, mixes_scripts
from engine.kernel.errors import PatternTooSmall, ValidationFailed

DEFAULT_CHARSET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at counters
DEFAULT_LENGTH = 12
MAX_CODE_LENGTH = 128
GUESS_MARGIN_BITS = 40
GUESS_MARGIN = 2**GUESS_MARGIN_BITS  # candidate codes a generated batch needs per live code


@dataclass(frozen=True)
class CodePattern:
    """How generated codes look: ``prefix + pattern + postfix``, each ``#`` one random char."""

    pattern: str
    charset: str = DEFAULT_CHARSET
    prefix: str = ""
    postfix: str = ""

    @classmethod
    def build(cls, *, length: int | None = None, charset: str | None = None,
              prefix: str = "", postfix: str = "", pattern: str | None = None) -> "CodePattern":
        chars = _folded_charset(charset or DEFAULT_CHARSET)
        prefix, postfix = fold(prefix) if prefix else "", fold(postfix) if postfix else ""
        if pattern is None:
            size = DEFAULT_LENGTH if length is None else length
            if size < 1:
                raise ValidationFailed("length must be at least 1")
            pattern = "#" * size
        elif "#" not in pattern:
            raise ValidationFailed("pattern needs at least one '#'")
        else:
            pattern = fold(pattern)
        if mixes_scripts(chars + prefix + pattern + postfix):
            raise ValidationFailed("charset, pattern, prefix and postfix mix letters of "
                                   "several scripts")
        built = cls(pattern=pattern, charset=chars, prefix=prefix, postfix=postfix)
        if len(prefix) + len(pattern) + len(postfix) > MAX_CODE_LENGTH:
            raise ValidationFailed(f"a code may be at most {MAX_CODE_LENGTH} characters long")
        return built

    @property
    def space(self) -> int:
        return len(self.charset) ** self.pattern.count("#")

    def check_room_for(self, count: int) -> None:
        """Refuse a batch whose pattern holds fewer than 2^40 candidates per code."""
        if self.space < count * GUESS_MARGIN:
            raise PatternTooSmall(
                f"a generated batch needs at least 2^{GUESS_MARGIN_BITS} possible codes per "
                f"code it holds (space >= count x 2^{GUESS_MARGIN_BITS}), so that a guess "
                f"hits a live code with odds of at most 1 in 2^{GUESS_MARGIN_BITS}; this "
                f"pattern holds about 2^{self.space.bit_length() - 1} codes and {count} "
                f"codes need 2^{GUESS_MARGIN_BITS} times as many: use a longer pattern or a "
                f"larger charset")

    def draw(self) -> str:
        body = "".join(secrets.choice(self.charset) if c == "#" else c for c in self.pattern)
        return f"{self.prefix}{body}{self.postfix}"

    def draw_distinct(self, count: int, taken: set[str]) -> list[str]:
        """``count`` fresh codes, none in ``taken`` (which grows with them)."""
        drawn: list[str] = []
        while len(drawn) < count:
            code = self.draw()
            if code not in taken:
                taken.add(code)
                drawn.append(code)
        return drawn


def _folded_charset(charset: str) -> str:
    """The charset in upper case, each character still one character and none repeated."""
    if any(c.isspace() or not c.isprintable() for c in charset):
        raise ValidationFailed("charset may hold only printable, non-space characters")
    folded = [fold(c) for c in charset]
    if any(len(c) != 1 for c in folded):
        raise ValidationFailed("charset characters must stay single characters in upper case")
    chars = "".join(folded)
    if len(set(chars)) != len(chars) or len(chars) < 2:
        raise ValidationFailed("charset needs at least two distinct characters, none repeated "
                               "(upper and lower case count as one: generated codes are "
                               "case-insensitive)")
    if "#" in chars:
        raise ValidationFailed("charset may not contain '#', the pattern placeholder")
    return chars
