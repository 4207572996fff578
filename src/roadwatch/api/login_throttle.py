"""The brake on guessing passwords, built so that nobody can turn it against someone else.

Every attempt is counted before its password is checked, in one atomic step per limit
(`limits`' moving windows), so attempts sent in parallel are counted like attempts sent in
turn. In the order checked:

- everyone together, looked at but not yet counted: once the attempts the process took in
  this minute reach the cap, nothing more is counted anywhere, which bounds the memory the
  counters hold;
- per network (a /24 of IPv4, a /64 of IPv6) and then per address: one network, or one
  address, cannot spray guesses across many accounts. An attempt refused here is not
  counted against everyone's cap, so a flood from one network never spends what users
  elsewhere need;
- per account from one address: five guesses, then that address waits for that account;
  a successful login clears it;
- per account from addresses it has never logged in from: a few a minute, then fewer an
  hour. A guesser spread over many addresses slows the account down, but cannot lock its
  owner out from an address where the owner has logged in before;
- everyone together, counted: only attempts that every limit above let through.

The counters live in the storage that `LOGIN_THROTTLE_STORAGE` names: in this process by
default, or in Redis or Memcached (a `limits` storage URI) to share them across replicas.
Workers of one `roadwatch api --workers N` that keep their counters in-process each take an
Nth of every limit (`ThrottleRules.shared_by`).
"""

import hashlib
import ipaddress
import math
import re
import time
from dataclasses import astuple, dataclass

from limits import RateLimitItem, parse, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from roadwatch.api.credential_rules import username_key
from roadwatch.errors import ConfigurationError, Throttled

KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600


class TooManyAttempts(Throttled):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"too many login attempts; try again in {self.retry_after} s"


@dataclass(frozen=True)
class ThrottleRules:
    everyone: str = "600/minute"
    per_network: str = "120/minute"
    per_address: str = "30/minute"
    per_account_per_address: str = "5/5minutes"
    per_account_from_new_addresses: str = "10/minute;60/hour"

    def shared_by(self, processes: int) -> "ThrottleRules":
        """Each limit divided among `processes` that count apart (workers with in-process
        counters), so that together they admit no more than one would: a guesser whose
        connections land on every worker gets the limit once, not once per worker."""
        return ThrottleRules(*(_divided(limits, processes) for limits in astuple(self)))


class LoginThrottle:
    def __init__(self, storage: Storage, rules: ThrottleRules = ThrottleRules()) -> None:
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._everyone = parse(rules.everyone)
        self._per_network = parse(rules.per_network)
        self._per_address = parse(rules.per_address)
        self._per_account_per_address = parse(rules.per_account_per_address)
        self._per_account = parse_many(rules.per_account_from_new_addresses)

    @classmethod
    def from_uri(
        cls, uri: str, rules: ThrottleRules = ThrottleRules(), *, processes: int = 1
    ) -> "LoginThrottle":
        """Counters in the storage `uri` names, for one of `processes` serving the API."""
        storage = storage_from_string(uri)
        if not isinstance(storage, Storage):
            raise ConfigurationError(
                f"LOGIN_THROTTLE_STORAGE must name an async storage (async+…://), got {uri!r}"
            )
        if isinstance(storage, MemoryStorage):
            rules = rules.shared_by(processes)
        return cls(storage, rules)

    async def admit(self, username: str, address: str) -> None:
        """Count an attempt to log in; TooManyAttempts if it is one too many."""
        account = _account(username)
        if not await self._limiter.test(self._everyone, "everyone"):
            await self._refuse(self._everyone, "everyone")
        await self._hit(self._per_network, "network", network_of(address))
        await self._hit(self._per_address, "address", address)
        await self._hit(self._per_account_per_address, "account-address", account, address)
        if not await self._storage.get(_known(account, address)):
            for limit in self._per_account:
                await self._hit(limit, "account", account)
        await self._hit(self._everyone, "everyone")

    async def succeeded(self, username: str, address: str) -> None:
        """The owner logged in from this address: it need not wait for their guessers."""
        account = _account(username)
        await self._limiter.clear(
            self._per_account_per_address, "account-address", account, address
        )
        await self._storage.incr(_known(account, address), KNOWN_ADDRESS_SECONDS)

    async def _hit(self, limit: RateLimitItem, *identifiers: str) -> None:
        if not await self._limiter.hit(limit, *identifiers):
            await self._refuse(limit, *identifiers)

    async def _refuse(self, limit: RateLimitItem, *identifiers: str) -> None:
        stats = await self._limiter.get_window_stats(limit, *identifiers)
        raise TooManyAttempts(max(1, math.ceil(stats.reset_time - time.time())))


def network_of(address: str) -> str:
    """The network an address is counted with: its /24 (IPv4) or /64 (IPv6), the most
    one holder usually has; an address that is not an IP address is its own."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _divided(limits: str, parts: int) -> str:
    """`10/minute;60/hour` in 2 parts: `5/minute;30/hour`; never below one attempt."""
    return re.sub(r"(^|[;,])\s*(\d+)", lambda m: f"{m[1]}{max(1, int(m[2]) // parts)}", limits)


def _account(username: str) -> str:
    # A fixed-size key, however long the name someone tries.
    return hashlib.sha256(username_key(username).encode()).hexdigest()[:32]


def _known(account: str, address: str) -> str:
    return f"roadwatch/known/{account}/{address}"
