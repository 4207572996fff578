"""A watchlist rule: what it matches, who made it, and how it travels as JSON."""

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import orjson
from pydantic import ValidationError

from roadwatch.domain import RuleRef
from roadwatch.errors import Invalid
from roadwatch.text import normalise
from roadwatch.watchlists.rule_fields import RuleRecord

# The seed rule's id is fixed, so every process that starts from SUSPICIOUS_VEHICLE means the
# same rule by it, whichever of them wrote it first.
SEED_ID = uuid.uuid5(uuid.UUID("0d8f5a32-64a1-4d6e-a3d0-9b8d1c0f7e21"), "suspicious-vehicle")
SEED_NAME = "suspicious-vehicle"
# The most rules a system holds: the API refuses more, and an indexer keeps no more.
MAX_RULES = 50_000
# The largest rule the API can write is under 32 KiB of JSON; a larger record is none of its.
MAX_RULE_BYTES = 64 * 1024


class InvalidRule(Invalid):
    """A rule that would match nothing sensible: no field set, or its years the wrong way."""


def fold(text: str) -> str:
    """Text as rules compare it: normalised, then case-folded."""
    return normalise(text).casefold()


def categories_of(value: str) -> frozenset[str]:
    """The categories named in a comma-separated value, folded and trimmed."""
    return frozenset(part.strip() for part in fold(value).split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches a detection when every field it sets matches; unset fields match anything.

    Text fields are kept as the operator wrote them (normalised); matching folds case.
    """

    id: UUID
    name: str
    description: str = ""
    enabled: bool = True
    categories: tuple[str, ...] = ()
    make: str | None = None
    model: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    created_by: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_by: str | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not (self.categories or self.make or self.model) and (
            self.year_from is None and self.year_to is None
        ):
            raise InvalidRule("a rule must set at least one of categories, make, model or years")
        if (
            self.year_from is not None
            and self.year_to is not None
            and self.year_from > self.year_to
        ):
            raise InvalidRule(f"year_from {self.year_from} is after year_to {self.year_to}")

    @property
    def ref(self) -> RuleRef:
        return RuleRef(self.id, self.name)


def seed_rule(suspicious_vehicle: str) -> Rule:
    """The rule a system without rules starts from: SUSPICIOUS_VEHICLE's categories."""
    return Rule(
        id=SEED_ID,
        name=SEED_NAME,
        description="Created at first start from SUSPICIOUS_VEHICLE",
        categories=tuple(sorted(categories_of(suspicious_vehicle))),
    )


def rule_to_json(rule: Rule) -> bytes:
    # default=str: a UUID may be a subclass of its own (asyncpg's), which orjson does not know.
    return orjson.dumps(dataclasses.asdict(rule), default=str)


def rule_from_json(value: bytes) -> Rule:
    """The rule a log record holds; InvalidRule if it holds none, or one the API would refuse."""
    if len(value) > MAX_RULE_BYTES:
        raise InvalidRule(f"not a rule: {len(value):,} bytes, more than any rule takes")
    try:
        fields = RuleRecord.model_validate_json(value).model_dump()
    except ValidationError as error:
        raise InvalidRule(f"not a rule the API would take: {_first(error)}") from None
    fields["categories"] = tuple(fields["categories"])
    return Rule(**fields)


def _first(error: ValidationError) -> str:
    problem = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "the record"
    return f"{where}: {problem['msg']}"[:300]
