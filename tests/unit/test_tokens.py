import time
import uuid

import pytest

from roadwatch.api.security import InvalidToken, Tokens

SECRET = "a signing key long enough for HS256 and then some"


def test_a_remembered_token_is_refused_from_the_second_it_expires() -> None:
    skew = [0.0]
    tokens = Tokens(SECRET, lifetime_seconds=60, clock=lambda: time.time() + skew[0])
    user = uuid.uuid4()
    token = tokens.issue(user, version=3).value
    assert tokens.verify(token).user_id == user

    skew[0] = 61
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)


def test_a_token_that_differs_from_a_remembered_one_by_one_character_is_checked_afresh() -> None:
    tokens = Tokens(SECRET)
    token = tokens.issue(uuid.uuid4(), version=1).value
    tokens.verify(token)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(InvalidToken):
        tokens.verify(tampered)


def test_no_more_tokens_are_remembered_than_allowed_and_forgotten_ones_still_verify() -> None:
    tokens = Tokens(SECRET, remembered=3)
    issued = [tokens.issue(uuid.uuid4(), version=1) for _ in range(10)]
    for token in issued:
        tokens.verify(token.value)
    assert len(tokens._verified) == 3  # the bound is the point
    assert tokens.verify(issued[0].value).version == 1
