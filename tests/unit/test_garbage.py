import gc
from collections.abc import Iterator

import pytest

from roadwatch.runtime import garbage


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_a_settled_process_collects_the_young_rarely_and_leaves_out_what_it_started_with() -> None:
    held: list[list[int]] = [[] for _ in range(100)]

    garbage.settle()

    assert gc.get_threshold()[0] == garbage.YOUNG_COLLECTION_EVERY
    assert gc.get_freeze_count() >= len(held)
