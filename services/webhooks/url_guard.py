"""Outbound URL policy (webhooks, callbacks): no server-side request forgery.

A URL must be https, on an allowed port (443 and 80 unless PETSTORE_WEBHOOK_ALLOWED_PORTS says
otherwise), and name a host whose every address is globally routable unicast. Refused besides
what ``is_global`` already excludes (which on Python 3.11 lets several through): the IPv4
special-purpose ranges (shared 100.64.0.0/10, benchmarking 198.18.0.0/15, IETF 192.0.0.0/24,
documentation, 6to4 relay, multicast, reserved), and in IPv6 the deprecated site-local
``fec0::/10``, IPv4-compatible ``::a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, local-use NAT64
``64:ff9b:1::/48``, Teredo ``2001::/32``, ULA, link-local, documentation, discard, SRv6 SIDs and
multicast; IPv4 addresses embedded in IPv6 (mapped, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``)
must themselves be public.

The check runs when the URL is registered and again before every delivery (a name may resolve
elsewhere by then: DNS rebinding), and the delivery connects to the address that was checked.
What needs no DNS is decided first (scheme, port, a literal address in any form the resolver
accepts), so a URL refused for those never makes the server look a name up.
Every refusal reads the same to the caller (no port-scan or resolution oracle); the real reason
is logged server-side. ``allow_loopback`` (local development and tests:
PETSTORE_WEBHOOK_ALLOW_LOOPBACK=1) admits http and https URLs, on any port, whose every address
is loopback, nothing else."""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from services.shared.errors import FieldError, InvalidInput

log = logging.getLogger("petstore.webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = frozenset({80, 443})
REFUSED = (
    "is not an allowed delivery target: use an https URL on an allowed port whose host "
    "resolves only to public addresses"
)
"""The one message for every refusal reason."""

NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIXTOFOUR = ipaddress.ip_network("2002::/16")
MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_V4_REFUSED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
]  # fmt: skip
_V6_REFUSED = [
    ipaddress.ip_network(n)
    for n in (
        "::/96",  # unspecified, loopback and IPv4-compatible ::a.b.c.d (deprecated)
        "::ffff:0:0:0/96",  # SIIT ::ffff:0:a.b.c.d
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 among them
        "2001:db8::/32", "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
]  # fmt: skip


class BlockedUrl(Exception):
    """The URL is not allowed as a delivery target. ``str()`` is the reason, for logs only."""


def _target(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedUrl("scheme is not http(s)")
    if parts.username is not None or parts.password is not None:
        raise BlockedUrl("carries credentials")
    if not parts.hostname:
        raise BlockedUrl("names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedUrl("invalid port") from exc
    return parts.scheme, parts.hostname, port


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in SIXTOFOUR:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public(ip: IPAddress) -> bool:
    """Globally routable unicast, and so is any IPv4 address it carries."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return _public(inner)
        refused = _V6_REFUSED
    else:
        refused = _V4_REFUSED
    if not ip.is_global or ip.is_multicast:
        return False
    return not any(ip in net for net in refused)


def _loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _lookup(host: str, port: int, numeric: bool) -> list[str]:
    flags = socket.AI_NUMERICHOST if numeric else 0
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    return [str(info[4][0]) for info in infos]


def _literal(host: str, port: int) -> list[str] | None:
    """The address a literal IP host stands for (every form the resolver takes as one:
    ``10.0.0.1``, ``::1``, ``0x7f.1``, ``2130706433``), without a DNS lookup; None for a name."""
    try:
        return _lookup(host, port, numeric=True)
    except (OSError, UnicodeError, ValueError):
        return None


def resolve(
    url: str, *, allow_loopback: bool = False, ports: frozenset[int] = DEFAULT_PORTS
) -> str:
    """The address to connect to for ``url`` (every address the name has was checked).
    Everything that can be decided without DNS is decided first (scheme, port, a literal
    address), so a refused URL never makes a lookup. Raises BlockedUrl."""
    scheme, host, port = _target(url)
    strict = scheme == "https" and port in ports
    if not allow_loopback and not strict:
        raise BlockedUrl(
            "scheme is not https" if scheme != "https" else f"port {port} is not allowed"
        )
    addresses = _literal(host, port)  # a literal address needs no lookup
    try:
        addresses = addresses if addresses is not None else _lookup(host, port, numeric=False)
    except (OSError, UnicodeError) as exc:
        raise BlockedUrl(f"{host} does not resolve") from exc
    if not addresses:
        raise BlockedUrl(f"{host} does not resolve")
    ips = [_address(a) for a in addresses]
    if allow_loopback and all(_loopback(ip) for ip in ips):
        return addresses[0]
    if scheme != "https":
        raise BlockedUrl("scheme is not https")
    if port not in ports:
        raise BlockedUrl(f"port {port} is not allowed")
    refused = [a for a, ip in zip(addresses, ips, strict=True) if not _public(ip)]
    if refused:
        raise BlockedUrl(f"{host} resolves to non-public {', '.join(refused)}")
    return addresses[0]


def check(
    url: str, field: str, *, allow_loopback: bool = False, ports: frozenset[int] = DEFAULT_PORTS
) -> None:
    """Registration-time check. Raises InvalidInput naming ``field``, with the one message
    whatever the reason (logged here)."""
    try:
        resolve(url, allow_loopback=allow_loopback, ports=ports)
    except BlockedUrl as exc:
        log.info("outbound URL refused", extra={"field": field, "reason": str(exc)})
        raise InvalidInput([FieldError(field, REFUSED, "blocked_url")]) from exc
