"""Which URLs the gateway may call: http(s) only, and no private, loopback or link-local address.

A URL is checked when a subscription is created and again before every delivery. A host name is
checked where it is resolved: the aiohttp connector of every webhook request resolves through
`GuardedResolver`, which refuses a name if any of its addresses is not allowed, so the address
connected to is the address checked (no DNS-rebinding window). aiohttp does not resolve an IP
literal, so `check_url` checks literals itself. `webhooks.allow_private_targets` lifts the address
rule (development, the tests and the demo run consumers on 127.0.0.1); the scheme rule stays.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

MAX_URL_LENGTH = 2048


class EgressRefused(Exception):
    """The URL or the address it names is not one the gateway calls."""


def address_allowed(host: str, allow_private: bool) -> bool:
    """Whether an IP address may be connected to: public unicast, or anything but multicast/unspecified
    when private targets are allowed."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or (ip.is_global and not ip.is_reserved)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def check_url(raw: str, allow_private: bool) -> URL:
    """The parsed URL, or EgressRefused saying why the gateway will not call it."""
    if len(raw) > MAX_URL_LENGTH:
        raise EgressRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        url = URL(raw)
        port = url.port
    except (ValueError, TypeError):
        raise EgressRefused("The URL cannot be parsed.") from None
    if url.scheme not in ("http", "https") or not url.host or not url.is_absolute():
        raise EgressRefused("The URL must be an absolute http:// or https:// URL with a host.")
    if port is not None and not 0 < port < 65536:
        raise EgressRefused("The URL's port is out of range.")
    literal = _literal(url.host)
    if literal is not None and not address_allowed(literal, allow_private):
        raise EgressRefused(f"The address {literal} is private, loopback, link-local or reserved.")
    if not allow_private and url.host.lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        raise EgressRefused("The URL names this machine (localhost).")
    return url


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing names that resolve to an address that is not allowed."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        refused = [r["host"] for r in results if not address_allowed(r["host"], self.allow_private)]
        if refused:
            raise OSError(f"{host} resolves to {refused[0]}, a private, loopback, link-local or reserved address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(allow_private: bool, timeout_s: float, limit: int = 100) -> aiohttp.ClientSession:
    """A client session for calling consumers: the guarded resolver, no proxies from the environment,
    no cookies kept between consumers."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private), limit=limit, limit_per_host=limit)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                 cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                 headers={"User-Agent": "contacts-gateway-webhooks/1"})
