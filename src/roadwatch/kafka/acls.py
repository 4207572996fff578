"""The least each process may do in a Kafka cluster that enforces ACLs.

Cameras write detections; the indexer reads detections and the watchlists and writes alerts
(in transactions of its own) and dead letters; the API reads alerts and reads and writes the
watchlists; the deliverer reads alerts and writes its dead letters. Topics are created by an
administrator (`roadwatch topics`), never by a process.
"""

from dataclasses import dataclass
from typing import Literal

from roadwatch.kafka.topics import DELIVER_GROUP, INDEXER_GROUP
from roadwatch.settings import Settings


@dataclass(frozen=True)
class Grant:
    """One ACL: `user` may do `operation` on these topics and consumer groups (literal
    names), and on the transactional ids that begin with `transactional_prefix`. Read and
    Write each imply Describe."""

    user: str
    operation: Literal["Read", "Write"]
    topics: tuple[str, ...]
    groups: tuple[str, ...] = ()
    transactional_prefix: str | None = None


@dataclass(frozen=True)
class KafkaUsers:
    """The Kafka user each process connects as."""

    camera: str = "roadwatch-camera"
    indexer: str = "roadwatch-indexer"
    api: str = "roadwatch-api"
    deliver: str = "roadwatch-deliver"

    def all(self) -> list[str]:
        return [self.camera, self.indexer, self.api, self.deliver]


def least_privilege(
    settings: Settings,
    users: KafkaUsers,
    *,
    indexer_group: str = INDEXER_GROUP,
    deliver_group: str = DELIVER_GROUP,
) -> list[Grant]:
    return [
        Grant(users.camera, "Write", (settings.detections_topic,)),
        Grant(
            users.indexer,
            "Read",
            (settings.detections_topic, settings.watchlists_topic),
            (indexer_group,),
        ),
        Grant(users.indexer, "Write", (settings.alerts_topic, settings.dead_letter_topic)),
        # Its transactions, one a partition of detections (indexer/transactions.py).
        Grant(users.indexer, "Write", (), transactional_prefix=f"{indexer_group}."),
        Grant(users.api, "Read", (settings.alerts_topic, settings.watchlists_topic)),
        Grant(users.api, "Write", (settings.watchlists_topic,)),
        Grant(users.deliver, "Read", (settings.alerts_topic,), (deliver_group,)),
        Grant(users.deliver, "Write", (settings.webhooks_dead_letter_topic,)),
    ]
