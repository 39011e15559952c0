import pytest

from engine.kernel.code_strings import mask

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def code_of(length: int) -> str:
    return "".join(ALPHABET[i % len(ALPHABET)] for i in range(length))


def shown_ends(code: str, masked: str) -> tuple[str, str]:
    head, _, tail = masked.partition("*")
    return head, tail.lstrip("*")


@pytest.mark.parametrize("length", range(1, 41))
def test_mask_shows_at_most_a_quarter_and_nothing_of_a_short_code(length):
    code = code_of(length)
    masked = mask(code)
    head, tail = shown_ends(code, masked)
    assert code.startswith(head) and code.endswith(tail)
    assert len(head) + len(tail) <= length / 4
    if length < 8:
        assert head == tail == ""


@pytest.mark.parametrize("length", range(8, 41))
def test_mask_shows_both_ends_of_a_long_enough_code(length):
    head, tail = shown_ends(code_of(length), mask(code_of(length)))
    assert len(head) + len(tail) == length // 4 and len(head) >= 1


def test_mask_does_not_reveal_the_exact_length():
    assert mask(code_of(1)) == mask(code_of(7)) == "********"
    assert len(mask(code_of(12))) == len(mask(code_of(13))) == len(mask(code_of(15)))


def test_four_character_code_shows_nothing():
    assert mask("M2K8") == "********"
