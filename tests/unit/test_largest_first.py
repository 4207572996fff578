from hypothesis import given
from hypothesis import strategies as st

from roadwatch.stores.detection_store import largest_first

makes = st.dictionaries(st.text(max_size=12), st.integers(min_value=0, max_value=50), max_size=80)


@given(makes)
def test_counts_come_largest_first_and_ties_by_make(counts: dict[str, int]) -> None:
    ordered = largest_first(counts)
    assert ordered == counts
    assert list(ordered.items()) == sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def test_a_tie_is_ordered_by_make_whatever_the_order_given() -> None:
    assert list(largest_first({"Ford": 3, "Audi": 3, "Kia": 9})) == ["Kia", "Audi", "Ford"]
