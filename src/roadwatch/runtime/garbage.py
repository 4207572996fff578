"""The garbage collector set for a process that streams: many objects, short-lived."""

import gc

# A batch's objects die by reference counting; the collector is only for cycles. At
# Python's default, a collection of the young every 700 allocations, it went through each
# batch in flight again and again, and the oldest generation (70 ms a time) every few
# seconds: a third of the indexer's CPU with 10,000 rules. At 50,000, 2%.
YOUNG_COLLECTION_EVERY = 50_000


def settle() -> None:
    """Once started: what the process holds by now (modules, settings) is left out of every
    collection, and the young are collected every YOUNG_COLLECTION_EVERY allocations."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
