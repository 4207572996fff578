"""How large a send to a topic may be, learnt from the topic's refusals."""

import logging

log = logging.getLogger(__name__)


class SizeLimit:
    """`largest` bytes, until a topic refuses a send as too large (its max.message.bytes, or
    the broker's message.max.bytes, is lower); then a quarter of that, down to `smallest`.
    `one` and `many` name what is sent, for the log: "a dead letter", "letters"."""

    def __init__(self, one: str, many: str, *, largest: int, smallest: int) -> None:
        self._one, self._many = one, many
        self.limit = largest
        self._smallest = smallest

    def refused(self, topic: str) -> None:
        smaller = max(self.limit // 4, self._smallest)
        if smaller < self.limit:
            log.warning(
                "%s refused %s of up to %d bytes as too large (its max.message.bytes, or "
                "the broker's message.max.bytes, is lower): sending %s of up to %d bytes from "
                "now on",
                topic,
                self._one,
                self.limit,
                self._many,
                smaller,
            )
            self.limit = smaller
