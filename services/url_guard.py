"""Outbound URL policy (webhooks, callbacks): no server-side request forgery.

A URL may only name a host whose every address is globally routable: loopback, private,
link-local (cloud metadata at 169.254.169.254), shared, reserved and multicast ranges are refused,
IPv4-mapped IPv6 included. The check runs when the URL is registered and again before every
delivery, and the delivery connects to the address that was checked (no DNS rebinding).
``allow_private`` (tests, local development) lifts the address rule, never the others."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from services.errors import FieldError, InvalidInput


class BlockedUrl(Exception):
    """The URL is not allowed as a delivery target."""


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedUrl("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise BlockedUrl("must not carry credentials")
    if not parts.hostname:
        raise BlockedUrl("must name a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedUrl("has an invalid port") from exc
    return parts.hostname, port


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(url: str, *, allow_private: bool = False) -> str:
    """The address to connect to for ``url``. Raises BlockedUrl."""
    host, port = _target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BlockedUrl("host does not resolve") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise BlockedUrl("host does not resolve")
    if not allow_private and not all(_allowed(a) for a in addresses):
        raise BlockedUrl("must not point at a private, loopback or reserved address")
    return addresses[0]


def check(url: str, field: str, *, allow_private: bool = False) -> None:
    """Registration-time check. Raises InvalidInput naming ``field``."""
    try:
        resolve(url, allow_private=allow_private)
    except BlockedUrl as exc:
        raise InvalidInput([FieldError(field, str(exc), "blocked_url")]) from exc
