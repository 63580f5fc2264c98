"""The access-token signing keys: an ES256 (ECDSA P-256) key ring, published as a JWKS.

Two sources, chosen by configuration:

- **The var/ ring (default).** ``var/jwt-keys/`` (0700) holds one PKCS#8 PEM file per key
  (0600), named ``<created, ns since the epoch>-<kid>.pem``. The newest key signs; the older ones
  are *previous* keys: still published and still accepted, so that the tokens they signed stay
  valid until they expire. A previous key is pruned once it was superseded more than the token
  lifetime (plus ``PRUNE_LEEWAY_SECONDS``) ago: every token it signed has expired by then.
  The first start creates the first key under an exclusive lock (``.lock``, ``fcntl.flock``):
  of several workers starting at once one creates it, the others wait and read it. A key file
  is written under a temporary name and linked into place, so no reader ever sees half a key.
  ``python manage.py rotate-keys`` (``KeyRing.rotate``) adds a new current key the same way.
- **Configured keys.** ``PETSTORE_JWT_PRIVATE_KEY`` (PEM text) or
  ``PETSTORE_JWT_PRIVATE_KEY_FILE`` (a PEM file): one or more EC P-256 private keys; the first
  signs, the others are previous keys (published, accepted). Nothing is written; rotating is
  the operator's: put the new key first, drop the old one a token lifetime later.

How a worker that did not rotate learns of it (several workers share ``var/``): it lists the
directory again (a few µs; only new files are read) before every signing, every JWKS answer,
every verification of a token whose ``kid`` it does not know, and before any verification once
``REFRESH_SECONDS`` have passed since the last listing. So a token signed with a key made by
another process is accepted at once, new logins use the new key at once, and a pruned key
stops verifying within ``REFRESH_SECONDS`` everywhere.

Only private files are trusted: the directory and each key file must belong to this process's
user with no access for anyone else (0700 / 0600), and a key file must be a regular file (a
symbolic link is not followed). A directory that fails this stops the start (ConfigError, saying
how to fix it); a key file that fails it is ignored with an error in the log.

The kid is the key's RFC 7638 JWK thumbprint (SHA-256, base64url)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from settings import ConfigError, Settings, make_private_dir

log = logging.getLogger("petstore.keys")

ALGORITHM = "ES256"
KEYS_DIRNAME = "jwt-keys"
REFRESH_SECONDS = 1.0
PRUNE_LEEWAY_SECONDS = 60
"""Added to the token lifetime before a superseded key is pruned (clock steps, a token signed by
a worker that listed the directory just before the rotation)."""

MAX_FUTURE_NS = 24 * 3600 * 1_000_000_000
"""A key file dated further ahead than this is refused: it would stay the signing key forever."""

_KEY_FILE = re.compile(r"^(\d{20})-([A-Za-z0-9_-]{43})\.pem$")
_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.DOTALL
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    created_ns: int | None = None  # None: a configured key (no creation time known)

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()

    @property
    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 7517/7518): nothing private."""
        return {**public_jwk(self.public), "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    @classmethod
    def of(cls, private: ec.EllipticCurvePrivateKey, created_ns: int | None = None) -> SigningKey:
        return cls(thumbprint(private.public_key()), private, created_ns)


def public_jwk(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace."""
    members = public_jwk(public)
    canonical = json.dumps({k: members[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _p256(private: object, where: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise ConfigError(f"{where}: not an EC P-256 private key (ES256 needs one)")
    return private


def parse_private_keys(pem: str, source: str) -> list[SigningKey]:
    """The keys of ``pem`` (one or more PEM private keys), in order. ConfigError names
    ``source`` (the setting) when a block is not an unencrypted EC P-256 private key."""
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(pem)]
    if not blocks:
        raise ConfigError(f"{source}: no PEM private key found")
    keys = []
    for number, block in enumerate(blocks, 1):
        where = f"{source} (key {number})"
        try:
            private = serialization.load_pem_private_key(block.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: not a readable unencrypted private key") from exc
        keys.append(SigningKey.of(_p256(private, where)))
    return keys


class KeyRing:
    """The current signing key and the previous keys still accepted (see the module's doc)."""

    def __init__(self, directory: Path | None, configured: list[SigningKey] | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._files: dict[str, SigningKey] = {}  # file name -> key
        self._listed: set[str] = set()  # the key file names seen at the last listing
        self._keys: list[SigningKey] = list(configured or [])  # current first
        self._by_kid = {key.kid: key for key in self._keys}
        self._listed_at = float("-inf")
        self._jwks: bytes | None = None
        if directory is not None:
            problem = _unsafe_dir(directory)
            if problem is not None:
                raise ConfigError(problem)
            self._ensure_first_key()
            self.refresh()

    @classmethod
    def configured(cls, pem: str, source: str) -> KeyRing:
        """A ring of configured keys: nothing is read from or written to var/."""
        return cls(None, parse_private_keys(pem, source))

    @classmethod
    def in_directory(cls, var_dir: Path) -> KeyRing:
        return cls(var_dir / KEYS_DIRNAME)

    @property
    def managed(self) -> bool:
        """Whether this ring's keys live in var/ (rotation and pruning are ours)."""
        return self.directory is not None

    # --- reading -------------------------------------------------------------------------

    def signing_key(self) -> SigningKey:
        self.refresh()
        return self._keys[0]

    def published(self) -> list[SigningKey]:
        """Every published key, current first."""
        self.refresh()
        return list(self._keys)

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key named ``kid`` if it is in the ring (a current or previous key)."""
        if time.monotonic() - self._listed_at >= REFRESH_SECONDS:
            self.refresh()
        key = self._by_kid.get(kid)
        if key is None and self.directory is not None:
            self.refresh()  # maybe another worker just rotated
            key = self._by_kid.get(kid)
        return key.public if key is not None else None

    def jwks_json(self) -> bytes:
        """The JWK Set (RFC 7517 section 5) of every published key, as JSON bytes."""
        self.refresh()
        jwks = self._jwks
        if jwks is None:
            jwks = json.dumps({"keys": [key.jwk for key in self._keys]}).encode()
            self._jwks = jwks
        return jwks

    def refresh(self) -> None:
        """Pick up keys another process added or pruned (no-op for configured keys)."""
        if self.directory is None:
            return
        with self._lock:
            self._listed_at = time.monotonic()
            try:
                names = {n for n in os.listdir(self.directory) if _KEY_FILE.match(n)}
            except FileNotFoundError:
                names = set()
            if names == self._listed:
                return
            problem = _unsafe_dir(self.directory)
            if problem is not None:
                log.error("%s; keeping the keys in memory", problem)
                return
            files = {n: k for n, k in self._files.items() if n in names}
            for name in names - self._listed:
                key = self._read(name)
                if key is not None:
                    files[name] = key
            self._listed = names
            if not files:
                log.error("no signing key left in %s; keeping the keys in memory", self.directory)
                return
            self._files = files
            self._keys = sorted(files.values(), key=lambda k: (k.created_ns or 0, k.kid))[::-1]
            self._by_kid = {key.kid: key for key in self._keys}
            self._jwks = None

    def _read(self, name: str) -> SigningKey | None:
        """The key in file ``name``, or None (logged) unless it is a regular file of ours,
        owner-only, dated no later than ``MAX_FUTURE_NS`` from now, holding the P-256 key its
        name says."""
        assert self.directory is not None
        path = self.directory / name
        matched = _KEY_FILE.match(name)
        assert matched is not None
        if int(matched[1]) > time.time_ns() + MAX_FUTURE_NS:
            log.error("ignoring key file %s: dated in the future", path)
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # pruned between listing and reading
        except OSError:  # ELOOP: a symbolic link
            log.error("ignoring key file %s: not a regular file", path)
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            problem = _unsafe(info, "key file", path, 0o600)
            if problem is not None or not stat.S_ISREG(info.st_mode):
                log.error("ignoring %s", problem or f"key file {path}: not a regular file")
                return None
            data = handle.read()
        try:
            private = _p256(serialization.load_pem_private_key(data, password=None), str(path))
        except (ValueError, TypeError, ConfigError):
            log.error("ignoring unreadable key file %s", path)
            return None
        key = SigningKey.of(private, int(matched[1]))
        if key.kid != matched[2]:
            log.error("ignoring key file %s: its name does not match its key", path)
            return None
        return key

    # --- writing (the var/ ring only) ------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        assert self.directory is not None
        _private_dir(self.directory)
        fd = os.open(
            self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _ensure_first_key(self) -> None:
        assert self.directory is not None
        if self._listing():
            return
        with self._exclusive():
            if not self._listing():  # nobody made one while we waited
                self._write(SigningKey.of(new_private_key(), time.time_ns()))

    def _listing(self) -> list[str]:
        assert self.directory is not None
        try:
            return [n for n in os.listdir(self.directory) if _KEY_FILE.match(n)]
        except FileNotFoundError:
            return []

    def _write(self, key: SigningKey) -> None:
        """Create the key's file (0600) atomically: written in full under a temporary name,
        then linked into place (O_EXCL semantics: an existing file is never replaced)."""
        assert self.directory is not None
        assert key.created_ns is not None
        final = self.directory / f"{key.created_ns:020d}-{key.kid}.pem"
        tmp = self.directory / f".{final.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_pem(key.private))
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, final)
        finally:
            tmp.unlink()
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def rotate(self, ttl_seconds: int, drop_previous: bool = False) -> SigningKey:
        """Make a new current key. The previous keys stay published and accepted until pruned
        (``prune``, run here too); ``drop_previous`` removes them at once instead, ending every
        token they signed (a key that leaked)."""
        if self.directory is None:
            raise ConfigError(
                "the signing keys come from PETSTORE_JWT_PRIVATE_KEY(_FILE): rotate them there "
                "(the new key first, the old one after it until its tokens have expired)"
            )
        with self._exclusive():
            created = max([time.time_ns(), *(self._created(n) + 1 for n in self._listing())])
            key = SigningKey.of(new_private_key(), created)
            self._write(key)
            if drop_previous:
                for name in self._listing():
                    if self._created(name) != created:
                        (self.directory / name).unlink(missing_ok=True)
            else:
                self._prune_locked(ttl_seconds)
        self.refresh()
        return key

    def prune(self, ttl_seconds: int) -> list[str]:
        """Delete the previous keys superseded more than ``ttl_seconds`` + leeway ago (every
        token they signed has expired); the kids removed."""
        if self.directory is None or len(self._listing()) < 2:
            return []
        with self._exclusive():
            removed = self._prune_locked(ttl_seconds)
        if removed:
            self.refresh()
        return removed

    def _prune_locked(self, ttl_seconds: int) -> list[str]:
        assert self.directory is not None
        names = sorted(self._listing(), key=self._created)
        cutoff = time.time_ns() - (ttl_seconds + PRUNE_LEEWAY_SECONDS) * 1_000_000_000
        removed = []
        # A key is retired when the next one was created; the newest is never pruned.
        for name, successor in itertools.pairwise(names):
            if self._created(successor) <= cutoff:
                (self.directory / name).unlink(missing_ok=True)
                removed.append(name)
        return [_KEY_FILE.match(n)[2] for n in removed]  # type: ignore[index]

    @staticmethod
    def _created(name: str) -> int:
        matched = _KEY_FILE.match(name)
        return int(matched[1]) if matched else 0


def key_ring(settings: Settings) -> KeyRing:
    """The configured keys if any (PETSTORE_JWT_PRIVATE_KEY(_FILE)), else the var/ ring."""
    if settings.jwt_private_key:
        return KeyRing.configured(settings.jwt_private_key, settings.jwt_private_key_source)
    return KeyRing.in_directory(settings.var_dir)


def _private_dir(path: Path) -> None:
    """``path`` as an owner-only (0700) directory; parents made as needed. An existing one
    that is not private is refused (ConfigError), never loosened or tightened silently."""
    make_private_dir(path)
    problem = _unsafe_dir(path)
    if problem is not None:
        raise ConfigError(problem)


def _unsafe_dir(path: Path) -> str | None:
    """Why ``path`` cannot hold signing keys, or None (also None when it does not exist yet)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return f"key directory {path}: not a directory (a symbolic link is not followed)"
    return _unsafe(info, "key directory", path, 0o700)


def _unsafe(info: os.stat_result, what: str, path: Path, wanted: int) -> str | None:
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        return f"{what} {path}: owned by uid {info.st_uid}, not by this process's user"
    if mode & 0o077:
        return f"{what} {path}: mode {mode:04o} lets others in; chmod {wanted:o} it"
    return None
