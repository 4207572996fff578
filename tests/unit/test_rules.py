import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from roadwatch.rules import SuspicionRule, categories_of
from roadwatch.settings import Settings
from tests.factories import make_detection


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
def test_a_detection_is_suspicious_when_one_of_its_categories_is_configured(
    configured: str, category: str, suspicious: bool
) -> None:
    rule = SuspicionRule(configured)
    assert rule(make_detection(category=category)) is suspicious


@given(st.lists(st.text(alphabet="abcXYZ /-", min_size=1, max_size=8), min_size=1, max_size=4))
def test_every_listed_category_is_found_whatever_its_case_and_spacing(parts: list[str]) -> None:
    named = [part for part in parts if part.strip()]
    assume(named)
    rule = SuspicionRule(",".join(f" {part.upper()} " for part in named))
    value = ", ".join(part.lower() for part in named)
    assert rule(make_detection(category=value))
    assert categories_of(value) == {part.strip().casefold() for part in named}


def test_the_configured_categories_are_read_as_detections_are_stored() -> None:
    rule = SuspicionRule("ＳＵＶ, Pick\u200bup")
    assert rule(make_detection(category="SUV"))
    assert rule(make_detection(category="Pickup"))


def test_a_control_character_in_the_setting_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="SUSPICIOUS_VEHICLE holds the control character"):
        Settings(suspicious_vehicle="SUV\x00")
