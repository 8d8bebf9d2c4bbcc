"""Where a webhook may be sent: the SSRF guard.

A subscription URL is checked when it is saved (scheme, and a literal address) and again
at every send, on the addresses its name resolves to then: a name that resolved to a
public address yesterday may resolve to 10.0.0.5 or 169.254.169.254 today (DNS
rebinding). The request then goes to the address that was checked (never resolved
again by the HTTP client), with the URL's host name in `Host` and in TLS SNI.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata services; most are link-local already, named here so that an
# allow-local setting for development never opens them.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)


class TargetRefused(ValueError):
    """The URL or the address it resolves to may not receive webhooks."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as given


def parse(url: str, *, allow_http: bool) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("The URL is not valid.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise TargetRefused("Only https URLs receive webhooks.")
    if scheme == "http" and not allow_http:
        raise TargetRefused("Only https URLs receive webhooks (http is allowed in local mode).")
    host = (parts.hostname or "").rstrip(".")
    if not host or any(c.isspace() for c in host):
        raise TargetRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("The URL may not carry credentials.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refused_reason(address: IPAddress, *, allow_local: bool) -> str | None:
    """Why an address may not receive webhooks, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_multicast or address.is_unspecified:
        return "not a unicast address"
    if allow_local:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def check_saved(url: str, *, allow_http: bool, allow_local: bool) -> Target:
    """What can be checked when the URL is saved, without resolving its name."""
    target = parse(url, allow_http=allow_http)
    address = literal_address(target.host)
    if address is not None and (reason := refused_reason(address, allow_local=allow_local)):
        raise TargetRefused(f"Webhooks are not sent to {address}: {reason}.")
    if not allow_local and target.host.lower() in ("localhost", "localhost.localdomain"):
        raise TargetRefused("Webhooks are not sent to localhost.")
    return target


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def resolve(target: Target, *, allow_local: bool, resolver: Resolver) -> IPAddress:
    """The address to send to: every address the name resolves to must be allowed (one
    refused refuses the target, so that a round-robin cannot slip one in)."""
    literal = literal_address(target.host)
    if literal is not None:
        found: list[IPAddress] = [literal]
    else:
        try:
            resolved = await resolver(target.host, target.port)
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
        except (OSError, UnicodeError, ValueError) as exc:
            raise TargetRefused(f"{target.host} does not resolve ({exc})") from exc
    if not found:
        raise TargetRefused(f"{target.host} does not resolve")
    for address in found:
        if reason := refused_reason(address, allow_local=allow_local):
            named = "" if literal is not None else f"{target.host} resolves to "
            raise TargetRefused(f"refused: {named}{address}: {reason}")
    return found[0]
