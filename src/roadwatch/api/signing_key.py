"""Whether a JWT signing key was generated, or is something a dictionary attack could find.

A key is judged by two estimates of how many guesses would find it, each in bits:
- as a random key: its length times the bits of the smallest alphabet that holds it (hex,
  base32, base64, printable ASCII, any character). What a generator makes, it can be.
- as text: by a model of how words are spelt (letter trigrams learnt from zxcvbn's word
  lists), and of where their capitals, digits, spaces and punctuation fall.

A key that the text model finds far likelier than the random one (by REFUSE_MARGIN_BITS)
reads as words, however long it is: a phrase, in any language of the Latin alphabet, in
any case, with any separators. A generated key cannot be refused that way but by chance,
and the chance is bounded: the text model gives every string of a length a probability,
and those sum to at most one, so a random key is 2^m times likelier as text with
probability at most 2^-m (Markov's inequality).

zxcvbn still judges the key as a password as well: repeats, sequences and keyboard rows.
"""

import functools
import math
import re
import string
from collections import Counter, defaultdict
from collections.abc import Iterable

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from roadwatch.api.credential_rules import ZXCVBN_MAX_LENGTH

# 32 random bytes: 64 hex digits, 43 base64 characters.
MIN_KEY_BITS = 256
MIN_PASSWORD_BITS = 128
REFUSE_MARGIN_BITS = 32

# The alphabets a key may be generated over, smallest first, each with its bits a character.
ALPHABETS = (
    (re.compile(r"[0-9a-f]*|[0-9A-F]*"), 4.0),
    (re.compile(r"[a-z2-7]*|[A-Z2-7]*"), 5.0),
    (re.compile(r"[A-Za-z0-9+/]*|[A-Za-z0-9_-]*"), 6.0),
    (re.compile(r"[ -~]*"), math.log2(95)),
)
ANY_CHARACTER_BITS = math.log2(0x110000)

# The text model's symbols: a letter, a digit or a break (a space, punctuation, anything else).
LETTERS = string.ascii_lowercase
DIGIT, BREAK = "0", " "
SYMBOLS = LETTERS + DIGIT + BREAK
# How much the last two symbols, the last one and none count; the rest goes to all alike.
ORDER_WEIGHTS = {2: 0.6, 1: 0.25, 0: 0.1}
UNIFORM_WEIGHT = 0.05
# A break is a space half the time, a hyphen, underscore or full stop an eighth each; other
# ASCII punctuation and any other character share what is left.
SEPARATOR_BITS = {" ": 1.0, "-": 3.0, "_": 3.0, ".": 3.0}
PUNCTUATION = set(string.punctuation) - set(SEPARATOR_BITS)
OTHER_PUNCTUATION_BITS = 4 + math.log2(len(PUNCTUATION))
OTHER_CHARACTER_BITS = 4 + math.log2(0x110000)
DIGITS_TO_ONE = str.maketrans(dict.fromkeys(string.digits, DIGIT))
NOT_A_SYMBOL = re.compile(r"[^a-z0]")


def key_weakness(key: str) -> str | None:
    """Why the signing key is too weak to guard tokens, or None."""
    # A key that repeats a shorter one is as strong as that one, and a little more.
    body = _repeated(key.rstrip("="))
    as_random = _random_bits(body)
    if as_random < MIN_KEY_BITS:
        return (
            "it holds fewer than 32 random bytes' worth of characters: 64 hex digits or 43 "
            "base64 characters at least"
        )
    as_text = _text_bits(body)
    if as_text + REFUSE_MARGIN_BITS < as_random:
        return (
            f"it reads as words (2^{as_random - as_text:.0f} times likelier as text than as a "
            "random key), which a dictionary attack on phrases could find"
        )
    # zxcvbn reads at most 72 characters: the estimate of a longer key is a lower bound.
    guesses = zxcvbn(body[:ZXCVBN_MAX_LENGTH])["guesses_log10"] * math.log2(10)
    if guesses < MIN_PASSWORD_BITS:
        return f"it would take about 2^{guesses:.0f} guesses, fewer than 2^{MIN_PASSWORD_BITS}"
    return None


def _repeated(key: str) -> str:
    """The shortest string that the key is a whole number of copies of."""
    period = (key + key).find(key, 1)
    return key[:period] if 0 < period < len(key) else key


def _random_bits(key: str) -> float:
    for alphabet, bits in ALPHABETS:
        if alphabet.fullmatch(key):
            return len(key) * bits
    return len(key) * ANY_CHARACTER_BITS


def _text_bits(key: str) -> float:
    """-log2 of the text model's probability of the key."""
    symbols = _trigrams()
    context, total = BREAK * 2, 0.0
    for at, character in enumerate(key):
        symbol = _symbol(character)
        total -= math.log2(symbols.probability(context, symbol))
        total += _spelling_bits(character, symbol, key[max(at - 2, 0) : at])
        context = context[1] + symbol
    return total


def _symbol(character: str) -> str:
    if _is_letter(character):
        return character.lower()
    if character.isascii() and character.isdigit():
        return DIGIT
    return BREAK


def _spelling_bits(character: str, symbol: str, before: str) -> float:
    """Which character of its symbol this is, after those before it. For each symbol, the
    probabilities sum to one at most over every character there is."""
    if symbol == DIGIT:
        return math.log2(10)
    if symbol == BREAK:
        return SEPARATOR_BITS.get(character) or (
            OTHER_PUNCTUATION_BITS if character in PUNCTUATION else OTHER_CHARACTER_BITS
        )
    previous, before_that = before[-1:], before[-2:-1]
    if not _is_letter(previous):
        return 1.0
    if previous.isupper():
        # In a run of capitals, mostly capitals; after a single one, either.
        if _is_letter(before_that) and before_that.isupper():
            return -math.log2(0.9 if character.isupper() else 0.1)
        return 1.0
    # Within a word, after a small letter: mostly small letters.
    return -math.log2(0.1 if character.isupper() else 0.9)


def _is_letter(character: str) -> bool:
    return character.isascii() and character.isalpha()


class _Trigrams:
    def __init__(self, words: Iterable[str]) -> None:
        trigrams = Counter[str]()
        for word in words:
            spelt = BREAK * 2 + _spelt(word) + BREAK
            trigrams.update(spelt[end - 2 : end + 1] for end in range(2, len(spelt)))
        # counts[order][the `order` symbols before][symbol]: a trigram's counts summed down.
        self._counts = [defaultdict[str, Counter[str]](Counter) for _ in ORDER_WEIGHTS]
        for trigram, count in trigrams.items():
            for order in ORDER_WEIGHTS:
                self._counts[order][trigram[2 - order : 2]][trigram[2]] += count
        self._totals = [{k: v.total() for k, v in c.items()} for c in self._counts]

    def probability(self, context: str, symbol: str) -> float:
        """Never zero, and summing to one over SYMBOLS for any context."""
        total = UNIFORM_WEIGHT / len(SYMBOLS)
        for order, weight in ORDER_WEIGHTS.items():
            seen = context[len(context) - order :]
            known = self._totals[order].get(seen)
            share = self._counts[order][seen][symbol] / known if known else 1 / len(SYMBOLS)
            total += weight * share
        return total


def _spelt(word: str) -> str:
    """The word's symbols, the fast way: the word lists are ASCII."""
    return NOT_A_SYMBOL.sub(BREAK, word.lower().translate(DIGITS_TO_ONE))


@functools.cache
def _trigrams() -> _Trigrams:
    return _Trigrams(word for words in FREQUENCY_LISTS.values() for word in words)
