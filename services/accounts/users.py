"""User accounts and credential checks.

Rules: registration is public and signs the new account in (it gets a token at once, as a login
would give it); a user changes and deletes only their own account (admins any account in their
tenant); a user reads their own account whole, and of another account of their tenant only its
public profile (PublicProfile: no email, phone, preferences, role); admins read any account of
their tenant whole. Another tenant's account is not found.
Usernames and emails are unique per tenant. Repeated login failures are throttled per
(username, client address), so failures sent from one address never lock the account for
another; a username failing from many addresses is slowed down (a short, capped delay before
each check), never locked. Changing the password needs the current one and ends every earlier
token of the account, as does logging out.

Audit (services.shared.audit), each row in the transaction of its change: USER_REGISTERED and
TOKEN_ISSUED in the registration's transaction (the token is signed inside it and handed out
only if it commits); a login's TOKEN_ISSUED in a short write unit of its own after the password
check (the check reads; the token is signed in that unit, so no token leaves without its row);
LOGIN_FAILED in its own small unit (there is no other change), entity USER with the account's
id when the username names an account, else the entity id ``unknown``: the attempted username
is never stored, nor anything of the password (a password typed into the username field must
not reach the log); PASSWORD_CHANGED with the password change."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import RevokedToken, User
from models.base import utcnow
from models.database import Database
from models.enums import ContactMethod, Role, Species, UserStatus
from services.accounts.passwords import hash_password, verify_password
from services.accounts.roles import RoleLookup
from services.shared import audit
from services.shared.audit import AuditAction, AuditEntity
from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Overloaded,
)
from services.shared.principal import (
    IssuedToken,
    Principal,
    TokenIssuer,
    address_key,
    anonymous,
    require_scope,
)
from services.shared.rules import Rules
from services.shared.throttle import FailureThrottle

CLIENT_FACTOR = 10
"""One client address may fail ten times as often as one username (shared NATs, kiosks)."""


USERNAME = re.compile(r"[A-Za-z0-9._-]+")
EMAIL = re.compile(r"[^\x00\s@]+@[^\x00\s@]+")
PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
PREFERENCES = ("newsletter", "contactMethod", "preferredSpecies")


@dataclass(frozen=True)
class UserData:
    """Create/Update User: the profile. Validates itself (every bad field at once, wire names)."""

    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None = None
    preferences: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        rules = self._rules()
        rules.done()

    def _rules(self) -> Rules:
        rules = Rules()
        rules.text("username", self.username, min_len=3, max_len=50, pattern=USERNAME)
        rules.text("email", self.email, min_len=3, max_len=254, pattern=EMAIL)
        rules.text("firstName", self.first_name, min_len=1, max_len=100)
        rules.text("lastName", self.last_name, min_len=1, max_len=100)
        rules.text("phone", self.phone, pattern=PHONE, optional=True)
        prefs = rules.object("preferences", self.preferences, PREFERENCES)
        if prefs is not None:
            rules.boolean("preferences.newsletter", prefs.get("newsletter"))
            rules.choice(
                "preferences.contactMethod",
                prefs.get("contactMethod"),
                ContactMethod,
                optional=True,
            )
            species = prefs.get("preferredSpecies")
            if species is not None:
                rules.choices("preferences.preferredSpecies", species, Species)
                if isinstance(species, list | tuple) and len(species) > len(Species):
                    rules.fail(
                        "preferences.preferredSpecies",
                        f"must have at most {len(Species)} items",
                        "maxItems",
                    )
        return rules


@dataclass(frozen=True)
class NewUser(UserData):
    """A registration: the profile and the password (8 to 128 characters)."""

    password: str = ""

    def __post_init__(self) -> None:
        rules = self._rules()
        rules.text("password", self.password, min_len=8, max_len=128)
        rules.done()


def _ensure_unique(
    session: Session, username: str, email: str, exclude: uuid.UUID | None = None
) -> None:
    stmt = select(User.username, User.email).where(
        or_(func.lower(User.username) == username.lower(), func.lower(User.email) == email.lower())
    )
    if exclude is not None:
        stmt = stmt.where(User.id != exclude)
    for existing_username, existing_email in session.execute(stmt).all():
        if existing_username.lower() == username.lower():
            raise Conflict(f"The username '{username}' is already taken.", field="username")
        if existing_email.lower() == email.lower():
            raise Conflict("An account with this email already exists.", field="email")


def account_actor(user: User, origin: Principal | None = None) -> Principal:
    """The account as the actor of what it does itself (registering, signing in), with the
    request's origin (client address, user agent) taken from ``origin``."""
    return Principal(
        subject=user.id,
        role=user.role,
        scopes=frozenset(),
        tenant=user.tenant_id,
        address=origin.address if origin else None,
        user_agent=origin.user_agent if origin else None,
    )


def _user_snapshot(user: User) -> dict[str, Any]:
    """What the audit log keeps of an account: never its password hash or contact details."""
    return {"username": user.username, "role": user.role}


async def register(
    db: Database,
    tenant: str,
    data: NewUser,
    role: str = Role.USER,
    actor: Principal | None = None,
    then: Callable[[Session, User], None] | None = None,
) -> User:
    """Create an account with a hashed password and its USER_REGISTERED audit row (the actor is
    ``actor`` when signed in, else the new account with ``actor``'s origin); ``then(session,
    user)`` runs last in the same transaction. Raises Conflict on a duplicate username/email."""
    password_hash = await hash_password(data.password)
    now = utcnow()
    user = User(
        username=data.username,
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
        phone=data.phone,
        preferences=data.preferences,
        password_hash=password_hash,
        role=role,
        version=1,
        token_version=0,
        created_at=now,
        updated_at=now,
    )

    def work(session: Session) -> User:
        _ensure_unique(session, data.username, data.email)
        user.tenant_id = tenant
        session.add(user)
        session.flush()
        who = actor if actor is not None and actor.is_authenticated else account_actor(user, actor)
        audit.record(
            session,
            who,
            AuditAction.USER_REGISTERED,
            AuditEntity.USER,
            user.id,
            after=_user_snapshot(user),
        )
        if then is not None:
            then(session, user)
        return user

    try:
        return await db.run(tenant, work, write=True)
    except IntegrityError as exc:  # lost a race with a concurrent registration
        raise Conflict("The username or email is already taken.") from exc


@dataclass(frozen=True)
class SignedIn:
    """An account and the token just issued to it (Create Authentication Token, Create User)."""

    user: User
    token: IssuedToken


@dataclass(frozen=True)
class PublicProfile:
    """What anyone signed in to a tenant may see of another account of it: who it is, never how
    to reach it (no email, phone), its preferences, role or tenant."""

    id: uuid.UUID
    username: str
    first_name: str
    last_name: str
    created_at: datetime


def read_account(
    session: Session, principal: Principal, user_id: uuid.UUID
) -> User | PublicProfile:
    """Get User: the whole account for its owner and admins, else its public profile. Raises
    NotFound when the tenant has no such account."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    if principal.can_access_user(user_id):
        return user
    return PublicProfile(user.id, user.username, user.first_name, user.last_name, user.created_at)


def _load_accessible(session: Session, principal: Principal, user_id: uuid.UUID) -> User:
    if not principal.can_access_user(user_id):
        raise NotFound("user", user_id)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


async def get_user(db: Database, principal: Principal, user_id: uuid.UUID) -> User:
    """Own account (or any, for admins). Raises NotFound otherwise."""
    return await db.run(principal.tenant, lambda s: _load_accessible(s, principal, user_id))


async def update_user(
    db: Database, principal: Principal, user_id: uuid.UUID, data: UserData
) -> User:
    """Replace profile fields. Raises NotFound, Conflict."""

    def work(session: Session) -> User:
        user = _load_accessible(session, principal, user_id)
        _ensure_unique(session, data.username, data.email, exclude=user.id)
        user.username = data.username
        user.email = data.email
        user.first_name = data.first_name
        user.last_name = data.last_name
        user.phone = data.phone
        user.preferences = data.preferences
        user.version += 1
        user.updated_at = utcnow()
        return user

    try:
        return await db.run(principal.tenant, work, write=True)
    except IntegrityError as exc:
        raise Conflict("The username or email is already taken.") from exc


async def delete_user(db: Database, principal: Principal, user_id: uuid.UUID) -> None:
    """Raises NotFound."""

    def work(session: Session) -> None:
        session.delete(_load_accessible(session, principal, user_id))

    await db.run(principal.tenant, work, write=True)


def _login_keys(tenant: str, username: str, address: str) -> tuple[str, str, str]:
    name, client = username.lower(), address_key(address)
    return (
        f"login:pair:{tenant}:{name}:{client}",
        f"login:client:{client}",
        f"login:user:{tenant}:{name}",
    )


async def authenticate(
    db: Database,
    tenant: str,
    username: str,
    password: str,
    throttle: FailureThrottle,
    client: str,
    actor: Principal | None = None,
) -> User:
    """Check credentials (a failure writes its LOGIN_FAILED audit row, by ``actor``). An
    unknown user and a wrong password raise the same AuthenticationFailed (and take the same
    time). Attempts are counted before the password is checked (so parallel guesses are
    counted too):

    - per (username, client address): past the throttle's limit TooManyAttempts is raised for
      that address until the window ends; another address is not affected;
    - per client address, across usernames: ten times that limit (an address may front many
      users);
    - per username, across addresses: past the limit each attempt waits a short delay that
      doubles per failure up to the throttle's cap (never a refusal, so the real user can
      always log in from their own address), and the username's attempts take turns in this
      worker (``FailureThrottle.slowed``, a short line): parallel guesses from many addresses
      are slowed like sequential ones, and a flood never queues the real user behind it.

    A success forgives the (username, address) failures and gives the address and the username
    their attempt back; so does a check that never ran because the hashing queue was full
    (Overloaded, 503), so that whoever keeps the queue full cannot make the real user's refused
    attempts lock their own address."""
    pair_key, client_key, user_key = _login_keys(tenant, username, client)
    await throttle.attempt(pair_key)
    await throttle.attempt(client_key, factor=CLIENT_FACTOR)
    async with throttle.slowed(user_key):
        user = await db.run(
            tenant,
            lambda s: s.scalar(select(User).where(func.lower(User.username) == username.lower())),
        )
        try:
            ok = await verify_password(user.password_hash if user else None, password)
        except Overloaded:  # never checked (503): not an attempt against anyone's budget
            await throttle.give_back(pair_key)
            await throttle.give_back(client_key)
            await throttle.give_back(user_key)
            raise
    if user is None or not ok:
        await _record_failed_login(db, actor or anonymous(tenant), user)
        raise AuthenticationFailed("Invalid username or password.")
    await throttle.forgive(pair_key)
    await throttle.give_back(client_key)
    await throttle.give_back(user_key)
    return user


async def _record_failed_login(db: Database, actor: Principal, user: User | None) -> None:
    """LOGIN_FAILED in a small transaction of its own: the account's id when the username
    named one, else ``unknown`` (the attempted username is never stored)."""

    def work(session: Session) -> None:
        audit.record(
            session,
            actor,
            AuditAction.LOGIN_FAILED,
            AuditEntity.USER,
            user.id if user is not None else "unknown",
            after={
                "reason": "wrong_password" if user is not None else "unknown_user",
                **({"username": user.username} if user is not None else {}),
            },
        )

    await db.run(actor.tenant, work, write=True)


def check_active(user: User) -> None:
    """Only an ACTIVE account is signed in: a suspended or deactivated one (Admin API) is
    Forbidden, told so plainly. Checked after the password, so it tells nothing to a guesser."""
    if user.status != UserStatus.ACTIVE:
        raise Forbidden(
            f"This account is {user.status}: it cannot sign in. Contact the shelter's staff."
        )


class AdminNameTaken(RuntimeError):
    """Startup refuses to make an existing non-admin account the configured admin: whoever
    registered that name first would become staff."""


async def ensure_admin(
    db: Database,
    tenant: str,
    username: str,
    password: str,
    email: str | None = None,
    promote_existing: bool = False,
) -> User:
    """Create the admin account (startup, from PETSTORE_ADMIN_* settings), or set the password
    of the existing admin account of that name. An existing account that is *not* an admin is
    refused (AdminNameTaken, naming it) unless ``promote_existing``; a promoted account's
    earlier tokens end (they were issued to whoever held it before), and so do an existing
    admin's when the configured password is not its current one (a changed password ends the
    sessions opened with the old one, as Change Password does). The same password again (every
    restart) keeps the hash and the tokens. A promotion is audited (USER_ROLE_CHANGED, by the
    system) in the same transaction."""
    named = func.lower(User.username) == username.lower()
    current = await db.run(tenant, lambda s: s.scalar(select(User.password_hash).where(named)))
    unchanged = current is not None and await verify_password(current, password)
    password_hash = None if unchanged else await hash_password(password)

    def work(session: Session) -> User:
        user = session.scalar(select(User).where(named))
        now = utcnow()
        promoted_from: str | None = None
        if user is None:
            user = User(
                username=username,
                email=email or f"{username}@admin.petstore.local",
                first_name="Shelter",
                last_name="Admin",
                created_at=now,
                version=1,
                token_version=0,
            )
            session.add(user)
        elif user.role != Role.ADMIN:
            if not promote_existing:
                raise AdminNameTaken(
                    f"PETSTORE_ADMIN_USERNAME names the existing account '{user.username}' "
                    f"(id {user.id}, role {user.role}), which is not an admin: refusing to "
                    "promote it (whoever registered that name first would become staff). "
                    "Choose another admin username, or set PETSTORE_ADMIN_PROMOTE_EXISTING=1 "
                    "to promote this account on purpose."
                )
            user.token_version = (user.token_version or 0) + 1
            promoted_from = user.role
        elif password_hash is not None:
            user.token_version = (user.token_version or 0) + 1
        if password_hash is not None:
            user.password_hash = password_hash
        user.role = Role.ADMIN
        user.updated_at = now
        if promoted_from is not None:
            audit.record(  # last: the audit head is the unit's last lock
                session,
                audit.system_actor(tenant),
                AuditAction.USER_ROLE_CHANGED,
                AuditEntity.USER,
                user.id,
                before={"role": promoted_from},
                after={"role": Role.ADMIN, "reason": "PETSTORE_ADMIN_PROMOTE_EXISTING"},
            )
        return user

    return await db.run(tenant, work, write=True)


@dataclass(frozen=True)
class PasswordChange:
    """Change Password: the current password and the new one (8 to 128 characters)."""

    current_password: str
    new_password: str

    def __post_init__(self) -> None:
        rules = Rules()
        rules.text("currentPassword", self.current_password, min_len=1, max_len=128)
        rules.text("newPassword", self.new_password, min_len=8, max_len=128)
        rules.done()


async def change_password(
    db: Database,
    principal: Principal,
    user_id: uuid.UUID,
    change: PasswordChange,
    throttle: FailureThrottle,
) -> User:
    """Set a new password, given the current one; every earlier token of the account ends
    (``token_version`` goes up). A wrong current password is InvalidInput on
    ``currentPassword``; attempts are throttled per account like logins (TooManyAttempts).
    Raises NotFound for an account the caller cannot see."""
    key = f"password:{principal.tenant}:{user_id}"
    user = await get_user(db, principal, user_id)
    await throttle.attempt(key)
    if not await verify_password(user.password_hash, change.current_password):
        raise InvalidInput(
            [FieldError("currentPassword", "is not the account's current password", "mismatch")]
        )
    await throttle.forgive(key)
    new_hash = await hash_password(change.new_password)
    checked_hash = user.password_hash

    def work(session: Session) -> User:
        row = _load_accessible(session, principal, user_id)
        if row.password_hash != checked_hash:  # changed meanwhile by a concurrent request
            raise Conflict("The password was changed meanwhile; try again with the new one.")
        before = {"tokenVersion": row.token_version or 0}
        row.password_hash = new_hash
        row.token_version = (row.token_version or 0) + 1
        row.version += 1
        row.updated_at = utcnow()
        audit.record(
            session,
            principal,
            AuditAction.PASSWORD_CHANGED,
            AuditEntity.USER,
            row.id,
            before=before,
            after={"tokenVersion": row.token_version},
        )
        return row

    return await db.run(principal.tenant, work, write=True)


async def end_tokens(db: Database, principal: Principal) -> None:
    """Log out: every token of the caller's account issued so far ends, the presented one
    included (``token_version`` goes up). Raises AuthenticationFailed without a token."""
    if principal.subject is None:
        raise AuthenticationFailed("This operation requires a bearer token.")
    subject = principal.subject

    def work(session: Session) -> None:
        row = session.get(User, subject)
        if row is None:
            raise AuthenticationFailed("The bearer token is invalid or expired.")
        row.token_version = (row.token_version or 0) + 1

    await db.run(principal.tenant, work, write=True)


async def revoke_token(db: Database, principal: Principal, jti: str, expires_at: datetime) -> None:
    """Log out: the token presented (``jti``) ends; the account's other tokens keep working.
    It is remembered until it would have expired anyway (``expires_at``). Raises
    AuthenticationFailed without a token, or when its account no longer exists."""
    if principal.subject is None:
        raise AuthenticationFailed("This operation requires a bearer token.")
    subject = principal.subject

    def work(session: Session) -> None:
        if session.get(User, subject) is None:
            raise AuthenticationFailed("The bearer token is invalid or expired.")
        if session.get(RevokedToken, jti) is None:
            session.add(RevokedToken(jti=jti, user_id=subject, expires_at=expires_at))

    # The same token logged out twice at once: the other request has revoked it.
    with contextlib.suppress(IntegrityError):
        await db.run(principal.tenant, work, write=True)


async def purge_revoked_tokens(db: Database) -> int:
    """System job: forget revoked tokens that have expired anyway, in every tenant, in batches
    (each its own short write transaction)."""

    def work(session: Session) -> int:
        expired = (
            select(RevokedToken.jti).where(RevokedToken.expires_at <= utcnow()).limit(PURGE_BATCH)
        )
        result = session.execute(delete(RevokedToken).where(RevokedToken.jti.in_(expired)))
        return int(getattr(result, "rowcount", 0) or 0)

    total = 0
    while (purged := await db.run_system(work, write=True)) > 0:
        total += purged
        if purged < PURGE_BATCH:
            break
    return total


PURGE_BATCH = 500


class UserService:
    """Account use cases, built once with the login throttle and the role cache."""

    def __init__(
        self, db: Database, throttle: FailureThrottle, roles: RoleLookup, tokens: TokenIssuer
    ) -> None:
        self.db = db
        self.throttle = throttle
        self.roles = roles
        self.tokens = tokens

    def _sign_in(self, session: Session, origin: Principal, user: User) -> IssuedToken:
        """The account's token, issued as every login issues it (role's scopes, token
        version), and its TOKEN_ISSUED audit row in ``session`` (the caller's transaction: the
        token is handed out only if that commits)."""
        token = self.tokens.issue(user.id, user.role, user.tenant_id, version=user.token_version)
        audit.record(
            session,
            account_actor(user, origin),
            AuditAction.TOKEN_ISSUED,
            AuditEntity.TOKEN,
            token.jti,
            after={
                "userId": user.id,
                "scope": token.scope,
                "expiresAt": token.expires_at,
            },
        )
        return token

    async def register(self, principal: Principal, data: NewUser) -> SignedIn:
        """Create User: public; the account joins the caller's tenant and is signed in (its
        token is the one a login would give), in one transaction with its USER_REGISTERED and
        TOKEN_ISSUED audit rows. Raises Conflict, and Overloaded when the password-hashing
        queue is full. (Each client address has an hourly registration budget, counted by the
        rate limiter before any of this runs.)"""
        issued: list[IssuedToken] = []

        def sign_in(session: Session, user: User) -> None:
            issued.append(self._sign_in(session, principal, user))

        user = await register(self.db, principal.tenant, data, actor=principal, then=sign_in)
        return SignedIn(user, issued[0])

    async def login(
        self, principal: Principal, username: str, password: str, client: str
    ) -> SignedIn:
        """Create Authentication Token: the credentials checked (``authenticate``), the account
        ACTIVE (Forbidden otherwise), then in one short write unit its last login noted and the
        token issued with its TOKEN_ISSUED audit row (an account deleted or suspended meanwhile
        gets no token)."""
        checked = await self.authenticate(principal, username, password, client)
        check_active(checked)

        def work(session: Session) -> SignedIn:
            user = session.get(User, checked.id)
            if user is None:
                raise AuthenticationFailed("Invalid username or password.")
            check_active(user)
            user.last_login_at = utcnow()
            return SignedIn(user, self._sign_in(session, principal, user))

        return await self.db.run(principal.tenant, work, write=True)

    async def get(self, principal: Principal, user_id: uuid.UUID) -> User | PublicProfile:
        """Get User (read:user): the whole account for its owner and admins, the public profile
        of another account of the caller's tenant. Raises NotFound."""
        require_scope(principal, "read:user")
        return await self.db.run(principal.tenant, lambda s: read_account(s, principal, user_id))

    async def update(self, principal: Principal, user_id: uuid.UUID, data: UserData) -> User:
        require_scope(principal, "write:user")
        return await update_user(self.db, principal, user_id, data)

    async def delete(self, principal: Principal, user_id: uuid.UUID) -> None:
        """The account goes, and this process stops trusting its tokens at once (other
        workers within the role cache's lifetime)."""
        require_scope(principal, "write:user")
        await delete_user(self.db, principal, user_id)
        self.roles.forget(principal.tenant, user_id)

    async def authenticate(
        self, principal: Principal, username: str, password: str, client: str
    ) -> User:
        """Create Authentication Token's check, throttled per username and per client."""
        return await authenticate(
            self.db, principal.tenant, username, password, self.throttle, client, principal
        )

    async def change_password(
        self, principal: Principal, user_id: uuid.UUID, change: PasswordChange
    ) -> None:
        """Change Password (write:user): this process stops accepting the account's earlier
        tokens at once, other workers within the role cache's lifetime."""
        require_scope(principal, "write:user")
        await change_password(self.db, principal, user_id, change, self.throttle)
        self.roles.forget(principal.tenant, user_id)

    async def logout(self, principal: Principal, jti: str | None, expires_at: datetime) -> None:
        """Revoke Token (any valid token): ends the token presented (``jti``), at once on this
        process and within the role cache's lifetime elsewhere; the account's other tokens
        keep working. A token without an id (none of ours) ends every token of the account."""
        if jti:
            await revoke_token(self.db, principal, jti, expires_at)
        else:
            await end_tokens(self.db, principal)
        assert principal.subject is not None
        self.roles.forget(principal.tenant, principal.subject)

    async def me(self, principal: Principal) -> User:
        """The caller's own account (read:user)."""
        require_scope(principal, "read:user")
        assert principal.subject is not None  # require_scope refuses anonymous callers
        return await get_user(self.db, principal, principal.subject)
