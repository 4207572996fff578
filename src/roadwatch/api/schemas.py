"""What the API reads and writes: per resource, and apart from how the stores keep things."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from roadwatch.domain import Detection, User

Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    Field(description="3 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"),
]
Password = Annotated[
    str, Field(min_length=12, max_length=1024, description="At least 12 characters")
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password


class UserOut(BaseModel):
    id: UUID
    username: str
    is_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserOut":
        return cls(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            created_at=user.created_at,
        )


class SetupOut(BaseModel):
    needs_first_user: bool = Field(description="True until the first user is created")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires")


class DetectionOut(BaseModel):
    id: UUID
    timestamp: datetime
    year: int
    make: str
    model: str
    category: str

    @classmethod
    def of(cls, detection: Detection) -> "DetectionOut":
        return cls(
            id=detection.id,
            timestamp=detection.timestamp,
            year=detection.year,
            make=detection.make,
            model=detection.model,
            category=detection.category,
        )


class DetectionPage(BaseModel):
    items: list[DetectionOut]
    total: int = Field(description="How many detections match the filters, in all")
    skip: int
    limit: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the page after this one; null on the last page"
    )


class ErrorOut(BaseModel):
    detail: str | list[dict[str, object]]


class ReadinessOut(BaseModel):
    ready: bool
    checks: dict[str, str]
