"""Which rules a detection matches: fields, composite categories, years, case, normalisation;
and what an indexer keeps of the watchlists topic."""

import dataclasses
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from roadwatch.settings import Settings
from roadwatch.text import UnsafeText, normalise
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import (
    InvalidRule,
    Rule,
    categories_of,
    rule_from_json,
    rule_to_json,
    seed_rule,
)
from roadwatch.watchlists.topic import RuleLog
from tests.helpers.factories import make_detection
from tests.helpers.records import consumer_record


def rule(name: str = "rule", **fields: object) -> Rule:
    return Rule(id=uuid.uuid4(), name=name, **fields)  # type: ignore[arg-type]


def names(index: RuleIndex, **detection: object) -> list[str]:
    return [ref.name for ref in index.matches(make_detection(**detection))]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("configured", "category", "suspicious"),
    [
        ("SUV", "SUV", True),
        ("SUV", "suv", True),
        ("SUV", "  Suv ", True),
        ("SUV", "Sedan", False),
        ("SUV", "SUV, Pickup", True),
        ("SUV", "Pickup,SUV", True),
        ("SUV", "Sedan, Wagon", False),
        ("SUV", "SUVs", False),
        ("SUV", "Small SUV", False),
        ("suv, Convertible", "Coupe, Convertible", True),
        ("suv, Convertible", "Van/Minivan", False),
        (" , SUV, ", "SUV", True),
    ],
)
def test_the_seed_rule_matches_when_one_of_a_detections_categories_is_configured(
    configured: str, category: str, suspicious: bool
) -> None:
    index = RuleIndex([seed_rule(configured)])
    assert bool(index.matches(make_detection(category=category))) is suspicious


@given(st.lists(st.text(alphabet="abcXYZ /-", min_size=1, max_size=8), min_size=1, max_size=4))
def test_every_listed_category_is_found_whatever_its_case_and_spacing(parts: list[str]) -> None:
    named = [part for part in parts if part.strip()]
    assume(named)
    index = RuleIndex([seed_rule(",".join(f" {part.upper()} " for part in named))])
    value = ", ".join(part.lower() for part in named)
    assert index.matches(make_detection(category=value))
    assert categories_of(value) == {part.strip().casefold() for part in named}


def test_the_configured_categories_are_read_as_detections_are_stored() -> None:
    index = RuleIndex([seed_rule("ＳＵＶ, Pick\u200bup")])
    assert index.matches(make_detection(category="SUV"))
    assert index.matches(make_detection(category="Pickup"))


def test_a_rule_matches_only_when_every_field_it_sets_matches() -> None:
    index = RuleIndex(
        [
            rule("jeeps", make="Jeep"),
            rule("old wranglers", make="jeep", model="WRANGLER", year_to=2010),
        ]
    )
    assert names(index, make="Jeep", model="Wrangler", year=2005) == ["jeeps", "old wranglers"]
    assert names(index, make="Jeep", model="Wrangler", year=2011) == ["jeeps"]
    assert names(index, make="Jeep", model="Cherokee", year=2005) == ["jeeps"]
    assert names(index, make="Ford", model="Wrangler", year=2005) == []


def test_text_is_matched_whole_not_as_a_substring() -> None:
    index = RuleIndex([rule(make="Ford"), rule(model="Civic", name="civic")])
    assert names(index, make="Fords") == []
    assert names(index, make="Ford Motor") == []
    assert names(index, model="Civic Hybrid") == []
    assert names(index, model="civic") == ["civic"]


def test_case_and_unicode_forms_do_not_matter() -> None:
    index = RuleIndex([rule(make="ＴＯＹＯＴＡ", categories=("s\u200buv",))])
    assert index.matches(make_detection(make="toyota", category="SUV"))


@pytest.mark.parametrize(
    ("year_from", "year_to", "year", "matched"),
    [
        (2000, 2010, 2000, True),
        (2000, 2010, 2010, True),
        (2000, 2010, 1999, False),
        (2000, 2010, 2011, False),
        (None, 2010, 1950, True),
        (2000, None, 2030, True),
        (2005, 2005, 2005, True),
    ],
)
def test_year_bounds_are_inclusive_and_either_may_be_open(
    year_from: int | None, year_to: int | None, year: int, matched: bool
) -> None:
    index = RuleIndex([rule(year_from=year_from, year_to=year_to)])
    assert bool(index.matches(make_detection(year=year))) is matched


def test_a_composite_category_matches_a_rule_on_any_part_and_once_only() -> None:
    both = rule("both", categories=("SUV", "Wagon"))
    index = RuleIndex([both, rule("wagons", categories=("Wagon",), make="Volvo")])
    assert names(index, category="SUV, Wagon", make="Volvo") == ["both", "wagons"]
    assert names(index, category="Wagon, Sedan", make="Saab") == ["both"]


def test_a_disabled_rule_matches_nothing() -> None:
    index = RuleIndex([rule(make="Jeep", enabled=False), rule("on", make="Jeep")])
    assert names(index, make="Jeep") == ["on"]
    assert not RuleIndex([rule(make="Jeep", enabled=False)]).matches(make_detection(make="Jeep"))


def test_every_rule_matched_is_named_in_order_of_name() -> None:
    index = RuleIndex(
        [rule("b", make="Jeep"), rule("A", categories=("SUV",)), rule("c", year_from=2000)]
    )
    assert names(index, make="Jeep", category="SUV", year=2011) == ["A", "b", "c"]


def test_a_remembered_vehicle_is_judged_again_by_a_new_index() -> None:
    old = RuleIndex([rule(make="Jeep")])
    detection = make_detection(make="Jeep")
    assert old.matches(detection)
    assert not RuleIndex([]).matches(detection)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "at least one"),
        ({"year_from": 2010, "year_to": 2000}, "after year_to"),
        ({"make": "", "model": ""}, "at least one"),
    ],
)
def test_a_rule_without_fields_or_with_years_reversed_is_invalid(
    fields: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidRule, match=problem):
        rule("r", **fields)


def _normal(text: str) -> str:
    try:
        return normalise(text)
    except UnsafeText:
        return ""


# Text as the API keeps it: normalised, and never empty.
normal_text = st.text(min_size=1, max_size=20).map(_normal).filter(bool)


@given(
    st.builds(
        Rule,
        id=st.uuids(),
        name=normal_text,
        categories=st.lists(normal_text.filter(lambda t: "," not in t), max_size=3).map(tuple),
        make=st.just("Jeep"),
        year_from=st.none() | st.integers(1886, 2000),
    )
)
def test_a_rule_survives_its_trip_through_the_topic(original: Rule) -> None:
    assert rule_from_json(rule_to_json(original)) == original


def _forged(**fields: object) -> bytes:
    return rule_to_json(dataclasses.replace(rule("fine", make="Jeep"), **fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("forged", "problem"),
    [
        (_forged(name="stolen\x00cars"), "name: .*control character U\\+0000"),
        (_forged(name="n" * 101), "name: .*at most 100"),
        (_forged(description="d" * 1001), "description: .*at most 1000"),
        (_forged(categories=("a,b",)), "categories.0: String should match"),
        (_forged(categories=tuple(f"c{i}" for i in range(51))), "categories: List should"),
        (_forged(make="m" * 101), "make: .*at most 100"),
        (_forged(year_from=1700), "year_from: Input should be greater than or equal to 1886"),
        (_forged(created_by="u" * 65), "created_by: .*at most 64"),
        (_forged(name="LONE").replace(b'"LONE"', b'"\\ud800"'), "Invalid JSON"),
    ],
    ids=[
        "nul",
        "long-name",
        "long-description",
        "comma",
        "51-categories",
        "long-make",
        "year",
        "long-author",
        "surrogate",
    ],
)
def test_a_rule_the_api_would_refuse_is_refused_on_read(forged: bytes, problem: str) -> None:
    with pytest.raises(InvalidRule, match=problem):
        rule_from_json(forged)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"[]",
        b'{"id": "x"}',
        b'{"id": "91e38fe4-f063-4d96-889c-01dd5b3c89eb", "name": "n"}',
        pytest.param(
            b'{"id": "91e38fe4-f063-4d96-889c-01dd5b3c89eb", "name": "n", "make": "x", '
            b'"created_at": "2026-01-01T00:00:00+00:00", "categories": ["' + b"c" * 70_000 + b'"]}',
            id="huge",
        ),
    ],
)
def test_a_record_that_holds_no_rule_is_refused_as_one(value: bytes) -> None:
    with pytest.raises(InvalidRule):
        rule_from_json(value)


def test_a_control_character_in_the_setting_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="SUSPICIOUS_VEHICLE holds the control character"):
        Settings(suspicious_vehicle="SUV\x00")


def test_an_indexer_keeps_no_more_rules_than_a_system_may_hold() -> None:
    reading = RuleLog("watchlists", max_rules=3)
    rules = [rule(f"r{i}", make="Jeep") for i in range(5)]

    def put(offset: int, kept: Rule, value: bytes | None = b"") -> None:
        body = rule_to_json(kept) if value == b"" else value
        reading.apply(consumer_record(body, key=str(kept.id).encode(), offset=offset))

    for offset, each in enumerate(rules):
        put(offset, each)
    assert set(reading.rules) == {each.id for each in rules[:3]}
    assert reading.skipped == 2

    renamed = dataclasses.replace(rules[0], name="renamed")
    put(5, renamed)  # a change of a rule kept is no rule more
    put(6, rules[1], value=None)  # a deletion makes room
    put(7, rules[4])
    assert reading.rules == {r.id: r for r in (renamed, rules[2], rules[4])}
    assert reading.skipped == 2


@given(
    st.none() | st.binary(max_size=40) | st.uuids().map(lambda u: str(u).encode()),
    st.none() | st.binary(max_size=300),
)
def test_a_rule_record_of_any_bytes_is_a_rule_or_skipped_and_counted(
    key: bytes | None, value: bytes | None
) -> None:
    reading = RuleLog("watchlists")
    reading.apply(consumer_record(value, key=key, offset=4))

    assert reading.next == {0: 5}
    assert len(reading.rules) + reading.skipped <= 1
    if not reading.skipped:
        # Taken, as a rule or a deletion: only under a key that is a rule's id.
        assert key is not None
        assert uuid.UUID(key.decode())


def test_a_rule_record_without_a_key_is_skipped_as_such(caplog: pytest.LogCaptureFixture) -> None:
    reading = RuleLog("watchlists")
    reading.apply(consumer_record(rule_to_json(rule("keyless", make="Jeep")), key=None))

    assert (reading.rules, reading.skipped) == ({}, 1)
    assert "it has no key" in caplog.text
