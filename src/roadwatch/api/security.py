"""Passwords and tokens."""

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from roadwatch.errors import Unauthenticated

ALGORITHM = "HS256"


class InvalidToken(Unauthenticated):
    """A token that is missing, expired, tampered with or not signed by us."""


class Passwords:
    """Argon2id hashing, off the event loop; unknown users are checked against a dummy hash,
    so that the time a login takes does not tell which usernames exist.

    Each hash takes about 64 MiB and a core for a good part of a second: at most `at_once`
    run together, and further requests wait their turn, so that a flood of logins cannot
    take the process's memory or starve every other request of CPU.
    """

    def __init__(self, *, at_once: int = 2) -> None:
        self._hash = PasswordHash((Argon2Hasher(),))
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))
        self._turns = asyncio.Semaphore(at_once)

    async def hash(self, password: str) -> str:
        async with self._turns:
            return await asyncio.to_thread(self._hash.hash, password)

    async def verify(
        self,
        password: str,
        hashed: str | None,
        *,
        abandoned: Callable[[], Awaitable[bool]] | None = None,
    ) -> bool:
        """Whether the password is the one hashed. False, unchecked, if by its turn the
        request was `abandoned`: a flood's queue must not keep the cores busy after it left."""
        async with self._turns:
            if abandoned is not None and await abandoned():
                return False
            if hashed is None:
                await asyncio.to_thread(self._hash.verify, password, self._dummy)
                return False
            return await asyncio.to_thread(self._hash.verify, password, hashed)


@dataclass(frozen=True)
class IssuedToken:
    value: str
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    user_id: UUID
    # The user's credentials version when the token was issued.
    version: int


class Tokens:
    """HS256 JWTs carrying sub, ver, iat, exp and jti; only HS256 is ever accepted.

    A token whose signature was checked once is remembered, up to `remembered` of them:
    every request carries one, and checking it again cost a tenth of a page's time. Its
    expiry is still checked on every use.
    """

    def __init__(
        self,
        secret: str,
        *,
        lifetime_seconds: int = 3600,
        remembered: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._lifetime = lifetime_seconds
        self._remembered = remembered
        self._verified: dict[str, tuple[TokenClaims, int]] = {}

    def issue(self, user_id: UUID, *, version: int) -> IssuedToken:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "ver": version,
            "iat": now,
            "exp": now + self._lifetime,
            "jti": str(uuid.uuid4()),
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), self._lifetime)

    def verify(self, token: str) -> TokenClaims:
        """Whom the token was issued to, and when; InvalidToken if it is not good."""
        verified = self._verified.get(token)
        if verified is None:
            verified = self._decode(token)
            if len(self._verified) >= self._remembered:
                # The oldest goes first; a dict keeps the order of insertion.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = verified
        claims, expires = verified
        # As PyJWT has it: a token is expired from the second its exp names.
        if expires <= self._clock():
            del self._verified[token]
            raise InvalidToken("Signature has expired")
        return claims

    def _decode(self, token: str) -> tuple[TokenClaims, int]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "ver", "iat", "exp", "jti"]},
            )
            version = claims["ver"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise InvalidToken("the token's version is not a number")
            return TokenClaims(UUID(claims["sub"]), version), int(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(str(error)) from None
