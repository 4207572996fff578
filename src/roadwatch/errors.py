class RoadwatchError(Exception):
    """The root of every error roadwatch raises on purpose."""


class ConfigurationError(RoadwatchError):
    """A setting holds a value roadwatch cannot work with."""


# The kinds of refusal a client can meet. Each error raised on purpose is one of them, and
# the API answers each kind with its own status (api/errors.py), whatever module raised it.


class Invalid(RoadwatchError):
    """What was asked is not well formed, or breaks a rule: 422."""


class NotFound(RoadwatchError):
    """What was asked for does not exist: 404."""


class Conflict(RoadwatchError):
    """What was asked cannot be done in the state things are in: 409."""


class Busy(RoadwatchError):
    """A server roadwatch depends on did not answer in time; try again shortly: 503.

    Its message is what a client is told. What the server said, which may name its address
    or its internals, is the `cause`: in the message logged, never in a reply, and cut to
    MAX_CAUSE characters, since another server chose its length."""

    MAX_CAUSE = 500

    def __init__(self, message: str, *, cause: object = None) -> None:
        super().__init__(message)
        self.public = message
        self.cause = None if cause is None else str(cause)[: self.MAX_CAUSE]

    def __str__(self) -> str:
        return self.public if self.cause is None else f"{self.public}: {self.cause}"


class Throttled(RoadwatchError):
    """Too many at once; try again after `retry_after` seconds: 429."""

    retry_after: int


class Unauthenticated(RoadwatchError):
    """Who is asking is not known: 401."""


class Forbidden(RoadwatchError):
    """Who is asking may not do this: 403."""
