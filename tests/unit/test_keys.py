"""The token-signing key ring (auth/keys.py) on real files: created once, owner-only, by one of
several processes starting together; rotation keeps the previous keys until their tokens have
expired; configured keys write nothing; a process that did not rotate sees what another did."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth.keys import KEYS_DIRNAME, PRUNE_LEEWAY_SECONDS, KeyRing, SigningKey, new_private_key
from auth.tokens import TokenService
from settings import ROOT, ConfigError, Settings

TTL = 3600


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual 022: files would be world-readable unless the ring says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _files(var: Path) -> list[Path]:
    """The ring's key files (``var`` is a var/ directory or the ring's own directory)."""
    ring = var / KEYS_DIRNAME if (var / KEYS_DIRNAME).is_dir() else var
    return sorted(ring.glob("*.pem"))


def _pem(private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_the_first_key_is_made_once_and_owner_only(tmp_path: Path, lax_umask: None) -> None:
    ring = KeyRing.in_directory(tmp_path / "var")
    (key_file,) = _files(tmp_path / "var")
    assert _mode(tmp_path / "var" / KEYS_DIRNAME) == 0o700
    assert _mode(key_file) == 0o600
    assert key_file.name.endswith(f"-{ring.signing_key().kid}.pem")
    again = KeyRing.in_directory(tmp_path / "var")  # a restart reads it, makes none
    assert again.signing_key().kid == ring.signing_key().kid
    assert len(_files(tmp_path / "var")) == 1


def test_the_published_key_is_public_only_and_named_by_its_thumbprint(tmp_path: Path) -> None:
    ring = KeyRing.in_directory(tmp_path)
    (raw,) = json.loads(ring.jwks_json())["keys"]
    assert set(raw) == {"kty", "crv", "x", "y", "kid", "use", "alg"}  # no "d"
    assert (raw["kty"], raw["crv"], raw["use"], raw["alg"]) == ("EC", "P-256", "sig", "ES256")
    # RFC 7638: SHA-256 over the required members, sorted, without whitespace
    canonical = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (raw["x"], raw["y"])  # noqa: UP031
    digest = hashlib.sha256(canonical.encode()).digest()
    assert raw["kid"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    public = jwt.PyJWK.from_dict(raw).key  # the published half of the signing key
    assert public.public_numbers() == ring.signing_key().private.public_key().public_numbers()


STARTER = """
import os, sys, time
from pathlib import Path
from auth.keys import KeyRing
var, go = Path(sys.argv[1]), Path(sys.argv[2])
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
print(KeyRing.in_directory(var).signing_key().kid)
"""


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """Eight processes, each waiting at the line until all are ready, create the ring at the
    same moment: one key file, one kid for all."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(  # noqa: S603 - our interpreter, our code
            [sys.executable, "-c", STARTER, str(tmp_path / "var"), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    kids = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(kids) == 1
    assert len(_files(tmp_path / "var")) == 1


def test_rotation_keeps_the_previous_key_until_its_tokens_have_expired(tmp_path: Path) -> None:
    ring = KeyRing.in_directory(tmp_path)
    tokens = TokenService(ring, "https://issuer.example", TTL)
    old_kid = ring.signing_key().kid
    old_token = tokens.issue(_subject(), "user", "").token

    new = ring.rotate(TTL)
    assert ring.signing_key().kid == new.kid != old_kid
    assert [k.kid for k in ring.published()] == [new.kid, old_kid]  # current first
    assert jwt.get_unverified_header(tokens.issue(_subject(), "user", "").token)["kid"] == new.kid
    assert tokens.verify(old_token) is not None  # still valid until it expires

    assert ring.prune(TTL) == []  # superseded just now: its tokens may still be out there
    assert tokens.verify(old_token) is not None

    # The rotation happened a token lifetime (plus the leeway) ago: the old key is pruned.
    _age(tmp_path, TTL + PRUNE_LEEWAY_SECONDS + 1)
    assert ring.prune(TTL) == [old_kid]
    assert [k.kid for k in ring.published()] == [new.kid]
    assert tokens.verify(old_token) is None
    assert len(_files(tmp_path)) == 1


def test_the_current_key_is_never_pruned(tmp_path: Path) -> None:
    ring = KeyRing.in_directory(tmp_path)
    kid = ring.signing_key().kid
    _age(tmp_path, 10 * TTL)
    assert ring.prune(TTL) == []
    assert ring.signing_key().kid == kid


def test_drop_previous_ends_the_old_keys_tokens_at_once(tmp_path: Path) -> None:
    ring = KeyRing.in_directory(tmp_path)
    tokens = TokenService(ring, "https://issuer.example", TTL)
    old_token = tokens.issue(_subject(), "user", "").token
    assert tokens.verify(old_token) is not None  # and remembered as verified
    ring.rotate(TTL)
    ring.rotate(TTL, drop_previous=True)
    assert len(ring.published()) == 1
    assert len(_files(tmp_path)) == 1
    assert tokens.verify(old_token) is None


def test_a_process_that_did_not_rotate_follows_the_one_that_did(tmp_path: Path) -> None:
    """Two workers on one var/: B accepts A's new key's tokens at once (unknown kid → listing),
    signs with it at once (a listing before every signing), and stops accepting a dropped key
    within REFRESH_SECONDS (a listing at most that long after the last)."""
    a, b = KeyRing.in_directory(tmp_path), KeyRing.in_directory(tmp_path)
    issuer_a = TokenService(a, "https://issuer.example", TTL)
    issuer_b = TokenService(b, "https://issuer.example", TTL)
    before = issuer_b.issue(_subject(), "user", "").token
    assert issuer_a.verify(before) is not None
    assert issuer_b.verify(before) is not None  # remembered as verified from now on

    new = a.rotate(TTL)
    from_a = issuer_a.issue(_subject(), "user", "").token
    assert issuer_b.verify(from_a) is not None
    assert jwt.get_unverified_header(issuer_b.issue(_subject(), "user", "").token)["kid"] == new.kid
    assert [k.kid for k in b.published()] == [k.kid for k in a.published()]

    a.rotate(TTL, drop_previous=True)
    deadline = time.monotonic() + 30
    while issuer_b.verify(before) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert issuer_b.verify(before) is None
    assert len(b.published()) == 1


def test_configured_keys_sign_first_verify_all_and_write_nothing(tmp_path: Path) -> None:
    current, previous = new_private_key(), new_private_key()
    settings = Settings.from_env(
        {
            "PETSTORE_VAR_DIR": str(tmp_path),
            "PETSTORE_JWT_PRIVATE_KEY": _pem(current) + _pem(previous),
        }
    )
    from auth.keys import key_ring

    ring = key_ring(settings)
    assert not ring.managed
    assert ring.signing_key().kid == SigningKey.of(current).kid
    assert [k.kid for k in ring.published()] == [
        SigningKey.of(current).kid,
        SigningKey.of(previous).kid,
    ]
    old = TokenService(KeyRing(None, [SigningKey.of(previous)]), settings.jwt_issuer, TTL)
    tokens = TokenService(ring, settings.jwt_issuer, TTL)
    assert tokens.verify(old.issue(_subject(), "user", "").token) is not None
    assert not (tmp_path / KEYS_DIRNAME).exists()
    with pytest.raises(ConfigError, match="PETSTORE_JWT_PRIVATE_KEY"):
        ring.rotate(TTL)


def test_a_key_file_setting_is_read(tmp_path: Path) -> None:
    key = new_private_key()
    path = tmp_path / "signing.pem"
    path.write_text(_pem(key))
    from auth.keys import key_ring

    settings = Settings.from_env(
        {"PETSTORE_VAR_DIR": str(tmp_path / "var"), "PETSTORE_JWT_PRIVATE_KEY_FILE": str(path)}
    )
    assert key_ring(settings).signing_key().kid == SigningKey.of(key).kid


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PETSTORE_JWT_PRIVATE_KEY": "not a key"}, "PETSTORE_JWT_PRIVATE_KEY: no PEM"),
        (
            {"PETSTORE_JWT_PRIVATE_KEY": "RSA"},
            r"PETSTORE_JWT_PRIVATE_KEY \(key 1\): not an EC P-256 private key",
        ),
        (
            {"PETSTORE_JWT_PRIVATE_KEY": "P-384"},
            r"PETSTORE_JWT_PRIVATE_KEY \(key 1\): not an EC P-256 private key",
        ),
        (
            {"PETSTORE_JWT_PRIVATE_KEY": "P-256", "PETSTORE_JWT_PRIVATE_KEY_FILE": "/x"},
            "both set",
        ),
        ({"PETSTORE_JWT_PRIVATE_KEY_FILE": "/no/such/file.pem"}, "cannot read"),
    ],
)
def test_unusable_key_settings_are_refused_naming_the_setting(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    pems = {
        "RSA": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "P-384": _pem(ec.generate_private_key(ec.SECP384R1())),
        "P-256": _pem(new_private_key()),
    }
    env = {k: pems.get(v, v) for k, v in env.items()}
    from auth.keys import key_ring

    with pytest.raises(ConfigError, match=message):
        key_ring(Settings.from_env({"PETSTORE_VAR_DIR": str(tmp_path), **env}))


def _subject() -> uuid.UUID:
    return uuid.uuid4()


def _age(var: Path, seconds: int) -> None:
    """Make every key look created ``seconds`` earlier than it was (a file's name carries its
    creation time): what the ring sees once that much time has passed."""
    for path in _files(var):
        created, kid = path.stem.split("-", 1)
        older = int(created) - seconds * 1_000_000_000
        path.rename(path.with_name(f"{older:020d}-{kid}.pem"))


def test_a_verified_token_is_remembered_until_it_expires(tmp_path: Path) -> None:
    tokens = TokenService(KeyRing.in_directory(tmp_path), "https://issuer.example", 1)
    issued = tokens.issue(_subject(), "user", "")
    first = tokens.verify(issued.token)
    assert first is not None
    first["scope"] += " admin"  # a caller changing its copy changes nothing remembered
    again = tokens.verify(issued.token)
    assert again is not None
    assert "admin" not in again["scope"]
    while time.time() < issued.expires_at.timestamp() + 0.01:
        time.sleep(0.05)
    assert tokens.verify(issued.token) is None  # expired, remembered or not
    assert tokens.verify(issued.token + "x") is None


# -- only private files are trusted -----------------------------------------------------------


def _planted(ring_dir: Path, created_ns: int | None = None) -> tuple[SigningKey, Path]:
    """A valid key file written by someone else into ``ring_dir`` (0600 unless changed)."""
    key = SigningKey.of(new_private_key(), created_ns or time.time_ns())
    path = ring_dir / f"{key.created_ns:020d}-{key.kid}.pem"
    path.write_text(_pem(key.private))
    path.chmod(0o600)
    return key, path


def _kids(ring: KeyRing) -> set[str]:
    return {key.kid for key in ring.published()}


@pytest.mark.parametrize("spoil", ["readable-by-others", "owned-by-another-user"])
def test_a_key_file_that_is_not_private_is_ignored(tmp_path: Path, spoil: str) -> None:
    if spoil == "owned-by-another-user" and os.geteuid() != 0:
        pytest.skip("only root can give a file away")
    ring = KeyRing.in_directory(tmp_path)
    planted, path = _planted(tmp_path / KEYS_DIRNAME)
    if spoil == "readable-by-others":
        path.chmod(0o644)
    else:
        os.chown(path, 4242, -1)
    ring.refresh()
    assert planted.kid not in _kids(ring)
    assert planted.kid not in _kids(KeyRing.in_directory(tmp_path))
    path.chmod(0o600)
    os.chown(path, os.geteuid(), -1)
    assert planted.kid in _kids(KeyRing.in_directory(tmp_path))  # the same file, made private


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    ring = KeyRing.in_directory(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    planted, target = _planted(elsewhere)
    (tmp_path / KEYS_DIRNAME / target.name).symlink_to(target)
    ring.refresh()
    assert planted.kid not in _kids(ring)
    assert planted.kid not in _kids(KeyRing.in_directory(tmp_path))


def test_a_key_dated_far_ahead_is_refused(tmp_path: Path) -> None:
    """It would sort first, and so sign, forever."""
    ring = KeyRing.in_directory(tmp_path)
    current = ring.signing_key().kid
    planted, _ = _planted(tmp_path / KEYS_DIRNAME, time.time_ns() + 10 * 24 * 3600 * 10**9)
    ring.refresh()
    assert ring.signing_key().kid == current
    assert planted.kid not in _kids(ring)


def test_a_directory_others_can_enter_stops_the_start(tmp_path: Path) -> None:
    KeyRing.in_directory(tmp_path)
    ring_dir = tmp_path / KEYS_DIRNAME
    ring_dir.chmod(0o755)
    with pytest.raises(ConfigError, match=r"mode 0755 .*chmod 700"):
        KeyRing.in_directory(tmp_path)
    assert _mode(ring_dir) == 0o755  # refused, not silently changed
    ring_dir.chmod(0o700)
    assert KeyRing.in_directory(tmp_path).signing_key()


def test_a_loosened_directory_stops_reading_new_keys(tmp_path: Path) -> None:
    ring = KeyRing.in_directory(tmp_path)
    kept = ring.signing_key().kid
    (tmp_path / KEYS_DIRNAME).chmod(0o777)
    planted, _ = _planted(tmp_path / KEYS_DIRNAME)
    ring.refresh()
    assert ring.signing_key().kid == kept  # the keys in memory stay; the new file is not read
    assert planted.kid not in _kids(ring)
