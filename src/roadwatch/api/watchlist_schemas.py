"""What the watchlist routes read and write."""

import dataclasses
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, model_validator

from roadwatch.watchlists.rule_fields import (
    Categories,
    Description,
    Name,
    RuleFields,
    Value,
    Year,
    sets_a_field,
)
from roadwatch.watchlists.rules import Rule


class RuleCreate(RuleFields):
    name: Name
    description: Description = ""
    enabled: StrictBool = True
    categories: Categories = Field(default_factory=list)
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
        sets_a_field(self)
        return self


class RuleChange(RuleFields):
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
