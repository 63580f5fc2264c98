"""Data migrations on a private SQLite file: what they rewrite, and back."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from settings import ROOT


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def test_photo_paths_become_image_names_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    config = _config(url)
    command.upgrade(config, "0005")
    engine = sa.create_engine(url)
    pet_id = uuid.uuid4()
    name = "a" * 64 + ".jpg"
    legacy = [f"pets/{pet_id}/images/{name}", "https://cdn.example.com/dog.jpg"]
    pets = sa.Table("pets", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(
            pets.insert().values(
                id=pet_id.hex, tenant_id="", name="Rex", species="DOG", age_months=1,
                price=10, currency="USD", status="AVAILABLE", photos=legacy, version=1,
                created_at=sa.func.now(), updated_at=sa.func.now(),
            )
        )  # fmt: skip
    typed = sa.table("pets", sa.column("photos", sa.JSON()))

    def photos() -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(typed.c.photos)).scalar_one())

    command.upgrade(config, "head")
    assert photos() == [name, "https://cdn.example.com/dog.jpg"]
    command.downgrade(config, "0005")
    assert photos() == legacy
    engine.dispose()


def test_webhook_secrets_are_sealed_and_hosts_filled_then_opened_back(tmp_path: Path) -> None:
    """0009 encrypts the signing secrets already stored (subscriptions and callbacks) under the
    server's key, fills each delivery's host, and its downgrade restores the plain values."""
    from services.shared.secrets import SecretBox

    url = f"sqlite:///{tmp_path}/m.db"
    config = _config(url)
    config.attributes["jwt_secret"] = "migration-test-secret-long-enough-for-hs256"
    command.upgrade(config, "0006")
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    users = sa.Table("users", meta, autoload_with=engine)
    subs = sa.Table("webhook_subscriptions", meta, autoload_with=engine)
    events = sa.Table("webhook_events", meta, autoload_with=engine)
    deliveries = sa.Table("webhook_deliveries", meta, autoload_with=engine)
    owner, sub_id, event_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    callback_id, hook_id = uuid.uuid4(), uuid.uuid4()
    now = sa.func.now()
    with engine.begin() as conn:
        conn.execute(
            users.insert().values(
                id=owner.hex, tenant_id="", username="o", email="o@example.com",
                first_name="O", last_name="W", password_hash="x", role="user", version=1,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(
            subs.insert().values(
                id=sub_id.hex, tenant_id="", owner_id=owner.hex, url="https://a.example/h",
                events=["payment.succeeded"], secret="whsec_subscription", active=True,
                created_at=now,
            )
        )  # fmt: skip
        conn.execute(
            events.insert().values(
                id=event_id.hex, tenant_id="", event_type="order.processed", payload={},
                created_at=now,
            )
        )  # fmt: skip
        for row_id, sub, secret, target in (
            (callback_id, None, "whsec_callback", "https://B.example:8443/cb"),
            (hook_id, sub_id.hex, None, "https://a.example/h"),
        ):
            conn.execute(
                deliveries.insert().values(
                    id=row_id.hex, tenant_id="", event_id=event_id.hex, subscription_id=sub,
                    url=target, secret=secret, status="PENDING", attempts=0,
                    next_attempt_at=now, created_at=now,
                )
            )  # fmt: skip

    def stored() -> dict[str, object]:
        with engine.connect() as conn:
            values: dict[str, object] = {
                "sub": conn.execute(sa.text("select secret from webhook_subscriptions")).scalar()
            }
            for row_id, secret in conn.execute(
                sa.text("select id, secret from webhook_deliveries")
            ):
                values[str(row_id)] = secret
            return values

    command.upgrade(config, "head")
    box = SecretBox("migration-test-secret-long-enough-for-hs256")
    after = stored()
    assert str(after["sub"]).startswith("enc:v1:")
    assert box.open(str(after["sub"])) == "whsec_subscription"
    assert box.open(str(after[callback_id.hex])) == "whsec_callback"
    assert after[hook_id.hex] is None
    with engine.connect() as conn:
        hosts: dict[str, str] = dict(
            conn.execute(sa.text("select id, host from webhook_deliveries")).all()
        )
    assert hosts == {callback_id.hex: "b.example:8443", hook_id.hex: "a.example:443"}
    command.upgrade(config, "head")  # nothing sealed twice
    assert stored() == after
    command.downgrade(config, "0006")
    assert stored() == {"sub": "whsec_subscription", callback_id.hex: "whsec_callback",
                        hook_id.hex: None}  # fmt: skip
    engine.dispose()


def test_sealing_refuses_without_the_servers_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0009 with rows to seal and no key known (none passed, no PETSTORE_JWT_SECRET, no
    var/jwt-secret) stops with a clear error instead of sealing under a new key; with the
    server's var/jwt-secret it uses that key."""
    from services.shared.secrets import SecretBox

    url = f"sqlite:///{tmp_path}/m.db"
    var = tmp_path / "var"
    monkeypatch.delenv("PETSTORE_JWT_SECRET", raising=False)
    monkeypatch.setenv("PETSTORE_VAR_DIR", str(var))
    config = _config(url)
    command.upgrade(config, "0008")
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    users = sa.Table("users", meta, autoload_with=engine)
    subs = sa.Table("webhook_subscriptions", meta, autoload_with=engine)
    owner = uuid.uuid4()
    now = sa.func.now()
    with engine.begin() as conn:
        conn.execute(
            users.insert().values(
                id=owner.hex, tenant_id="", username="o", email="o@example.com",
                first_name="O", last_name="W", password_hash="x", role="user", version=1,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(
            subs.insert().values(
                id=uuid.uuid4().hex, tenant_id="", owner_id=owner.hex, url="https://a.example/h",
                events=["payment.succeeded"], secret="whsec_subscription", active=True,
                created_at=now,
            )
        )  # fmt: skip
    engine.dispose()
    with pytest.raises(RuntimeError, match="No new key is generated"):
        command.upgrade(_config(url), "head")
    assert not (var / "jwt-secret").exists()
    var.mkdir()
    (var / "jwt-secret").write_text("the-servers-own-key-long-enough-for-hs256\n")
    command.upgrade(_config(url), "head")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sealed = conn.execute(sa.text("select secret from webhook_subscriptions")).scalar()
    engine.dispose()
    assert SecretBox("the-servers-own-key-long-enough-for-hs256").open(str(sealed)) == (
        "whsec_subscription"
    )
