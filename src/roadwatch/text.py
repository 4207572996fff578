"""Text as roadwatch stores and matches it, so that what looks alike is alike.

NFKC folds compatibility forms (full-width letters, ligatures, non-breaking spaces) into
their plain spelling, and format characters (zero-width spaces and joiners, bidirectional
marks) are removed: otherwise `S\u200bUV` would be stored looking like `SUV` and slip past
every rule. Control characters and lone surrogates are refused: no store keeps a NUL, and a
surrogate cannot even be encoded.
"""

import unicodedata

from roadwatch.errors import RoadwatchError

_REFUSED_CATEGORIES = {"Cc", "Cs"}


class UnsafeText(RoadwatchError):
    """Text holding a character that roadwatch never stores."""

    def __init__(self, character: str) -> None:
        super().__init__(character)
        self.character = character

    def __str__(self) -> str:
        return f"holds the control character U+{ord(self.character):04X}"


def printable(text: str, *, limit: int) -> str:
    """Text from outside, to record as it came: control characters and lone surrogates
    escaped (`\\x00`, `\\udcff`), so that any store takes it, and at most `limit` long."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(
            c.encode("unicode_escape").decode("ascii")
            if unicodedata.category(c) in _REFUSED_CATEGORIES
            else c
            for c in text[: limit * 2]
        )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def normal_text(value: object) -> object:
    """`value` normalised if it is text, as a pydantic validator: ValueError if it is unsafe."""
    if not isinstance(value, str):
        return value
    try:
        return normalise(value)
    except UnsafeText as unsafe:
        raise ValueError(str(unsafe)) from None


def normalise(text: str) -> str:
    """`text` folded by NFKC, without format characters, trimmed; UnsafeText if it holds a
    control character or a lone surrogate."""
    # Printable ASCII, what nearly every message holds, is already in normal form.
    if text.isascii() and text.isprintable():
        return text.strip()
    for character in text:
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            raise UnsafeText(character)
    # Format characters go first: left in, they would keep NFKC from composing across them.
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFKC", visible).strip()
