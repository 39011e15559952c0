import pytest

from engine.codes.generation import (
    DEFAULT_CHARSET,
    DEFAULT_LENGTH,
    GUESS_MARGIN,
    CodePattern,
)
from engine.codes.imports import MAX_BATCH
from engine.kernel.errors import PatternTooSmall, ValidationFailed


def test_default_pattern_draws_codes_of_default_length_from_default_charset():
    code = CodePattern.build().draw()
    assert len(code) == DEFAULT_LENGTH
    assert set(code) <= set(DEFAULT_CHARSET)


def test_pattern_keeps_literals_prefix_and_postfix():
    pattern = CodePattern.build(pattern="##-##", charset="0123456789", prefix="QY", postfix="X")
    code = pattern.draw()
    assert code.startswith("QY") and code.endswith("X") and code[4] == "-"
    assert len(code) == 8 and code[2:4].isdigit() and code[5:7].isdigit()


def test_distinct_draws_never_repeat_and_avoid_taken_codes():
    pattern = CodePattern.build(pattern="###", charset="0123456789")
    taken = {"000", "001"}
    drawn = pattern.draw_distinct(400, taken)
    assert len(set(drawn)) == 400
    assert not {"000", "001"} & set(drawn)


def test_pattern_space_too_small_for_count_is_refused():
    pattern = CodePattern.build(pattern="##", charset="0123456789")
    assert pattern.space == 100
    with pytest.raises(PatternTooSmall):
        pattern.check_room_for(1)


def test_space_of_exactly_2_to_the_40_per_code_is_the_boundary():
    one = CodePattern.build(length=10, charset="0123456789ABCDEF")  # 16^10 = 2^40
    assert one.space == GUESS_MARGIN
    one.check_room_for(1)
    with pytest.raises(PatternTooSmall):
        one.check_room_for(2)
    two = CodePattern.build(length=41, charset="AB")  # 2^41: room for two codes, not three
    two.check_room_for(2)
    with pytest.raises(PatternTooSmall):
        two.check_room_for(3)


def test_refusal_states_the_rule():
    with pytest.raises(PatternTooSmall, match=r"space >= count x 2\^40"):
        CodePattern.build(length=3).check_room_for(9)


def test_default_pattern_holds_the_largest_batch():
    pattern = CodePattern.build()
    assert pattern.space == 2**60
    pattern.check_room_for(MAX_BATCH)


def test_generated_codes_are_upper_case_whatever_the_charset_case():
    pattern = CodePattern.build(length=16, charset="abcdefgh", prefix="qy-")
    code = pattern.draw()
    assert code == code.upper() and code.startswith("QY-")
    assert set(code[3:]) <= set("ABCDEFGH")


@pytest.mark.parametrize("kwargs", [
    {"charset": "A"}, {"charset": "AAB"}, {"charset": "AB C"}, {"charset": "AB#"},
    {"pattern": "NOPLACEHOLDER"}, {"length": 0}, {"length": 200}, {"charset": "aAB"},
    {"charset": "ABCАВС"},
])
def test_bad_pattern_settings_are_refused(kwargs):
    with pytest.raises(ValidationFailed):
        CodePattern.build(**kwargs)
