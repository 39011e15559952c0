import pytest

from engine.kernel.code_strings import fold, mixes_scripts, normalise, scripts_of


def test_normalise_turns_full_width_into_ascii_and_trims():
    assert normalise("\u3000\uff33\uff25\uff23\uff32\uff25\uff34\uff11 ") == "SECRET1"


def test_fold_upper_cases_the_normal_form():
    assert fold(" \uff53ecret1") == "SECRET1"


@pytest.mark.parametrize("text", ["ABC-123", "abc_DEF.9", "\u5361\u5bc6\u3042\u30a2", "1234"])
def test_one_script_with_neutral_digits_and_punctuation_is_fine(text):
    assert not mixes_scripts(text)


@pytest.mark.parametrize("text", ["ABC\u0410", "\u0391BC", "SECR\u0415T", "AB\u5361"])
def test_latin_with_cyrillic_greek_or_han_mixes_scripts(text):
    assert mixes_scripts(text)


def test_scripts_come_from_letter_names():
    assert scripts_of("A\u0410-1") == {"LATIN", "CYRILLIC"}
