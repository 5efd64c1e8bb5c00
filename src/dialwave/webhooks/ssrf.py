"""The SSRF guard for every URL we call (webhook endpoints, pre-dial hooks).

https only; plain http (and loopback addresses) only with DIALWAVE_WEBHOOK_ALLOW_LOOPBACK=1. A URL is
checked when it is saved and again at send time: the name is resolved, every address must be public
(no private, loopback, link-local, multicast, reserved or cloud-metadata address), and the request goes to
the address that was checked, so a DNS answer that changes in between cannot redirect it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from dialwave.errors import UnsafeUrl

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services that are not all caught by the private/link-local ranges.
METADATA = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "168.63.129.16", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
}


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeUrl(f"host '{host}' does not resolve ({exc})") from exc
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as written (the Host header and the TLS server name)
    port: int
    address: str  # the checked address the request connects to
    path: str  # path and query


def literal(host: str) -> IP | None:
    """The address a host names directly, including the forms libc accepts (2130706433, 0x7f.1, 127.1)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: its last 32 bits are an IPv4 address
COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible addresses (::a.b.c.d)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo server and client, NAT64,
    IPv4-compatible): a tunnel or translator would deliver the request to them."""
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64 or (address in COMPATIBLE and int(address) > 1):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def refusal(address: IP, allow_loopback: bool) -> str | None:
    """Why `address` may not be called, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in embedded_ipv4(address):
            why = refusal(inner, allow_loopback)
            if why is not None:
                return f"{why} (carried inside the IPv6 address)" if address.ipv4_mapped is None else why
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "not a public address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global:
        return "not a public address"
    return None


def parse(url: str, allow_loopback: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a URL we may call, before resolution."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"'{url}' is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeUrl("must be an https:// URL")
    if scheme == "http" and not allow_loopback:
        raise UnsafeUrl(
            "must be https:// (plain http is allowed to loopback only with DIALWAVE_WEBHOOK_ALLOW_LOOPBACK=1)"
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _check(host: str, addresses: list[IP], scheme: str, allow_loopback: bool) -> None:
    for address in addresses:
        why = refusal(address, allow_loopback)
        if why is not None:
            shown = "is" if str(address) == host else f"resolves to {address}, which is"
            raise UnsafeUrl(f"host '{host}' {shown} {why}")
        if scheme == "http" and not address.is_loopback:
            raise UnsafeUrl("must be https:// (plain http is allowed to loopback addresses only)")


async def check_url(url: str, resolver: Resolver, allow_loopback: bool, *, must_resolve: bool) -> Target | None:
    """Refuse an unsafe URL (UnsafeUrl). At save time (`must_resolve=False`) a name that does not resolve
    yet is accepted (it is checked again at every send); at send time it returns the Target to connect to."""
    scheme, host, port, path = parse(url, allow_loopback)
    direct = literal(host)
    if direct is not None:
        addresses: list[IP] = [direct]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolver.resolve(host, port)]
        except UnsafeUrl:
            if must_resolve:
                raise
            return None
        if not addresses:
            raise UnsafeUrl(f"host '{host}' resolves to no address")
    _check(host, addresses, scheme, allow_loopback)
    return Target(url, scheme, host, port, str(addresses[0]), path)
