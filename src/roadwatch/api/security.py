"""Passwords, tokens, and the brake on guessing them."""

import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from uuid import UUID

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from roadwatch.errors import RoadwatchError

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


class InvalidToken(RoadwatchError):
    """A token that is missing, expired, tampered with or not signed by us."""


class Passwords:
    """Argon2id hashing; unknown users are checked against a dummy hash, so that the time a
    login takes does not tell which usernames exist."""

    def __init__(self) -> None:
        self._hash = PasswordHash((Argon2Hasher(),))
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    def verify(self, password: str, hashed: str | None) -> bool:
        if hashed is None:
            self._hash.verify(password, self._dummy)
            return False
        return self._hash.verify(password, hashed)


@dataclass(frozen=True)
class IssuedToken:
    value: str
    expires_in: int


class Tokens:
    """HS256 JWTs carrying sub, iat, exp and jti; only HS256 is ever accepted."""

    def __init__(self, secret: str, *, lifetime_seconds: int = 3600) -> None:
        self._secret = secret
        self._lifetime = lifetime_seconds

    def issue(self, user_id: UUID) -> IssuedToken:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "iat": now,
            "exp": now + self._lifetime,
            "jti": str(uuid.uuid4()),
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), self._lifetime)

    def verify(self, token: str) -> UUID:
        """The user id the token was issued to; InvalidToken if it is not good."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "iat", "exp", "jti"]},
            )
            return UUID(claims["sub"])
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(str(error)) from None


class LoginThrottle:
    """Counts failed logins per key (a username, an address) over a sliding window."""

    def __init__(self, *, max_failures: int = 5, window_seconds: float = 300.0) -> None:
        self._max = max_failures
        self._window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> int:
        """Seconds until a login for this key may be tried again; 0 if it may be now."""
        now = time.monotonic()
        failures = self._recent(key, now)
        if len(failures) < self._max:
            return 0
        return int(failures[0] + self._window - now) + 1

    def failed(self, key: str) -> None:
        self._failures.setdefault(key, deque()).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            # Forget quiet keys, so that guessing many usernames does not grow memory for ever.
            self._failures.pop(key, None)
        return failures
