"""Messages of the producer's spelling, once checked, are kept: what is kept must never change
what a message parses to."""

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.domain import Detection, Source
from roadwatch.parsing import (
    CHECKED_MESSAGES_KEPT,
    ParseLimits,
    _checked_challenge_message,
    parse_detection,
)
from roadwatch.rejections import RejectedMessage

KAFKA_MS = 1_714_564_800_123
DEFAULT_LIMITS = ParseLimits()
VALID = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}


@pytest.fixture
def empty_cache() -> Iterator[None]:
    _checked_challenge_message.cache_clear()
    yield
    _checked_challenge_message.cache_clear()


def outcome(raw: bytes, offset: int = 0, limits: ParseLimits = DEFAULT_LIMITS) -> object:
    try:
        return parse_detection(
            raw, source=Source("t", 0, offset), timestamp_ms=KAFKA_MS + offset, limits=limits
        )
    except RejectedMessage as rejected:
        return (rejected.reason, rejected.detail)


texts = st.text(max_size=40) | st.sampled_from(["Toyota", " SUV ", "Ｆｏｒｄ", "\u200b", "a\x00"])


@given(
    st.fixed_dictionaries(
        {
            "Year": st.integers(1800, 2100) | st.none(),
            "Make": texts,
            "Model": texts,
            "Category": texts,
        }
    )
)
def test_a_message_parses_the_same_from_the_cache_as_checked_afresh(
    message: dict[str, object],
) -> None:
    raw = json.dumps(message).encode()
    # Lower-case keys take the general way, which keeps nothing.
    general = outcome(json.dumps({key.lower(): value for key, value in message.items()}).encode())
    _checked_challenge_message.cache_clear()
    fresh = outcome(raw)
    again = outcome(raw)
    assert again == fresh == general


@given(
    st.binary(max_size=200)
    | st.binary(max_size=8).map(lambda junk: json.dumps(VALID).encode() + junk)
)
def test_any_bytes_parse_the_same_the_second_time_they_come(raw: bytes) -> None:
    # Bytes that are no message of the producer's are kept too, as None: the second time,
    # they must still go the general way and be refused for the same reason.
    _checked_challenge_message.cache_clear()
    fresh = outcome(raw)
    again = outcome(raw)
    assert again == fresh


@pytest.mark.usefixtures("empty_cache")
def test_a_message_kept_under_one_limit_is_checked_again_under_another() -> None:
    raw = json.dumps(VALID).encode()
    assert isinstance(outcome(raw), Detection)
    refused = outcome(raw, limits=ParseLimits(max_text_length=8))
    assert isinstance(refused, tuple)
    assert "'model' is 12 characters, over 8" in refused[1]


@pytest.mark.usefixtures("empty_cache")
def test_a_refused_message_is_refused_each_time_it_comes() -> None:
    raw = json.dumps({**VALID, "Make": "Ford\x1b"}).encode()
    first, second = outcome(raw), outcome(raw, offset=1)
    assert isinstance(first, tuple)
    assert first == second
    assert _checked_challenge_message.cache_info().currsize == 0


@pytest.mark.usefixtures("empty_cache")
def test_each_record_of_a_kept_message_is_its_own_detection() -> None:
    raw = json.dumps(VALID).encode()
    first, second = outcome(raw), outcome(raw, offset=1)
    assert isinstance(first, Detection)
    assert isinstance(second, Detection)
    assert _checked_challenge_message.cache_info().hits == 1
    assert first.id != second.id
    assert (first.source.offset, second.source.offset) == (0, 1)
    assert second.timestamp > first.timestamp


@pytest.mark.usefixtures("empty_cache")
def test_a_long_message_is_parsed_the_same_but_not_kept() -> None:
    raw = json.dumps({**VALID, "Model": "M" * 120}).encode()
    parsed = outcome(raw)
    assert isinstance(parsed, Detection)
    assert parsed.model == "M" * 120
    assert _checked_challenge_message.cache_info().currsize == 0


@pytest.mark.usefixtures("empty_cache")
def test_no_more_messages_are_kept_than_the_bound() -> None:
    for year in range(CHECKED_MESSAGES_KEPT + 100):
        outcome(json.dumps({**VALID, "Model": f"model {year}"}).encode())
    assert _checked_challenge_message.cache_info().currsize == CHECKED_MESSAGES_KEPT
