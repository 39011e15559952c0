"""Platform-generated redemption codes (兑换码): drawn from a CSPRNG over a charset and a
pattern, and refused when the pattern's space is too small to hold the count sparsely."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from engine.errors import PatternTooSmall, ValidationFailed

DEFAULT_CHARSET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at counters
DEFAULT_LENGTH = 12
MAX_CODE_LENGTH = 128
SPARSENESS = 2  # the space must hold at least twice the count, so draws stay fast and sparse


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
        chars = charset or DEFAULT_CHARSET
        if len(set(chars)) != len(chars) or len(chars) < 2:
            raise ValidationFailed("charset needs at least two distinct characters, none repeated")
        if any(c.isspace() or not c.isprintable() for c in chars):
            raise ValidationFailed("charset may hold only printable, non-space characters")
        if "#" in chars:
            raise ValidationFailed("charset may not contain '#', the pattern placeholder")
        if pattern is None:
            size = DEFAULT_LENGTH if length is None else length
            if size < 1:
                raise ValidationFailed("length must be at least 1")
            pattern = "#" * size
        elif "#" not in pattern:
            raise ValidationFailed("pattern needs at least one '#'")
        built = cls(pattern=pattern, charset=chars, prefix=prefix, postfix=postfix)
        if len(prefix) + len(pattern) + len(postfix) > MAX_CODE_LENGTH:
            raise ValidationFailed(f"a code may be at most {MAX_CODE_LENGTH} characters long")
        return built

    @property
    def space(self) -> int:
        return len(self.charset) ** self.pattern.count("#")

    def check_room_for(self, count: int) -> None:
        if count * SPARSENESS > self.space:
            raise PatternTooSmall(
                f"the pattern holds {self.space} distinct codes; {count} codes need at least "
                f"{count * SPARSENESS} (a longer pattern or a larger charset)")

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
