import logging
import secrets

import pytest

from roadwatch.bootstrap.api import api_app, token_secret
from roadwatch.errors import ConfigurationError
from roadwatch.settings import Settings


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "too short",
        "a" * 32,
        "ab" * 64,
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor",
    ],
)
def test_production_refuses_to_start_without_a_strong_secret(secret: str | None) -> None:
    settings = Settings(environment="production", jwt_secret=secret)
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        api_app(settings)


# Named, not shown: the ids of a parametrised test must be the same in every run (xdist).
@pytest.mark.parametrize(
    "secret", [secrets.token_urlsafe(32), secrets.token_hex(32)], ids=["urlsafe", "hex"]
)
def test_production_takes_a_random_secret_of_32_bytes(secret: str) -> None:
    assert token_secret(Settings(environment="production", jwt_secret=secret)) == secret


def test_development_generates_a_secret_and_says_so_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        first = token_secret(Settings(environment="development"))
        second = token_secret(Settings(environment="development"))
    assert first != second
    assert len(first) >= 32
    assert "DEVELOPMENT MODE" in caplog.text
