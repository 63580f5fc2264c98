"""Configuration: one immutable Settings object built from the environment.

Nothing here runs at import; ``Settings.from_env()`` is called by the app factory or the CLI.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
API_PREFIX = "/v1"
ADMIN_PREFIX = f"{API_PREFIX}/admin"  # the Admin API module (spec/admin.yaml)
"""Where the API lives below the host: every protocol's endpoints and every link the API hands
out start with it (REST operations, /v1/graphql, ...)."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The Host names served when PETSTORE_ALLOWED_HOSTS is not set (plus PETSTORE_PUBLIC_URL's)."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def make_private_dir(path: Path) -> None:
    """Create ``path`` (var/ and the like) readable by its owner only (0700), parents as needed.
    An existing directory is left as it is (it may be the operator's)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)


def _ports(value: str) -> frozenset[int]:
    """A comma-separated list of TCP ports (``443,8443``)."""
    ports = frozenset(int(p) for p in value.replace(" ", "").split(",") if p)
    if not ports or not all(0 < p < 65536 for p in ports):
        raise ConfigError(f"PETSTORE_WEBHOOK_ALLOWED_PORTS: not a list of ports: {value!r}")
    return ports


def _load_or_create_secret(path: Path) -> str:
    """Embedded default: a random signing key generated once and kept under var/ (mode 0600,
    var/ itself 0700 when it is created here).

    Written to a temporary file and linked into place, so a crash never leaves an empty key
    and two workers starting together end up with the same one."""
    if not path.exists():
        make_private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; use its key
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if not key:
        raise ValueError(f"{path} is empty: delete it to generate a new signing key")
    return key


MIN_JWT_SECRET_BYTES = 32
"""Server secrets shorter than SHA-256's output are refused at startup (the secret keys HMACs
and the Fernet keys derived from it, as HS256 keys once: RFC 7518 section 3.2)."""

DEFAULT_ISSUER = "http://127.0.0.1:8080"
"""The token issuer (``iss``) when PETSTORE_PUBLIC_URL is not set: ``make run``'s address."""


class ConfigError(ValueError):
    """A setting the server refuses to start with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    jwt_secret: str
    """PETSTORE_JWT_SECRET: the server secret. It no longer signs tokens (auth/keys.py does, with
    ES256); it keys the sealing of webhook secrets, Idempotency-Key bodies and guest-client
    HMACs, so it keeps its name and its length rule."""
    var_dir: Path = ROOT / "var"
    jwt_issuer: str = DEFAULT_ISSUER
    """The ``iss`` of every access token and the OAuth 2.0 authorization server's issuer
    identifier (RFC 8414): PETSTORE_PUBLIC_URL, else DEFAULT_ISSUER."""
    jwt_private_key: str | None = None
    """Configured signing keys (PEM, one or more EC P-256 private keys, the first signs), from
    PETSTORE_JWT_PRIVATE_KEY or the file PETSTORE_JWT_PRIVATE_KEY_FILE names; None: the key
    ring in var/jwt-keys/ (auth/keys.py)."""
    jwt_private_key_source: str = "PETSTORE_JWT_PRIVATE_KEY"
    token_ttl_seconds: int = 24 * 3600
    rate_limit_per_minute: int = 600
    register_rate_limit_per_hour: int = 20
    password_hash_queue: int = 16
    allowed_hosts: tuple[str, ...] = ()
    redis_url: str | None = None
    redis_prefix: str = "petstore:"
    public_url: str | None = None
    role_cache_seconds: float = 5.0
    validate_responses: bool = True
    max_body_bytes: int = 1024 * 1024
    login_max_failures: int = 5
    login_window_seconds: int = 900
    login_backoff_max_seconds: float = 2.0
    login_rate_limit_per_minute: int = 20
    admin_username: str | None = None
    admin_password: str | None = None
    admin_email: str | None = None
    admin_promote_existing: bool = False
    workers: int = 1
    log_json: bool = True
    order_hold_seconds: int = 1800
    guest_hold_seconds: int = 600
    order_hold_limit: int = 3
    order_rehold_seconds: int | None = None  # None: twice the hold (order_hold_seconds)
    order_rate_limit_per_minute: int = 10
    webhook_worker: bool = True
    webhook_poll_seconds: float = 1.0
    webhook_backoff_seconds: float = 10.0
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 10.0
    webhook_allow_loopback: bool = False
    webhook_allowed_ports: frozenset[int] = frozenset({80, 443})
    webhook_concurrency: int = 32
    webhook_per_host: int = 4
    webhook_per_owner: int = 4
    webhook_retention_days: float = 30.0
    callbacks_per_order: int = 5
    callbacks_per_hour: int = 20
    knowledge_dir: Path = ROOT / "knowledge"
    chat_rate_limit_per_minute: int = 20
    chat_pace_ms: int = 0
    chat_upstream_url: str | None = None
    chat_upstream_key: str | None = None
    chat_upstream_model: str | None = None
    chat_upstream_timeout: float = 30.0
    chat_max_tokens: int = 1024
    read_cache_entries: int = 256  # 0: no read cache (and no list/inventory ETags)
    read_cache_seconds: float = 60.0
    media_dir: Path = ROOT / "var" / "media"
    media_s3_bucket: str | None = None
    media_s3_prefix: str = ""
    media_s3_endpoint: str | None = None
    media_s3_region: str | None = None
    image_max_bytes: int = 5 * 1024 * 1024
    image_max_pixels: int = 40_000_000
    image_decode_slots: int = 1
    graphiql: bool = False
    graphql_max_depth: int = 15
    graphql_max_cost: int = 1000
    metrics_token: str | None = None
    oauth_rate_limit_per_minute: int = 60
    oauth_code_ttl_seconds: int = 60
    oauth_refresh_ttl_seconds: int = 30 * 24 * 3600
    oauth_device_ttl_seconds: int = 600
    oauth_device_interval_seconds: int = 5

    def __post_init__(self) -> None:
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"PETSTORE_JWT_SECRET is {len(self.jwt_secret.encode())} bytes long; at least "
                f"{MIN_JWT_SECRET_BYTES} are required (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`), or unset it to use a generated key."
            )

    @property
    def served_hosts(self) -> frozenset[str] | None:
        """The Host names served (any port), lower-case; None when any is (``*``). Default: the
        loopback names; PETSTORE_ALLOWED_HOSTS replaces them. PETSTORE_PUBLIC_URL's host is
        always served."""
        if "*" in self.allowed_hosts:
            return None
        names = set(self.allowed_hosts or LOOPBACK_HOSTS)
        if self.public_url:
            host = urlsplit(self.public_url).hostname
            if host:
                names.add(f"[{host}]" if ":" in host else host.lower())
        return frozenset(names)

    @property
    def order_hold(self) -> timedelta:
        return timedelta(seconds=self.order_hold_seconds)

    @property
    def order_rehold(self) -> timedelta:
        """How long a client whose unpaid hold on a pet lapsed or was cancelled by it waits to
        hold that pet again: PETSTORE_ORDER_REHOLD_SECONDS, by default twice the hold (so two
        clients taking turns cannot keep a pet held)."""
        if self.order_rehold_seconds is None:
            return 2 * self.order_hold
        return timedelta(seconds=self.order_rehold_seconds)

    @property
    def guest_hold(self) -> timedelta:
        """A guest order's hold: the shorter of the two settings."""
        return timedelta(seconds=min(self.order_hold_seconds, self.guest_hold_seconds))

    @property
    def webhook_retention(self) -> timedelta:
        return timedelta(days=self.webhook_retention_days)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("PETSTORE_VAR_DIR", str(ROOT / "var")))
        database_url = env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'petstore.db'}"
        secret = env.get("PETSTORE_JWT_SECRET") or _load_or_create_secret(var_dir / "jwt-secret")
        public_url = (env.get("PETSTORE_PUBLIC_URL") or "").rstrip("/") or None
        private_key, key_source = _configured_keys(env)
        return cls(
            database_url=normalize_database_url(database_url),
            jwt_secret=secret,
            var_dir=var_dir,
            jwt_issuer=public_url or DEFAULT_ISSUER,
            jwt_private_key=private_key,
            jwt_private_key_source=key_source,
            token_ttl_seconds=int(env.get("PETSTORE_TOKEN_TTL", 24 * 3600)),
            rate_limit_per_minute=int(env.get("PETSTORE_RATE_LIMIT", 600)),
            register_rate_limit_per_hour=int(env.get("PETSTORE_REGISTER_RATE_LIMIT", 20)),
            password_hash_queue=max(1, int(env.get("PETSTORE_PASSWORD_HASH_QUEUE", 16))),
            allowed_hosts=tuple(
                h.strip().lower()
                for h in env.get("PETSTORE_ALLOWED_HOSTS", "").split(",")
                if h.strip()
            ),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("PETSTORE_REDIS_PREFIX", "petstore:"),
            public_url=public_url,
            role_cache_seconds=float(env.get("PETSTORE_ROLE_CACHE_SECONDS", 5)),
            validate_responses=_bool(env.get("PETSTORE_VALIDATE_RESPONSES"), True),
            max_body_bytes=int(env.get("PETSTORE_MAX_BODY_BYTES", 1024 * 1024)),
            login_max_failures=int(env.get("PETSTORE_LOGIN_MAX_FAILURES", 5)),
            login_backoff_max_seconds=float(env.get("PETSTORE_LOGIN_BACKOFF_MAX_SECONDS", 2)),
            login_rate_limit_per_minute=int(env.get("PETSTORE_LOGIN_RATE_LIMIT", 20)),
            admin_username=env.get("PETSTORE_ADMIN_USERNAME") or None,
            admin_password=env.get("PETSTORE_ADMIN_PASSWORD") or None,
            admin_email=env.get("PETSTORE_ADMIN_EMAIL") or None,
            admin_promote_existing=_bool(env.get("PETSTORE_ADMIN_PROMOTE_EXISTING"), False),
            workers=_workers(env),
            log_json=_bool(env.get("PETSTORE_LOG_JSON"), True),
            order_hold_seconds=int(env.get("PETSTORE_ORDER_HOLD_SECONDS", 1800)),
            guest_hold_seconds=int(env.get("PETSTORE_GUEST_HOLD_SECONDS", 600)),
            order_hold_limit=int(env.get("PETSTORE_ORDER_HOLD_LIMIT", 3)),
            order_rehold_seconds=(
                int(env["PETSTORE_ORDER_REHOLD_SECONDS"])
                if env.get("PETSTORE_ORDER_REHOLD_SECONDS")
                else None
            ),
            order_rate_limit_per_minute=int(env.get("PETSTORE_ORDER_RATE_LIMIT", 10)),
            webhook_worker=_bool(env.get("PETSTORE_WEBHOOK_WORKER"), True),
            webhook_poll_seconds=float(env.get("PETSTORE_WEBHOOK_POLL_SECONDS", 1.0)),
            webhook_backoff_seconds=float(env.get("PETSTORE_WEBHOOK_BACKOFF_SECONDS", 10.0)),
            webhook_max_attempts=int(env.get("PETSTORE_WEBHOOK_MAX_ATTEMPTS", 8)),
            webhook_timeout_seconds=float(env.get("PETSTORE_WEBHOOK_TIMEOUT_SECONDS", 10.0)),
            webhook_allow_loopback=_bool(env.get("PETSTORE_WEBHOOK_ALLOW_LOOPBACK"), False),
            webhook_allowed_ports=_ports(env.get("PETSTORE_WEBHOOK_ALLOWED_PORTS") or "80,443"),
            webhook_concurrency=max(1, int(env.get("PETSTORE_WEBHOOK_CONCURRENCY", 32))),
            webhook_per_host=max(1, int(env.get("PETSTORE_WEBHOOK_PER_HOST", 4))),
            webhook_per_owner=max(1, int(env.get("PETSTORE_WEBHOOK_PER_OWNER", 4))),
            webhook_retention_days=float(env.get("PETSTORE_WEBHOOK_RETENTION_DAYS", 30)),
            callbacks_per_order=int(env.get("PETSTORE_CALLBACKS_PER_ORDER", 5)),
            callbacks_per_hour=int(env.get("PETSTORE_CALLBACKS_PER_HOUR", 20)),
            knowledge_dir=Path(env.get("PETSTORE_KNOWLEDGE_DIR") or ROOT / "knowledge"),
            chat_rate_limit_per_minute=int(env.get("PETSTORE_CHAT_RATE_LIMIT", 20)),
            chat_pace_ms=int(env.get("PETSTORE_CHAT_PACE_MS", 0)),
            chat_upstream_url=(env.get("PETSTORE_CHAT_UPSTREAM_URL") or "").rstrip("/") or None,
            chat_upstream_key=env.get("PETSTORE_CHAT_UPSTREAM_KEY") or None,
            chat_upstream_model=env.get("PETSTORE_CHAT_UPSTREAM_MODEL") or None,
            chat_upstream_timeout=float(env.get("PETSTORE_CHAT_UPSTREAM_TIMEOUT", 30)),
            chat_max_tokens=max(1, int(env.get("PETSTORE_CHAT_MAX_TOKENS", 1024))),
            read_cache_entries=max(0, int(env.get("PETSTORE_READ_CACHE_SIZE", 256))),
            read_cache_seconds=float(env.get("PETSTORE_READ_CACHE_SECONDS", 60)),
            media_dir=Path(env.get("PETSTORE_MEDIA_DIR") or var_dir / "media"),
            media_s3_bucket=env.get("PETSTORE_MEDIA_S3_BUCKET") or None,
            media_s3_prefix=env.get("PETSTORE_MEDIA_S3_PREFIX", ""),
            media_s3_endpoint=env.get("PETSTORE_MEDIA_S3_ENDPOINT") or None,
            media_s3_region=env.get("PETSTORE_MEDIA_S3_REGION") or None,
            image_max_bytes=int(env.get("PETSTORE_IMAGE_MAX_BYTES", 5 * 1024 * 1024)),
            image_max_pixels=int(env.get("PETSTORE_IMAGE_MAX_PIXELS", 40_000_000)),
            image_decode_slots=max(1, int(env.get("PETSTORE_IMAGE_DECODE_SLOTS", 1))),
            graphiql=_bool(env.get("PETSTORE_GRAPHIQL"), False),
            graphql_max_depth=int(env.get("PETSTORE_GRAPHQL_MAX_DEPTH", 15)),
            graphql_max_cost=int(env.get("PETSTORE_GRAPHQL_MAX_COST", 1000)),
            metrics_token=env.get("PETSTORE_METRICS_TOKEN") or None,
            oauth_rate_limit_per_minute=int(env.get("PETSTORE_OAUTH_RATE_LIMIT", 60)),
            oauth_code_ttl_seconds=int(env.get("PETSTORE_OAUTH_CODE_TTL", 60)),
            oauth_refresh_ttl_seconds=int(env.get("PETSTORE_OAUTH_REFRESH_TTL", 30 * 24 * 3600)),
            oauth_device_ttl_seconds=int(env.get("PETSTORE_OAUTH_DEVICE_TTL", 600)),
            oauth_device_interval_seconds=int(env.get("PETSTORE_OAUTH_DEVICE_INTERVAL", 5)),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _configured_keys(env: dict[str, str]) -> tuple[str | None, str]:
    """The PEM text of PETSTORE_JWT_PRIVATE_KEY or of the file PETSTORE_JWT_PRIVATE_KEY_FILE
    names (at most one of them), and which setting it came from."""
    text, path = env.get("PETSTORE_JWT_PRIVATE_KEY"), env.get("PETSTORE_JWT_PRIVATE_KEY_FILE")
    if text and path:
        raise ConfigError(
            "PETSTORE_JWT_PRIVATE_KEY and PETSTORE_JWT_PRIVATE_KEY_FILE are both set; set one"
        )
    if path:
        try:
            return Path(path).read_text(), "PETSTORE_JWT_PRIVATE_KEY_FILE"
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"PETSTORE_JWT_PRIVATE_KEY_FILE: cannot read {path}: {exc}") from exc
    return text or None, "PETSTORE_JWT_PRIVATE_KEY"


def _workers(env: dict[str, str]) -> int:
    """How many worker processes serve this app: PETSTORE_WORKERS (under gunicorn,
    gunicorn.conf.py sets it to the real worker count), else WEB_CONCURRENCY (gunicorn's and
    uvicorn's convention), else 1."""
    raw = env.get("PETSTORE_WORKERS") or env.get("WEB_CONCURRENCY") or "1"
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def normalize_database_url(url: str) -> str:
    """Accept ``sqlite:///``, ``postgresql://`` and async driver names; pick the sync drivers
    the units of work use (sqlite3, psycopg 3)."""
    scheme, _, rest = url.partition("://")
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+pysqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg_async"):
        return f"postgresql+psycopg://{rest}"
    return url
