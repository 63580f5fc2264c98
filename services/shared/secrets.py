"""Secrets kept at rest encrypted (Fernet: AES-128-CBC + HMAC-SHA256), under keys derived from
the server's signing secret (PETSTORE_JWT_SECRET) with a label per purpose. Used for stored
idempotent responses and for webhook and callback signing secrets.

Rotating PETSTORE_JWT_SECRET makes what was sealed under the old one unreadable: webhook
subscriptions then need to be created again (their deliveries fail as ``secret unreadable``)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

WEBHOOK_SECRETS = b"petstore webhook secrets v1"
PREFIX = "enc:v1:"


def fernet(server_secret: str, label: bytes) -> Fernet:
    """The Fernet key for one purpose: HMAC-SHA256(server secret, label)."""
    key = hmac.new(server_secret.encode(), label, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class Unreadable(Exception):
    """A sealed value that this key cannot open (another key, or tampered with)."""


class SecretBox:
    """Seals short text secrets for a database column: ``enc:v1:<Fernet token>``."""

    def __init__(self, server_secret: str, label: bytes = WEBHOOK_SECRETS) -> None:
        self._fernet = fernet(server_secret, label)

    def seal(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        """Raises Unreadable for anything not sealed by this key (plain text included)."""
        if not stored.startswith(PREFIX):
            raise Unreadable("not sealed")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise Unreadable("sealed under another key") from exc

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)
