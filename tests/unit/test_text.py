import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.text import UnsafeText, normalise


@pytest.mark.parametrize(
    ("given_text", "stored"),
    [
        ("SUV", "SUV"),
        ("  Land Cruiser ", "Land Cruiser"),
        ("S\u200bUV", "SUV"),  # zero-width space
        ("\u200dSUV\u2060", "SUV"),  # joiner, word joiner
        ("\u202eVUS", "VUS"),  # right-to-left override: removed, not obeyed
        ("\ufeffToyota", "Toyota"),  # byte-order mark
        ("ＳＵＶ", "SUV"),  # full-width letters
        ("Land\u00a0Cruiser", "Land Cruiser"),  # non-breaking space
        ("Citroën", "Citroën"),
        ("Citroe\u0308n", "Citroën"),  # combining diaeresis, composed
        ("ﬁat", "fiat"),  # ligature
    ],
)
def test_text_is_folded_to_one_spelling(given_text: str, stored: str) -> None:
    assert normalise(given_text) == stored


@pytest.mark.parametrize("text", ["Ford\x00", "a\tb", "line\nbreak", "\x7f", "\x85x", "a\ud800"])
def test_control_characters_and_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(UnsafeText):
        normalise(text)


@given(st.text())
def test_normal_text_is_a_fixed_point_and_holds_nothing_unsafe(text: str) -> None:
    try:
        once = normalise(text)
    except UnsafeText:
        return
    assert normalise(once) == once
    once.encode()  # no surrogate survives
    assert "\x00" not in once
