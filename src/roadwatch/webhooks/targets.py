"""Which URLs a webhook may POST to: never inside the network roadwatch runs in, unless an
administrator's allow-list names the address.

A URL is checked when a subscription is made, and again at every connection, on the
addresses its host resolves to then: a name that resolved outside when it was registered
and inside later (DNS rebinding) is refused at the connection.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from roadwatch.errors import ConfigurationError, Invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
MAX_CHECKED_URLS = 10_000

# Cloud metadata services that sit outside the private ranges Python knows of.
METADATA = (ipaddress.ip_network("fd00:ec2::254/128"), ipaddress.ip_network("100.100.100.200/32"))
# IPv6 ranges that Python counts as global but no webhook has any business in: site-local
# (deprecated, still routed inside some networks), local-use NAT64 (RFC 8215), the newer
# documentation range and SRv6 segment identifiers.
SPECIAL_IPV6 = tuple(
    ipaddress.IPv6Network(network)
    for network in ("fec0::/10", "64:ff9b:1::/48", "3fff::/20", "5f00::/16")
)
# Ranges whose addresses carry an IPv4 address in their last 32 bits, and reach it: the
# IPv4-compatible form (::a.b.c.d) and the well-known NAT64 prefix.
IPV4_IN_LAST_32_BITS = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("64:ff9b::/96"))


class RefusedTarget(Invalid):
    """A webhook URL that is malformed, or that reaches an address roadwatch will not call."""


def parse_networks(listed: str) -> tuple[Network, ...]:
    """The networks of a comma-separated allow-list of addresses and CIDR ranges."""
    try:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in listed.split(",")
            if item.strip()
        )
    except ValueError as error:
        raise ConfigurationError(f"WEBHOOK_ALLOWED_NETWORKS: {error}") from None


def is_internal(address: Address) -> bool:
    """Loopback, private, link-local (where metadata services live), multicast, reserved;
    an IPv6 address that carries an IPv4 address is judged by the one it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_internal(embedded)
        if any(address in network for network in SPECIAL_IPV6):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or any(address in network for network in METADATA)
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in IPV4_IN_LAST_32_BITS) and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class TargetPolicy:
    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self.allowed = tuple(allowed)
        # The URLs that passed check_url, with their host and port: a deliverer sends to
        # the same few URLs thousands of times a second.
        self._checked: dict[str, tuple[str, int]] = {}

    def permits(self, address: Address) -> bool:
        return not is_internal(address) or any(address in network for network in self.allowed)

    def check_address(self, host: str, address: Address) -> None:
        if not self.permits(address):
            raise RefusedTarget(
                f"{host} is {address}, an internal address; webhooks may reach it only if "
                "WEBHOOK_ALLOWED_NETWORKS names it"
            )

    def check_url(self, url: str) -> tuple[str, int]:
        """The host and port of a well-formed http(s) URL; an IP literal host must be permitted.
        Names are checked when they are resolved."""
        checked = self._checked.get(url)
        if checked is not None:
            return checked
        checked = self._check_url(url)
        if len(self._checked) < MAX_CHECKED_URLS:
            self._checked[url] = checked
        return checked

    def _check_url(self, url: str) -> tuple[str, int]:
        if len(url) > MAX_URL_LENGTH:
            raise RefusedTarget(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise RefusedTarget(f"not a valid URL: {error}") from None
        if parts.scheme not in {"http", "https"}:
            raise RefusedTarget("a webhook URL must start with https:// or http://")
        if parts.username is not None or parts.password is not None:
            raise RefusedTarget("a webhook URL may not carry credentials; use the signature")
        if not parts.hostname:
            raise RefusedTarget("a webhook URL must name a host")
        if any(ord(char) < 33 or ord(char) == 127 for char in url):
            raise RefusedTarget("a webhook URL may not hold spaces or control characters")
        host = parts.hostname
        try:
            # As the resolver will encode it: a name that cannot be is no host.
            host.encode("idna")
        except UnicodeError as error:
            raise RefusedTarget(f"the host is not a name DNS can carry: {error}") from None
        literal = _literal(host)
        if literal is not None:
            self.check_address(host, literal)
        return host, port or (443 if parts.scheme == "https" else 80)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_permitted(policy: TargetPolicy, host: str, port: int) -> list[Address]:
    """The addresses `host` resolves to, all of which the policy permits; RefusedTarget if
    it resolves to none, or to any address the policy refuses."""
    literal = _literal(host)
    if literal is not None:
        policy.check_address(host, literal)
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise RefusedTarget(f"{host} does not resolve: {error}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        # One internal address among public ones is enough to be refused: the connection
        # may go to any of them.
        policy.check_address(host, address)
    if not addresses:
        raise RefusedTarget(f"{host} resolves to no address")
    return addresses
