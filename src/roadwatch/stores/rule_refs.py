"""The rules an alert names, read back from a store: each as written, or left out.

A store holds an alert's rules as a document (MongoDB) or as JSON (PostgreSQL's jsonb),
whose shape the store does not enforce. An alert whose rules are not all as roadwatch
writes them is still shown, naming those that are, so that one edited row or document
neither fails nor shortens a page of the history.
"""

import logging
from typing import Any

import msgspec

from roadwatch.domain import RuleRef

log = logging.getLogger(__name__)

_decode_json = msgspec.json.Decoder(tuple[RuleRef, ...]).decode


def rules_in_json(text: str | bytes) -> tuple[RuleRef, ...]:
    try:
        return _decode_json(text)
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            entries = msgspec.json.decode(text)
        except msgspec.DecodeError:
            entries = None
        return readable_rules(entries)


def rules_in(value: object) -> tuple[RuleRef, ...]:
    try:
        return msgspec.convert(value, tuple[RuleRef, ...])
    except msgspec.ValidationError:
        return readable_rules(value)


def readable_rules(value: Any) -> tuple[RuleRef, ...]:
    """The entries of `value` that are rules as roadwatch writes them."""
    entries = value if isinstance(value, list) else []
    readable = []
    for entry in entries:
        try:
            readable.append(msgspec.convert(entry, RuleRef))
        except msgspec.ValidationError:
            continue
    log.warning(
        "an alert names %d rule(s) as roadwatch writes them, of %s", len(readable), _kind(value)
    )
    return tuple(readable)


def _kind(value: object) -> str:
    return f"{len(value)} entries" if isinstance(value, list) else f"a {type(value).__name__}"
