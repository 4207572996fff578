"""What the API reads and writes: per resource, and apart from how the stores keep things."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from roadwatch.api.credential_rules import (
    USERNAME_PATTERN,
    normal_username,
    password_shape_problem,
)
from roadwatch.domain import Alert, Detection, User
from roadwatch.stores.detection_store import Dimension, TimelineBucket
from roadwatch.time_buckets import Bucket


def _password(value: str) -> str:
    # Only what costs nothing: zxcvbn's estimate waits until the request is authorised.
    problem = password_shape_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Username = Annotated[
    str,
    BeforeValidator(normal_username),
    StringConstraints(min_length=3, max_length=64, pattern=USERNAME_PATTERN),
    Field(
        description="3 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit; "
        "unique whatever the case"
    ),
]
Password = Annotated[
    str,
    Field(
        min_length=12,
        max_length=1024,
        description="At least 12 characters besides spaces, no control characters, not one of "
        "the 30,000 most common passwords, and not containing the username",
    ),
    AfterValidator(_password),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password

    @model_validator(mode="after")
    def _password_apart_from_username(self) -> "UserCreate":
        problem = password_shape_problem(self.password, username=self.username)
        if problem is not None:
            raise ValueError(problem)
        return self


class UserOut(BaseModel):
    id: UUID
    username: str
    is_admin: bool
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, user: User) -> "UserOut":
        return cls(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            created_at=user.created_at,
            disabled=user.disabled,
        )


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: StrictBool = Field(description="A disabled user cannot log in; their tokens stop")


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_password: Password


class PasswordChange(NewPassword):
    current_password: str = Field(max_length=1024)


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


def detection_json(detection: Detection) -> dict[str, object]:
    """A detection as DetectionOut writes it, for a JsonBody: no model per item."""
    return {
        "id": str(detection.id),
        "timestamp": detection.timestamp,
        "year": detection.year,
        "make": detection.make,
        "model": detection.model,
        "category": detection.category,
    }


class DetectionPage(BaseModel):
    items: list[DetectionOut]
    total: int = Field(
        description="How many detections match the filters, in all; at most 10,000 when "
        "`total_capped` (filters other than one make or one category, and a window on whole "
        "minutes, are counted no further)"
    )
    total_capped: bool = Field(description="True when more than `total` detections match")
    skip: int
    limit: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the page after this one; null on the last page"
    )


class TimelineBucketOut(BaseModel):
    start: datetime = Field(description="Where the bucket begins (UTC)")
    detections: int
    alerts: int
    counts: dict[str, int] = Field(description="Detections by make or category, largest first")


class TimelineOut(BaseModel):
    bucket: Bucket
    by: Dimension
    since: datetime = Field(description="The window's start, as counted (UTC)")
    until: datetime = Field(description="The window's end, as counted (UTC)")
    buckets: list[TimelineBucketOut] = Field(
        description="Every bucket overlapping the window, oldest first, empty ones included"
    )


def timeline_json(
    bucket: Bucket, by: Dimension, since: datetime, until: datetime, buckets: list[TimelineBucket]
) -> dict[str, object]:
    """A timeline as TimelineOut writes it, for a JsonBody."""
    return {
        "bucket": bucket.value,
        "by": by.value,
        "since": since,
        "until": until,
        "buckets": [
            {
                "start": b.start,
                "detections": sum(b.counts.values()),
                "alerts": b.alerts,
                "counts": b.counts,
            }
            for b in buckets
        ],
    }


class RuleRefOut(BaseModel):
    id: UUID
    name: str


class AlertOut(DetectionOut):
    rules: list[RuleRefOut] = Field(description="Every watchlist rule the detection matched")

    @classmethod
    def of_alert(cls, alert: Alert) -> "AlertOut":
        return cls(
            **detection_json(alert.detection),
            rules=[RuleRefOut(id=rule.id, name=rule.name) for rule in alert.rules],
        )


class AlertPage(BaseModel):
    items: list[AlertOut]
    limit: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the page after this one; null on the last page"
    )


class ErrorOut(BaseModel):
    detail: str | list[dict[str, object]]


class ReadinessOut(BaseModel):
    ready: bool
    checks: dict[str, str]
