"""How many detections a store holds, as the tests wait on it, and what they hold."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from roadwatch.detection_ids import derived_id
from roadwatch.domain import Detection
from roadwatch.stores.detection_store import DetectionStore, Position

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def counted(store: DetectionStore) -> int:
    """The detections stored, from the store's counts per make. A batch updates them with
    its inserts or after them, so they are never ahead of what is stored; and they are
    cheap to read, where counting the detections is not (FerretDB scans them: about 5 s at
    50,000, which a test asking four times a second turns into a load of its own)."""
    return sum((await store.count_by_make()).values())


async def stored_at_least(store: DetectionStore, count: int) -> bool:
    return await counted(store) >= count


def derived_from_record(detection: Detection) -> bool:
    """Whether a stored detection's id is the one derived from its record's place and time."""
    milliseconds = (detection.timestamp - EPOCH) // timedelta(milliseconds=1)
    return detection.id == derived_id(detection.source, milliseconds)


async def categories_held(store: DetectionStore) -> dict[str, int]:
    """The detections held per category, as a walk through every page finds them."""
    held: Counter[str] = Counter()
    after = None
    while page := await store.list(limit=1000, after=after):
        held.update(detection.category for detection in page)
        after = Position(page[-1].timestamp, page[-1].id)
    return dict(held)
