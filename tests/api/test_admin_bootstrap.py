"""The admin account from PETSTORE_ADMIN_*: startup never makes someone else's account staff,
and a token never gains scopes it was not issued with (a promotion needs a new login)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import jwt
import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from app import create_app
from models import User
from models.database import Database
from services.accounts.users import AdminNameTaken
from settings import ROOT, Settings
from tests.conftest import PASSWORD, PET, Api, run_db


def _promote(settings: Settings, tenant: str, user_id: str) -> None:
    async def go(db: Database) -> None:
        stmt = update(User).where(User.id == uuid.UUID(user_id)).values(role="admin")
        await db.run(tenant, lambda s: s.execute(stmt), write=True)

    run_db(settings, go)


def test_a_token_issued_before_promotion_gains_no_scopes(api: Api, settings: Settings) -> None:
    user, before = api.user_token()
    other = api.register()
    _promote(settings, api.tenant or "", user["id"])
    app = create_app(settings.with_overrides(role_cache_seconds=0))
    with app.test_client() as client:
        headers = {"Authorization": f"Bearer {before}", "X-Tenant-ID": api.tenant or ""}
        refused = client.post("/v1/pets", json=PET, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["type"] == "https://petstoreapi.com/errors/forbidden"
        # nor is it an admin's token elsewhere: of another user's account it gets only the
        # public profile
        profile = client.get(f"/v1/users/{other['id']}", headers=headers)
        assert profile.status_code == 200
        assert "email" not in profile.json()
        after = api.login(user["username"])  # a new login carries the new role's scopes
        assert {"write:pets", "admin"} <= set(
            jwt.decode(after, options={"verify_signature": False})["scope"].split()
        )
        headers["Authorization"] = f"Bearer {after}"
        assert client.post("/v1/pets", json=PET, headers=headers).status_code == 201
        whole = client.get(f"/v1/users/{other['id']}", headers=headers)
        assert whole.status_code == 200
        assert whole.json()["email"] == other["email"]


def _squat(api: Api) -> tuple[str, str]:
    """An ordinary account registered in the shared pool under a fresh name; (name, id)."""
    user = api.register(f"Admin{uuid.uuid4().hex[:8]}")
    return user["username"], user["id"]


def test_startup_refuses_to_promote_an_existing_account_and_names_it(
    client: TestClient, settings: Settings
) -> None:
    name, user_id = _squat(Api(client, settings, None))
    app = create_app(settings.with_overrides(admin_username=name.lower()))
    with pytest.raises(AdminNameTaken) as refused, app.test_client():
        pass
    assert f"'{name}'" in str(refused.value)
    assert user_id in str(refused.value)
    # the account is untouched: its owner's password still works, and it is no admin
    token = Api(client, settings, None).login(name, PASSWORD)
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "user"


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PETSTORE_VAR_DIR": str(settings.var_dir),
        "PETSTORE_JWT_SECRET": settings.jwt_secret,
        "PETSTORE_ADMIN_PASSWORD": "admin-password-1",
        "PETSTORE_WEBHOOK_WORKER": "0",
        **extra,
    }


def test_the_server_and_manage_py_exit_non_zero_naming_the_account(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    name, _ = _squat(Api(client, settings, None))
    env = _env(settings, PETSTORE_ADMIN_USERNAME=name)
    manage = subprocess.run(
        [sys.executable, "manage.py", "ensure-admin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert manage.returncode != 0
    assert f"existing account '{name}'" in manage.stderr
    server = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "app:app_from_env", "--port", "0",
         "--lifespan", "on", "--no-access-log"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert server.returncode != 0
    assert f"existing account '{name}'" in server.stdout + server.stderr
    # with the documented opt-in the account is promoted
    opted = subprocess.run(
        [sys.executable, "manage.py", "ensure-admin"],
        cwd=ROOT, env={**env, "PETSTORE_ADMIN_PROMOTE_EXISTING": "1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert opted.returncode == 0, opted.stderr
    token = Api(client, settings, None).login(name, "admin-password-1")
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "admin"


def test_a_new_admin_password_from_the_environment_ends_the_admins_earlier_tokens(
    client: TestClient, settings: Settings
) -> None:
    """Startup setting a changed PETSTORE_ADMIN_PASSWORD on the existing admin ends the tokens
    issued with the old one; a restart with the same password ends none."""
    shared = Api(client, settings, None)
    name, user_id = _squat(shared)
    _promote(settings, "", user_id)
    old = shared.login(name, PASSWORD)
    me = f"/v1/users/{user_id}"
    renamed = settings.with_overrides(
        admin_username=name, admin_password="new-admin-password-2", role_cache_seconds=0
    )
    with create_app(renamed).test_client() as c:
        assert c.get(me, headers={"Authorization": f"Bearer {old}"}).status_code == 401
        r = c.post("/v1/auth/tokens", json={"username": name, "password": "new-admin-password-2"})
        assert r.status_code == 201, r.text
        new = r.json()["token"]
    with create_app(renamed).test_client() as c:  # a restart, same password
        assert c.get(me, headers={"Authorization": f"Bearer {new}"}).status_code == 200
