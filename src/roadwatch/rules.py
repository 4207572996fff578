"""Is this detection suspicious?"""

import functools

from roadwatch.domain import Detection
from roadwatch.text import normalise


@functools.lru_cache(maxsize=4096)
def categories_of(value: str) -> frozenset[str]:
    """The categories named in a comma-separated value, case-folded and trimmed."""
    return frozenset(part.strip().casefold() for part in value.split(",") if part.strip())


class SuspicionRule:
    """Suspicious: any of a detection's categories is one of the configured ones."""

    def __init__(self, suspicious: str) -> None:
        # Spelled as detections are, once normalised.
        self.categories = categories_of(normalise(suspicious))

    def __call__(self, detection: Detection) -> bool:
        return not self.categories.isdisjoint(categories_of(detection.category))
