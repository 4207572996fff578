"""Whether a process does its work: a step failing this long makes it not ready."""

from roadwatch.errors import RoadwatchError

# A step still failing after this long makes the process not ready.
STUCK_AFTER = 30.0


class NotReady(RoadwatchError):
    """The process is alive but not doing its work; the message says why."""
