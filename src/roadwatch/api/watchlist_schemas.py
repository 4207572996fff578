"""What the watchlist routes read and write."""

import dataclasses
import uuid
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from roadwatch.parsing import MIN_YEAR
from roadwatch.text import UnsafeText, normalise
from roadwatch.watchlists.rules import Rule


def normal_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return normalise(value)
    except UnsafeText as unsafe:
        raise ValueError(str(unsafe)) from None


Name = Annotated[str, BeforeValidator(normal_text), StringConstraints(min_length=1, max_length=100)]
Description = Annotated[str, BeforeValidator(normal_text), StringConstraints(max_length=1000)]
Value = Annotated[
    str, BeforeValidator(normal_text), StringConstraints(min_length=1, max_length=100)
]
# A detection's composite category is split at commas; a rule names its categories one by one.
Category = Annotated[
    str,
    BeforeValidator(normal_text),
    StringConstraints(min_length=1, max_length=100, pattern=r"^[^,]+$"),
]
Year = Annotated[StrictInt, Field(ge=MIN_YEAR, le=2200)]
Categories = Annotated[
    list[Category],
    Field(max_length=50, description="Any of these; a composite category matches on any part"),
]


class _RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _years_in_order(self) -> Any:
        year_from, year_to = getattr(self, "year_from", None), getattr(self, "year_to", None)
        if year_from is not None and year_to is not None and year_from > year_to:
            raise ValueError(f"year_from {year_from} is after year_to {year_to}")
        return self


class RuleCreate(_RuleFields):
    name: Name
    description: Description = ""
    enabled: StrictBool = True
    categories: Categories = []
    make: Value | None = None
    model: Value | None = None
    year_from: Year | None = None
    year_to: Year | None = None

    def rule(self, *, created_by: str) -> Rule:
        fields = self.model_dump()
        fields["categories"] = tuple(fields["categories"])
        return Rule(id=uuid.uuid4(), created_by=created_by, **fields)

    @model_validator(mode="after")
    def _sets_a_field(self) -> "RuleCreate":
        if not (self.categories or self.make or self.model) and (
            self.year_from is None and self.year_to is None
        ):
            raise ValueError("a rule must set at least one of categories, make, model or years")
        return self


class RuleChange(_RuleFields):
    """Only the fields given change; null clears an optional field."""

    name: Name | None = None
    description: Description | None = None
    enabled: StrictBool | None = None
    categories: Categories | None = None
    make: Value | None = None
    model: Value | None = None
    year_from: Year | None = None
    year_to: Year | None = None

    @model_validator(mode="after")
    def _required_fields_not_cleared(self) -> "RuleChange":
        for required in ("name", "description", "enabled", "categories"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        if "categories" in given:
            given["categories"] = tuple(given["categories"])
        return given


class RuleOut(BaseModel):
    id: UUID
    name: str
    description: str
    enabled: bool
    categories: list[str]
    make: str | None
    model: str | None
    year_from: int | None
    year_to: int | None
    created_by: str | None = Field(description="null for the seed rule")
    created_at: datetime
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, rule: Rule) -> "RuleOut":
        return cls(**dataclasses.asdict(rule))


class RulePage(BaseModel):
    items: list[RuleOut]
    total: int
    skip: int
    limit: int


class RuleChangeOut(BaseModel):
    rule_id: UUID
    change: str = Field(description="created, updated, deleted, or seeded (at first start)")
    changed_by: str | None = Field(description="null for the seed rule")
    changed_at: datetime
    rule: dict[str, Any] | None = Field(description="The rule as it stood after; null once deleted")
