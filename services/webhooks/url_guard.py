"""Outbound URL policy (webhooks, callbacks): no server-side request forgery.

A URL must be https and name a host whose every address is globally routable: loopback,
private, link-local (cloud metadata at 169.254.169.254), shared, reserved and multicast ranges
are refused, including IPv4 addresses embedded in IPv6 (mapped, 6to4, Teredo, NAT64). The check
runs when the URL is registered and again before every delivery, and the delivery connects to
the address that was checked (no DNS rebinding). ``allow_loopback`` (local development and tests:
PETSTORE_WEBHOOK_ALLOW_LOOPBACK=1) admits http and https URLs whose every address is loopback,
nothing else."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from services.shared.errors import FieldError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedUrl(Exception):
    """The URL is not allowed as a delivery target."""


def _target(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedUrl("must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise BlockedUrl("must not carry credentials")
    if not parts.hostname:
        raise BlockedUrl("must name a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedUrl("has an invalid port") from exc
    return parts.scheme, parts.hostname, port


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address it carries."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.extend(ip.teredo)
        if ip in NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _public(ip: IPAddress) -> bool:
    return all(a.is_global and not a.is_multicast for a in _embedded(ip))


def _loopback(ip: IPAddress) -> bool:
    return any(a.is_loopback for a in _embedded(ip))


def resolve(url: str, *, allow_loopback: bool = False) -> str:
    """The address to connect to for ``url``. Raises BlockedUrl."""
    scheme, host, port = _target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BlockedUrl("host does not resolve") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise BlockedUrl("host does not resolve")
    ips = [_address(a) for a in addresses]
    if allow_loopback and all(_loopback(ip) for ip in ips):
        return addresses[0]
    if scheme != "https":
        raise BlockedUrl("must be an https URL")
    if not all(_public(ip) for ip in ips):
        raise BlockedUrl("must not point at a private, loopback, link-local or metadata address")
    return addresses[0]


def check(url: str, field: str, *, allow_loopback: bool = False) -> None:
    """Registration-time check. Raises InvalidInput naming ``field``."""
    try:
        resolve(url, allow_loopback=allow_loopback)
    except BlockedUrl as exc:
        raise InvalidInput([FieldError(field, str(exc), "blocked_url")]) from exc
