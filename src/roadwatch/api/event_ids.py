"""What an /alerts event's id says: the feed's position after the event, `partition:offset`
for every partition, which a client hands back as Last-Event-ID to resume; and what a gap
event tells a client that resumed from further back than the feed's window reaches."""

import orjson

from roadwatch.api.recent_alerts import Gap, Position
from roadwatch.errors import Invalid


class InvalidEventId(Invalid):
    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return f"Last-Event-ID {self.value[:80]!r} is not an event id this API issued"


def encode_position(position: Position) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(position.items()))


def decode_position(value: str) -> Position:
    try:
        pairs = (item.split(":") for item in value.split(","))
        position = {int(partition): int(offset) for partition, offset in pairs}
    except ValueError:
        raise InvalidEventId(value) from None
    if not position or any(p < 0 or o < 0 for p, o in position.items()):
        raise InvalidEventId(value)
    return position


def gap_data(gap: Gap) -> str:
    return orjson.dumps(
        {
            "detail": "alerts were missed that this server no longer holds to resume from: "
            "read them from /alerts/history",
            "partition": gap.partition,
            "missed_from_offset": gap.missed_from,
            "resumed_at_offset": gap.resumed_at,
        }
    ).decode()
