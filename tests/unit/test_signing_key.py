"""JWT_SECRET: generated keys pass, and no phrase does, however long, in whatever spelling."""

import base64
import math
import random
import string

import pytest

from roadwatch.api.signing_key import (
    REFUSE_MARGIN_BITS,
    SYMBOLS,
    _random_bits,
    _spelling_bits,
    _symbol,
    _text_bits,
    _trigrams,
    key_weakness,
)

PHRASES = [
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud",
    "Loremipsumdolorsitametconsecteturadipiscingelitseddoeiusmodtempor",
    "LoremIpsumDolorSitAmetConsecteturAdipiscingElitSedDoEiusmodTempor",
    "LOREM_IPSUM_DOLOR_SIT_AMET_CONSECTETUR_ADIPISCING_ELIT_SED_DO_EIUSMOD",
    "correct-horse-battery-staple-and-some-more-words-to-make-it-long",
    "Der schnelle braune Fuchs springt über den faulen Hund und noch mehr",
    "Le vif renard brun saute par-dessus le chien paresseux encore une fois",
    "El veloz murciélago hindú comía feliz cardillo y kiwi, la cigüeña tocaba",
    "It was the best of times, it was the worst of times, it was the age of wisdom",
    "ThisIsMySuperSecretJwtSigningKeyForRoadwatchProduction2024",
    "my super secret jwt key for roadwatch production 2024!! my super secret jwt key",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
    "Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3",
    "a" * 64,
    "0123456789" * 7,
    "password" * 8,
    "x" * 31,
    # Generated, but too short: 16 bytes.
    "8f14e45fceea167a5a36dedd4bea2543",
]
# Many of each, from a seeded generator: the same in every run.
_random = random.Random(20261205)
GENERATED = [
    encode(_random.randbytes(size))
    for size in (32, 48, 64)
    for encode in (
        bytes.hex,
        lambda b: b.hex().upper(),
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.b32encode(b).decode(),
    )
    for _ in range(200)
]


@pytest.mark.parametrize("phrase", PHRASES, ids=range(len(PHRASES)))
def test_a_phrase_or_a_pattern_is_refused_whatever_its_length(phrase: str) -> None:
    assert key_weakness(phrase) is not None
    assert key_weakness(phrase * 4) is not None


def test_words_are_refused_as_words() -> None:
    weakness = key_weakness(PHRASES[0])
    assert weakness is not None
    assert "reads as words" in weakness


def test_no_generated_key_of_32_bytes_or_more_reads_as_words() -> None:
    margins = [_text_bits(key.rstrip("=")) - _random_bits(key.rstrip("=")) for key in GENERATED]
    assert min(margins) > -REFUSE_MARGIN_BITS


def test_generated_keys_pass() -> None:
    # zxcvbn's part takes a while a key: a sample of each kind and size.
    refused = [key for key in GENERATED[::20] if key_weakness(key) is not None]
    assert refused == []


@pytest.mark.parametrize("context", ["  ", " t", "th", "00", "qz", "e "])
def test_the_text_model_gives_at_most_probability_one_to_what_may_follow(context: str) -> None:
    # What bounds the chance of refusing a generated key: for every context, the next
    # character's probabilities sum to one at most, over every character there is.
    trigrams = _trigrams()
    assert math.isclose(sum(trigrams.probability(context, s) for s in SYMBOLS), 1.0)
    for previous in ("", "a", "A", "AB", "aB", " ", "7"):
        by_symbol: dict[str, float] = {}
        for character in string.printable + "üßéİ€":
            symbol = _symbol(character)
            bits = _spelling_bits(character, symbol, previous)
            by_symbol[symbol] = by_symbol.get(symbol, 0.0) + 2**-bits
        assert all(total <= 1.0 + 1e-9 for total in by_symbol.values())
