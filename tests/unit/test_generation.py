import pytest

from engine.errors import PatternTooSmall, ValidationFailed
from engine.generation import DEFAULT_CHARSET, DEFAULT_LENGTH, CodePattern


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
    pattern.check_room_for(50)
    with pytest.raises(PatternTooSmall):
        pattern.check_room_for(51)


@pytest.mark.parametrize("kwargs", [
    {"charset": "A"}, {"charset": "AAB"}, {"charset": "AB C"}, {"charset": "AB#"},
    {"pattern": "NOPLACEHOLDER"}, {"length": 0}, {"length": 200},
])
def test_bad_pattern_settings_are_refused(kwargs):
    with pytest.raises(ValidationFailed):
        CodePattern.build(**kwargs)
