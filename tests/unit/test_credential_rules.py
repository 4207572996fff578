import pytest
from pydantic import ValidationError

from roadwatch.api.credential_rules import could_be_a_username, password_problem, username_key
from roadwatch.api.schemas import UserCreate


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1234", "most common"),
        ("Password1234", "most common"),
        ("qwerty123456", "most common"),
        (" " * 12, "besides spaces"),
        ("a b c d e f g h i j k", "besides spaces"),
        ("abababababababab", "different characters"),
        ("a long\x00enough password", "control"),
        ("a long\u200benough password", "invisible"),
        ("a long\nenough password", "control"),
    ],
)
def test_a_weak_or_unsafe_password_is_refused_saying_why(password: str, why: str) -> None:
    problem = password_problem(password)
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize(
    "password",
    [
        "Password123!",
        "123456789012",
        "qwertyuiopasdfgh",
        "iloveyou1234",
        "Passw0rd2024",
        "trustno1trustno1",
        "letmeinletmein",
        # Guessed in 10^9.5 tries, but in 10^5.9 knowing the product's name.
        "roadwatch2026",
    ],
)
def test_a_password_zxcvbn_guesses_in_under_10_to_the_8_is_refused_saying_why(
    password: str,
) -> None:
    problem = password_problem(password, username="someone")
    assert problem is not None
    assert "could be guessed in about 10^" in problem


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tr0ub4dor&3-plus-more", "ünïcödé pässwörd"]
)
def test_a_long_uncommon_password_is_accepted(password: str) -> None:
    assert password_problem(password) is None


def test_a_password_may_not_contain_the_username() -> None:
    assert password_problem("operator-secret-key", username="Operator") is not None
    with pytest.raises(ValidationError, match="username"):
        UserCreate(username="operator", password="my operator passphrase")


@pytest.mark.parametrize("spelling", ["Admin", "ADMIN", "ａｄｍｉｎ", " admin "])
def test_usernames_are_one_whatever_their_case_or_width(spelling: str) -> None:
    assert username_key(spelling) == "admin"


def test_a_full_width_username_is_stored_in_its_normal_form() -> None:
    assert UserCreate(username="ｏｐｅｒａｔｏｒ", password="a long uncommon phrase").username == (
        "operator"
    )


@pytest.mark.parametrize(
    ("name", "possible"),
    [
        ("admin", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("x" * 1_000_000, False),
        ("nul\x00", False),
    ],
)
def test_only_a_name_a_user_could_have_is_looked_up(name: str, possible: bool) -> None:
    assert could_be_a_username(name) is possible


def test_a_request_body_is_held_only_to_the_checks_that_cost_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from roadwatch.api import credential_rules
    from roadwatch.api.schemas import UserCreate

    def costly(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("zxcvbn ran while a body was read")

    monkeypatch.setattr(credential_rules, "zxcvbn", costly)
    assert UserCreate(username="ann", password="Password123!").password == "Password123!"
    with pytest.raises(AssertionError, match="zxcvbn ran"):
        credential_rules.password_problem("Password123!", username="ann")
