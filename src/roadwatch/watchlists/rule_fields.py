"""What a rule may hold, field by field: the API checks a rule it is given against these, and
every reader of the watchlists topic checks each record against them again, so that a rule
written to the topic by anyone else is held to the same limits before it reaches matching."""

from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AwareDatetime,
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
from roadwatch.text import normal_text

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
# A user's name, as the API records who made or changed a rule.
Author = Annotated[
    str, BeforeValidator(normal_text), StringConstraints(min_length=1, max_length=64)
]


class RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _years_in_order(self) -> Any:
        year_from, year_to = getattr(self, "year_from", None), getattr(self, "year_to", None)
        if year_from is not None and year_to is not None and year_from > year_to:
            raise ValueError(f"year_from {year_from} is after year_to {year_to}")
        return self


def sets_a_field(fields: "RuleRecord | Any") -> None:
    if not (fields.categories or fields.make or fields.model) and (
        fields.year_from is None and fields.year_to is None
    ):
        raise ValueError("a rule must set at least one of categories, make, model or years")


class RuleRecord(RuleFields):
    """A rule as a record of the watchlists topic carries it."""

    id: UUID
    name: Name
    description: Description
    enabled: StrictBool
    categories: Categories
    make: Value | None
    model: Value | None
    year_from: Year | None
    year_to: Year | None
    created_by: Author | None
    created_at: AwareDatetime
    updated_by: Author | None
    updated_at: AwareDatetime | None

    @model_validator(mode="after")
    def _sets_a_field(self) -> Self:
        sets_a_field(self)
        return self
