"""OAuth 2.0 use cases, built once (app.build_container) and called by protocols/oauth.

- Codes (RFC 6749 §4.1, RFC 7636): single-use, ``code_ttl`` seconds; redeeming one is one
  transaction that claims it (a concurrent second redemption finds it used), issues the access
  token through the project's one issuer and starts a refresh family. A code presented again
  ends everything issued from it (§4.1.2): its refresh family and its access token.
- Refresh tokens rotate: each use marks the token used and issues a successor in its family, in
  one transaction. A used (or revoked) token presented again revokes the whole family, its
  access tokens included (their ids go to revoked_tokens, the table logout uses, so the API
  refuses them). A family ends too when the user's ``token_version`` moved (password change,
  logout everywhere) or the account is no longer ACTIVE. No scope escalation: a refresh asks
  for at most the family's scope.
- Device codes (RFC 8628): a short user code (no 0/O/1/I), ``device_ttl`` seconds, polled no
  faster than ``interval`` (each too-early poll is ``slow_down`` and adds 5 s); approved or
  denied by a signed-in user of the client's tenant; tokens are handed out once.
- Every token issued is audited (TOKEN_ISSUED, with the client id) in its transaction, as are
  client registrations and family revocations.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import RevokedToken, User
from models.base import utcnow
from models.database import Database
from models.oauth import OAuthClient, OAuthCode, OAuthDeviceCode, OAuthRefreshToken
from services.accounts.roles import RoleLookup
from services.accounts.users import UserService, account_actor, check_active
from services.oauth.clients import (
    REFRESH_TOKEN,
    Client,
    ClientData,
    RegisteredClient,
    digest,
    new_client_row,
)
from services.shared import audit
from services.shared.audit import AuditAction, AuditEntity
from services.shared.errors import AuthenticationFailed, Forbidden
from services.shared.principal import IssuedToken, Principal

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1: no vowels, no 0/O, 1/I
SLOW_DOWN_STEP = 5


class OAuthTokens(Protocol):
    """The project's one token issuer (auth.tokens.TokenService), as OAuth uses it."""

    def issue(
        self,
        subject: uuid.UUID,
        role: str,
        tenant: str,
        scopes: frozenset[str] | None = None,
        version: int = 0,
        *,
        client_id: str = ...,
    ) -> IssuedToken: ...

    def verify(self, token: str) -> dict[str, Any] | None: ...


class OAuthError(Exception):
    """A refusal with its RFC 6749 / RFC 8628 error code (``invalid_grant``,
    ``authorization_pending``, ...); ``detail`` is safe to show."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class OAuthPolicy:
    code_ttl: int = 60
    refresh_ttl: int = 30 * 24 * 3600
    device_ttl: int = 600
    device_interval: int = 5


@dataclass(frozen=True)
class SignedIn:
    """Who signed in on the authorization pages, with the account's token version then."""

    user_id: uuid.UUID
    token_version: int


@dataclass(frozen=True)
class CodeGrant:
    """An unused, unexpired authorization code as the token endpoint checks it."""

    client_id: str
    user_id: uuid.UUID
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass(frozen=True)
class RefreshGrant:
    family_id: uuid.UUID
    client_id: str
    user_id: uuid.UUID
    scope: str


@dataclass(frozen=True)
class TokenSet:
    access: IssuedToken
    refresh: str | None


@dataclass(frozen=True)
class DeviceStart:
    device_code: str
    user_code: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class PendingDevice:
    """A device waiting for its user, as the verification page shows it."""

    user_code: str
    client: Client
    scope: str


def _user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_user_code(typed: str) -> str:
    """What a user typed (any case, with or without the dash or spaces) as stored."""
    raw = "".join(c for c in typed.upper() if c.isalnum())[:8]
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else raw


async def create_client(db: Database, actor: Principal, data: ClientData) -> RegisteredClient:
    """A new client in the actor's tenant, audited (OAUTH_CLIENT_REGISTERED) in its
    transaction. Registration (an admin) and ``manage.py create-client`` (the system actor)."""
    row, secret = new_client_row(data, actor.tenant, actor.subject, utcnow())

    def work(session: Session) -> Client:
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            AuditAction.OAUTH_CLIENT_REGISTERED,
            AuditEntity.OAUTH_CLIENT,
            row.client_id,
            after={
                "name": row.name,
                "redirectUris": row.redirect_uris,
                "scope": row.scope,
                "grantTypes": row.grant_types,
                "tokenEndpointAuthMethod": row.token_endpoint_auth_method,
            },
        )
        return Client.of(row)

    return RegisteredClient(await db.run(actor.tenant, work, write=True), secret)


class OAuthService:
    def __init__(
        self,
        db: Database,
        tokens: OAuthTokens,
        users: UserService,
        roles: RoleLookup,
        policy: OAuthPolicy | None = None,
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.users = users
        self.roles = roles
        self.policy = policy or OAuthPolicy()

    # -- clients ---------------------------------------------------------------------------

    async def register_client(self, principal: Principal, data: ClientData) -> RegisteredClient:
        """RFC 7591 registration: an admin only (AuthenticationFailed without a token,
        Forbidden for anyone else); the client joins the admin's tenant; audited."""
        if not principal.is_authenticated:
            raise AuthenticationFailed("Registering a client requires an admin's bearer token.")
        if not principal.is_admin:
            raise Forbidden("Only an admin registers OAuth clients.")
        return await create_client(self.db, principal, data)

    async def client(self, client_id: str) -> Client | None:
        if not client_id or len(client_id) > 64:
            return None
        # The registry is looked up before any tenant is known (models/oauth.py).
        row = await self.db.run("", lambda s: s.get(OAuthClient, client_id))
        return None if row is None else Client.of(row)

    # -- users -----------------------------------------------------------------------------

    async def sign_in(
        self, client: Client, username: str, password: str, origin: Principal
    ) -> SignedIn:
        """The login of the authorization pages: the account is looked up in the client's
        tenant through the accounts' own check (throttled per username and address, failures
        audited); a suspended or deactivated account is Forbidden. The account's token
        version comes back with it: the pages' session ends when it changes (a new password)."""
        principal = Principal(
            None, "anonymous", frozenset(), client.tenant, origin.address, origin.user_agent
        )
        user = await self.users.authenticate(
            principal, username, password, origin.address or "unknown"
        )
        check_active(user)
        return SignedIn(user.id, user.token_version)

    async def still_signed_in(self, tenant: str, signed_in: SignedIn) -> bool:
        """Whether a session of the pages still stands: the account exists, is ACTIVE and has
        not changed its password since it signed in (the accounts' own standing lookup, as
        bearer tokens are checked: a change through another worker shows within its TTL)."""
        standing = await self.roles.standing(tenant, signed_in.user_id)
        return (
            standing is not None
            and standing.active
            and standing.token_version == signed_in.token_version
        )

    # -- authorization codes ---------------------------------------------------------------

    async def issue_code(
        self,
        client: Client,
        user_id: uuid.UUID,
        redirect_uri: str,
        scope: str,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        """A code for the user's consent; Forbidden when the account is not ACTIVE now."""
        code = secrets.token_urlsafe(32)
        now = utcnow()

        def work(session: Session) -> None:
            user = session.get(User, user_id)
            if user is None:
                raise AuthenticationFailed("The account no longer exists.")
            check_active(user)
            session.add(
                OAuthCode(
                    code_hash=digest(code),
                    client_id=client.client_id,
                    user_id=user_id,
                    tenant_id=client.tenant,
                    redirect_uri=redirect_uri,
                    scope=scope,
                    code_challenge=code_challenge,
                    code_challenge_method=code_challenge_method,
                    expires_at=now + timedelta(seconds=self.policy.code_ttl),
                )
            )

        await self.db.run(client.tenant, work, write=True)
        return code

    async def find_code(self, client: Client, code: str) -> CodeGrant | None:
        """The code if it is this client's, unused and unexpired. A used one is a replay:
        what was issued from it ends (RFC 6749 §4.1.2), and it is None like any bad code."""
        code_hash = digest(code)

        def work(session: Session) -> CodeGrant | OAuthCode | None:
            row = session.get(OAuthCode, code_hash)
            if row is None or row.client_id != client.client_id or row.tenant_id != client.tenant:
                return None
            if row.used_at is not None:
                return row
            if row.expires_at <= utcnow():
                return None
            return CodeGrant(
                row.client_id,
                row.user_id,
                row.redirect_uri,
                row.scope,
                row.code_challenge,
                row.code_challenge_method,
            )

        found = await self.db.run(client.tenant, work)
        if isinstance(found, OAuthCode):
            await self._end_replayed_code(client, found)
            return None
        return found

    async def _end_replayed_code(self, client: Client, code: OAuthCode) -> None:
        if code.family_id is not None:
            await self._revoke_family(client.tenant, code.family_id, "authorization code replayed")

        def work(session: Session) -> None:
            if code.access_jti and code.access_expires_at and code.access_expires_at > utcnow():
                _revoke_jti(session, code.access_jti, code.user_id, code.access_expires_at)

        await self.db.run(client.tenant, work, write=True)
        self.roles.forget(client.tenant, code.user_id)

    async def exchange_code(self, client: Client, code: str, origin: Principal) -> TokenSet:
        """Redeem a checked code (find_code, PKCE and redirect URI checked by the caller) in
        one transaction: claimed, tokens issued and audited. A code claimed meanwhile by a
        concurrent request is ``invalid_grant``."""
        code_hash = digest(code)
        now = utcnow()

        def work(session: Session) -> TokenSet | None:
            claimed = session.execute(
                update(OAuthCode)
                .where(OAuthCode.code_hash == code_hash, OAuthCode.used_at.is_(None))
                .values(used_at=now)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None  # redeemed by a concurrent request, which has committed
            row = session.get(OAuthCode, code_hash)
            assert row is not None
            user = _active_user(session, row.user_id)
            family = uuid.uuid4() if client.allows_grant(REFRESH_TOKEN) else None
            issued = self._issue(session, client, user, row.scope, family, origin)
            row.family_id = family
            row.access_jti = issued.access.jti
            row.access_expires_at = issued.access.expires_at
            return issued

        issued = await self.db.run(client.tenant, work, write=True)
        if issued is None:
            # Lost the race: a replay all the same (RFC 6749 §4.1.2), so the tokens the
            # winner was given end too.
            row = await self.db.run(client.tenant, lambda s: s.get(OAuthCode, code_hash))
            if row is not None:
                await self._end_replayed_code(client, row)
            raise OAuthError("invalid_grant", "The authorization code was used already.")
        return issued

    # -- refresh tokens --------------------------------------------------------------------

    async def find_refresh(self, client: Client, token: str) -> RefreshGrant | None:
        """The refresh token if it is this client's and still good. A used or revoked one is
        a replay (its family is revoked); one whose account changed its password, or is no
        longer ACTIVE, ends its family too. None in every such case (``invalid_grant``)."""
        token_hash = digest(token)

        def work(session: Session) -> tuple[OAuthRefreshToken | None, str | None]:
            row = session.get(OAuthRefreshToken, token_hash)
            if row is None or row.client_id != client.client_id or row.tenant_id != client.tenant:
                return None, None
            if row.used_at is not None:
                return row, "refresh token reused"
            if row.revoked_at is not None:
                return row, "revoked refresh token presented"
            user = session.get(User, row.user_id)
            if user is None or user.status != "ACTIVE":
                return row, "account no longer active"
            if user.token_version != row.token_version:
                return row, "password changed"
            return row, None

        row, ending = await self.db.run(client.tenant, work)
        if row is None:
            return None
        if ending is not None:
            await self._revoke_family(client.tenant, row.family_id, ending)
            return None
        if row.expires_at <= utcnow():
            return None
        return RefreshGrant(row.family_id, row.client_id, row.user_id, row.scope)

    async def rotate_refresh(
        self, client: Client, token: str, scope: str, origin: Principal
    ) -> TokenSet:
        """Use a checked refresh token (find_refresh; ``scope`` at most its own): it is
        marked used and a successor issued in its family, in one transaction. Lost a race
        with another use of the same token: the family is revoked (``invalid_grant``)."""
        token_hash = digest(token)
        now = utcnow()

        def work(session: Session) -> TokenSet | uuid.UUID | None:
            row = session.get(OAuthRefreshToken, token_hash)
            if row is None:
                return None
            if not _lock_family(session, row.family_id):  # revoked meanwhile
                raise OAuthError("invalid_grant", "The refresh token has ended.")
            claimed = session.execute(
                update(OAuthRefreshToken)
                .where(
                    OAuthRefreshToken.token_hash == token_hash,
                    OAuthRefreshToken.used_at.is_(None),
                    OAuthRefreshToken.revoked_at.is_(None),
                )
                .values(used_at=now)
                .execution_options(synchronize_session="fetch")
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return row.family_id
            user = _active_user(session, row.user_id)
            if user.token_version != row.token_version:
                raise OAuthError("invalid_grant", "The refresh token has ended.")
            return self._issue(session, client, user, scope, row.family_id, origin)

        outcome = await self.db.run(client.tenant, work, write=True)
        if outcome is None:
            raise OAuthError("invalid_grant", "Unknown refresh token.")
        if isinstance(outcome, uuid.UUID):
            await self._revoke_family(client.tenant, outcome, "refresh token reused")
            raise OAuthError("invalid_grant", "The refresh token was used already.")
        return outcome

    async def _revoke_family(self, tenant: str, family_id: uuid.UUID, reason: str) -> None:
        """Every refresh token of the family is revoked and its access tokens refused;
        audited once (when the family still had live members)."""
        now = utcnow()

        def work(session: Session) -> uuid.UUID | None:
            _lock_family(session, family_id)  # after a rotation in flight, never beside it
            rows = session.scalars(
                select(OAuthRefreshToken).where(OAuthRefreshToken.family_id == family_id)
            ).all()
            live = [r for r in rows if r.revoked_at is None]
            if not live:
                return None  # revoked already (a concurrent replay, a second revocation)
            for row in live:
                row.revoked_at = now
            for row in rows:
                if row.access_jti and row.access_expires_at and row.access_expires_at > now:
                    _revoke_jti(session, row.access_jti, row.user_id, row.access_expires_at)
            actor = audit.system_actor(tenant)
            audit.record(
                session,
                actor,
                AuditAction.OAUTH_REFRESH_FAMILY_REVOKED,
                AuditEntity.OAUTH_REFRESH_FAMILY,
                family_id,
                after={"reason": reason, "clientId": rows[0].client_id, "userId": rows[0].user_id},
            )
            return rows[0].user_id

        user_id = await self.db.run(tenant, work, write=True)
        if user_id is not None:
            self.roles.forget(tenant, user_id)

    def _issue(
        self,
        session: Session,
        client: Client,
        user: User,
        scope: str,
        family: uuid.UUID | None,
        origin: Principal,
    ) -> TokenSet:
        """An access token from the one issuer (the user's role caps its scopes), a refresh
        token in ``family`` when there is one, and the TOKEN_ISSUED row, in ``session``."""
        access = self.tokens.issue(
            user.id,
            user.role,
            user.tenant_id,
            scopes=frozenset(scope.split()),
            version=user.token_version,
            client_id=client.client_id,
        )
        refresh = None
        if family is not None:
            refresh = secrets.token_urlsafe(32)
            now = utcnow()
            session.add(
                OAuthRefreshToken(
                    token_hash=digest(refresh),
                    family_id=family,
                    client_id=client.client_id,
                    user_id=user.id,
                    tenant_id=client.tenant,
                    scope=scope,
                    token_version=user.token_version,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.policy.refresh_ttl),
                    access_jti=access.jti,
                    access_expires_at=access.expires_at,
                )
            )
            session.flush()
        audit.record(
            session,
            account_actor(user, origin),
            AuditAction.TOKEN_ISSUED,
            AuditEntity.TOKEN,
            access.jti,
            after={
                "userId": user.id,
                "scope": access.scope,
                "expiresAt": access.expires_at,
                "clientId": client.client_id,
                **({"refreshFamily": family} if family else {}),
            },
        )
        return TokenSet(access, refresh)

    # -- device authorization (RFC 8628) ----------------------------------------------------

    async def start_device(self, client: Client, scope: str) -> DeviceStart:
        device_code = secrets.token_urlsafe(32)
        now = utcnow()
        for _ in range(5):  # a user code clash (1 in 25 billion) picks another
            user_code = _user_code()
            row = OAuthDeviceCode(
                device_code_hash=digest(device_code),
                user_code=user_code,
                client_id=client.client_id,
                tenant_id=client.tenant,
                scope=scope,
                interval=self.policy.device_interval,
                expires_at=now + timedelta(seconds=self.policy.device_ttl),
                status="pending",
                created_at=now,
            )
            with contextlib.suppress(IntegrityError):
                await self.db.run(client.tenant, _adding(row), write=True)
                return DeviceStart(
                    device_code, user_code, self.policy.device_ttl, self.policy.device_interval
                )
        raise RuntimeError("no free user code")

    async def pending_device(self, typed: str) -> PendingDevice | None:
        """The pending, unexpired device authorization of a user code, else None."""
        user_code = normalize_user_code(typed)

        def work(session: Session) -> OAuthDeviceCode | None:
            return session.scalar(
                select(OAuthDeviceCode).where(OAuthDeviceCode.user_code == user_code)
            )

        row = await self.db.run("", work)  # looked up by its code, as clients are
        if row is None or row.status != "pending" or row.expires_at <= utcnow():
            return None
        client = await self.client(row.client_id)
        return None if client is None else PendingDevice(row.user_code, client, row.scope)

    async def decide_device(self, typed: str, user_id: uuid.UUID, approve: bool) -> bool:
        """The user's answer for a pending device (approve needs an ACTIVE account of the
        client's tenant). False when the code is no longer pending."""
        pending = await self.pending_device(typed)
        if pending is None:
            return False

        def work(session: Session) -> bool:
            if approve:
                _active_user(session, user_id)
            done = session.execute(
                update(OAuthDeviceCode)
                .where(
                    OAuthDeviceCode.user_code == pending.user_code,
                    OAuthDeviceCode.status == "pending",
                )
                .values(status="approved" if approve else "denied", user_id=user_id)
            )
            return getattr(done, "rowcount", 0) == 1

        return await self.db.run(pending.client.tenant, work, write=True)

    async def poll_device(self, client: Client, device_code: str, origin: Principal) -> TokenSet:
        """One poll of the token endpoint: OAuthError ``slow_down`` (too early: the interval
        grows by 5 s), ``authorization_pending``, ``expired_token``, ``access_denied``,
        ``invalid_grant`` (unknown, another client's, or its tokens handed out already);
        the tokens once approved."""
        code_hash = digest(device_code)
        now = utcnow()

        def work(session: Session) -> TokenSet | OAuthError:
            # Locked (PostgreSQL; SQLite's writes are serialized anyway): concurrent polls of
            # one code take turns, so the poll clock and the hand-over are each seen once.
            row = session.get(OAuthDeviceCode, code_hash, with_for_update=True)
            if row is None or row.client_id != client.client_id or row.tenant_id != client.tenant:
                return OAuthError("invalid_grant", "Unknown device code.")
            if row.status == "used":
                return OAuthError("invalid_grant", "The device code was used already.")
            if row.expires_at <= now:
                return OAuthError("expired_token", "The device code has expired.")
            last, row.last_poll_at = row.last_poll_at, now
            if last is not None and now - last < timedelta(seconds=row.interval):
                row.interval += SLOW_DOWN_STEP
                return OAuthError("slow_down", f"Poll at most every {row.interval} seconds.")
            if row.status == "denied":
                return OAuthError("access_denied", "The user denied the authorization.")
            if row.status != "approved" or row.user_id is None:
                return OAuthError("authorization_pending", "The user has not answered yet.")
            handed = session.execute(
                update(OAuthDeviceCode)
                .where(
                    OAuthDeviceCode.device_code_hash == code_hash,
                    OAuthDeviceCode.status == "approved",
                )
                .values(status="used")
                .execution_options(synchronize_session="fetch")
            )
            if getattr(handed, "rowcount", 0) != 1:  # another poll took it meanwhile
                return OAuthError("invalid_grant", "The device code was used already.")
            user = session.get(User, row.user_id)
            if user is None or user.status != "ACTIVE":
                return OAuthError("access_denied", "The account can no longer authorize.")
            family = uuid.uuid4() if client.allows_grant(REFRESH_TOKEN) else None
            return self._issue(session, client, user, row.scope, family, origin)

        # Write even for a refusal: the poll time and a grown interval must stick.
        outcome = await self.db.run(client.tenant, work, write=True)
        if isinstance(outcome, OAuthError):
            raise outcome
        return outcome

    # -- revocation and introspection --------------------------------------------------------

    async def revoke(self, client: Client, token: str, hint: str | None = None) -> None:
        """RFC 7009: a refresh token of this client ends its family; an access token issued
        to this client is refused by the API from now on. Anything else is ignored (§2.2:
        the answer is 200 either way). ``hint`` only orders the search (§2.1: a wrong hint
        must not stop it); a refresh token is one hash lookup, so it is always tried first."""
        del hint
        row = await self.db.run(client.tenant, lambda s: s.get(OAuthRefreshToken, digest(token)))
        if row is not None and row.client_id == client.client_id:
            await self._revoke_family(client.tenant, row.family_id, "revoked by the client")
            return
        claims = self.tokens.verify(token)
        if claims is None or claims.get("client_id") != client.client_id:
            return
        if str(claims.get("tid", "")) != client.tenant or not claims.get("jti"):
            return
        subject = uuid.UUID(str(claims["sub"]))
        expires = datetime.fromtimestamp(int(claims["exp"]), tz=utcnow().tzinfo)

        def work(session: Session) -> None:
            _revoke_jti(session, str(claims["jti"]), subject, expires)

        await self.db.run(client.tenant, work, write=True)
        self.roles.forget(client.tenant, subject)

    async def introspect(self, client: Client, token: str) -> dict[str, Any]:
        """RFC 7662 for a client of the token's tenant: ``{"active": false}`` for anything
        unknown, expired, revoked, rotated, or of an account that changed its password or is
        no longer ACTIVE."""
        inactive: dict[str, Any] = {"active": False}
        row = await self.db.run(client.tenant, lambda s: s.get(OAuthRefreshToken, digest(token)))
        if row is not None:
            if row.tenant_id != client.tenant or row.used_at or row.revoked_at:
                return inactive
            if row.expires_at <= utcnow():
                return inactive
            standing = await self.roles.standing(row.tenant_id, row.user_id)
            if standing is None or not standing.active:
                return inactive
            if standing.token_version != row.token_version:
                return inactive
            return {
                "active": True,
                "token_type": "refresh_token",
                "scope": row.scope,
                "client_id": row.client_id,
                "sub": str(row.user_id),
                "exp": int(row.expires_at.timestamp()),
                "iat": int(row.created_at.timestamp()),
            }
        claims = self.tokens.verify(token)
        if claims is None or str(claims.get("tid", "")) != client.tenant:
            return inactive
        try:
            subject = uuid.UUID(str(claims["sub"]))
        except ValueError:
            return inactive
        standing = await self.roles.standing(client.tenant, subject)
        if standing is None or not standing.active:
            return inactive
        if int(claims.get("ver", 0)) != standing.token_version:
            return inactive
        if str(claims.get("jti", "")) in standing.revoked:
            return inactive
        return {
            "active": True,
            "token_type": "Bearer",
            **{k: claims[k] for k in ("scope", "sub", "exp", "iat", "iss", "aud", "jti")
               if k in claims},
            "client_id": claims.get("client_id", "petstore-api"),
        }  # fmt: skip


def _active_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or user.status != "ACTIVE":
        raise OAuthError("invalid_grant", "The account can no longer authorize.")
    return user


def _adding(row: OAuthDeviceCode) -> Callable[[Session], None]:
    def work(session: Session) -> None:
        session.add(row)

    return work


def _lock_family(session: Session, family_id: uuid.UUID) -> bool:
    """Take the refresh family's lock for the rest of the transaction: its first token's row,
    FOR UPDATE (PostgreSQL; SQLite serializes writes anyway). A rotation and a revocation of
    one family so take turns, and each statement after the lock sees what the other committed:
    a revocation cannot miss a successor inserted by a rotation in flight, and a rotation
    cannot add one to a family revoked meanwhile. Whether the family is still unrevoked (a
    revocation marks every member, the first included; the locked row is read afresh)."""
    first = session.execute(
        select(OAuthRefreshToken.token_hash, OAuthRefreshToken.revoked_at)
        .where(OAuthRefreshToken.family_id == family_id)
        .order_by(OAuthRefreshToken.created_at, OAuthRefreshToken.token_hash)
        .limit(1)
        .with_for_update()
    ).first()
    return first is not None and first.revoked_at is None


def _revoke_jti(session: Session, jti: str, user_id: uuid.UUID, expires_at: datetime) -> None:
    """Refuse the access token ``jti`` from now on (once: a concurrent revocation of the same
    token is not an error)."""
    if session.get(RevokedToken, jti) is not None:
        return
    try:
        with session.begin_nested():
            session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at))
    except IntegrityError:
        pass  # revoked by another transaction meanwhile
