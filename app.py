"""Composition root: ``create_app(settings)`` builds the one ASGI app (nothing is built at import).

Run: ``uvicorn --factory app:app_from_env`` (see Makefile).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import yaml
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from connexion import AsyncApp
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from connexion.utils import get_function_from_name
from sqlalchemy import text

from auth.keys import key_ring
from auth.principals import Authenticator
from auth.security import bearer_scopes, routed_operation_id
from auth.tokens import TokenService
from handlers import problems
from handlers.fastpath import CachedReadMiddleware
from infra.counters import MemoryCounterStore, RedisCounterStore
from infra.llm import OpenAICompatibleModel
from infra.media import media_store
from infra.payments import TestProcessor
from infra.versions import RedisVersions
from infra.webhooks import HttpSender
from logconfig import configure_logging
from models import Pet
from models.base import SHARED_POOL
from models.database import Database
from protocols.graphql_api import GRAPHQL_PATH, GraphQLMiddleware
from protocols.oauth.asgi import (
    DEVICE_BUDGET,
    LOGIN_BUDGET,
    REGISTER_BUDGET,
    TOKEN_BUDGET,
    OAuthMiddleware,
)
from services.accounts import passwords
from services.accounts.roles import RoleLookup
from services.accounts.users import UserService, ensure_admin, purge_revoked_tokens
from services.admin.service import AdminService
from services.catalogue.cached import CachedInventoryService, CachedPetService
from services.chat import ChatService, KnowledgeBase
from services.media.images import ImageService
from services.media.imaging import ImageLimits
from services.oauth.service import OAuthPolicy, OAuthService
from services.orders.service import ORDER_BUDGET, OrderService
from services.shared import idempotency
from services.shared.ratelimit import RateLimiter
from services.shared.readcache import DisabledVersions, MemoryVersions, ReadCache, Versions
from services.shared.secrets import SecretBox
from services.shared.throttle import FailureThrottle
from services.webhooks import delivery
from services.webhooks.subscriptions import CallbackLimits, UrlPolicy, WebhookService
from settings import ADMIN_PREFIX, API_PREFIX, ROOT, Settings, make_private_dir
from web.container import Container
from web.docs import DocsMiddleware
from web.health import Check, HealthMiddleware
from web.jwks import JwksMiddleware
from web.metrics import MetricsMiddleware, prepare_multiprocess, spec_operations
from web.middleware import (
    RateLimitMiddleware,
    RequestContextMiddleware,
    RequestGuard,
    spec_media_types,
    spec_routes,
)
from web.openapi_walk import QUERY_AS_POST, iter_operations
from web.operations import use_prepared_operations
from web.validators import validator_map

SPEC_PATH = ROOT / "spec" / "openapi.yaml"
ADMIN_SPEC_PATH = ROOT / "spec" / "admin.yaml"  # the Admin API module, under ADMIN_PREFIX
ADMIN_PATH = ADMIN_PREFIX.removeprefix(API_PREFIX)  # "/admin": its paths below the API's
CHAT_PATH = f"{API_PREFIX}/chat/completions"  # has a per-user budget of its own
LOGIN_PATH = f"{API_PREFIX}/auth/tokens"  # has a per-address budget of its own
USERS_PATH = f"{API_PREFIX}/users"  # registration: an hourly budget per client address
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and additionalMetadata around the file
log = logging.getLogger("petstore")


class _OrjsonModule:
    """Connexion's Jsonifier takes a json-like module; orjson measured +15% on list responses."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    @staticmethod
    def loads(data: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(data)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def resolve_handler(dotted: str) -> Any:
    """``handlers.pets.listPets`` → ``handlers.pets.list_pets``: plain camelCase operationIds in
    the spec (clean SDK and Arazzo names), snake_case functions in Python."""
    module, _, operation = dotted.rpartition(".")
    return get_function_from_name(f"{module}.{_snake(operation)}")


def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    return spec


def _shadows(earlier: str, later: str) -> bool:
    """Whether a request for ``later`` would match the template ``earlier`` first."""
    a, b = earlier.split("/"), later.split("/")
    if len(a) != len(b):
        return False
    pairs = list(zip(a, b, strict=True))
    return all(x == y or x.startswith("{") for x, y in pairs) and any(
        x.startswith("{") and not y.startswith("{") for x, y in pairs
    )


def routing_order(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with each path moved ahead of the templates that would shadow it (the router
    tries routes in order, and the spec is written in the seed's navigation order, where
    ``/pets/{id}`` comes before ``/pets/search``); everything else keeps the written order."""
    ordered: list[str] = []
    for path in spec["paths"]:
        at = next((i for i, seen in enumerate(ordered) if _shadows(seen, path)), len(ordered))
        ordered.insert(at, path)
    return {**spec, "paths": {path: spec["paths"][path] for path in ordered}}


ORDER_SWEEP_SECONDS = 30.0


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run a system job periodically until cancelled; a failing run is logged, not fatal."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("background job failed")
        await asyncio.sleep(seconds)


async def _housekeeping(container: Container) -> None:
    """Settle payments an interrupted request left PROCESSING; refund voided payments still
    owed; cancel unpaid orders past their hold; forget idempotency keys older than 24 h; purge
    webhook deliveries delivered or dead longer than the retention period, logged-out tokens
    that have expired anyway, and signing keys superseded longer ago than a token lives."""
    await container.orders.housekeeping()
    await idempotency.purge_expired(container.db)
    await delivery.purge_finished(container.db, container.settings.webhook_retention)
    await purge_revoked_tokens(container.db)
    await anyio.to_thread.run_sync(
        container.tokens.keys.prune, container.settings.token_ttl_seconds
    )


def delivery_policy(settings: Settings) -> delivery.DeliveryPolicy:
    return delivery.DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        backoff_base=settings.webhook_backoff_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_loopback=settings.webhook_allow_loopback,
        allowed_ports=settings.webhook_allowed_ports,
        secrets=SecretBox(settings.jwt_secret),
        concurrency=settings.webhook_concurrency,
        per_host=settings.webhook_per_host,
        per_owner=settings.webhook_per_owner,
    )


def read_cache(settings: Settings, db: Database) -> ReadCache:
    """The read cache and its versions: in Redis when REDIS_URL is set (shared by the workers),
    in process for one worker, none for several workers without Redis (each would miss the
    others' writes). Every write unit of work that changes a pet bumps its tenant's version."""
    versions: Versions
    if settings.redis_url:
        versions = RedisVersions(settings.redis_url, settings.redis_prefix)
    elif settings.workers == 1:
        versions = MemoryVersions()
    else:
        versions = DisabledVersions()
    db.watch((Pet,), versions.bump)
    return ReadCache(versions, settings.read_cache_entries, settings.read_cache_seconds)


def build_container(settings: Settings) -> Container:
    passwords.HASHES.configure(settings.password_hash_queue)  # per process
    make_private_dir(settings.var_dir)  # before anything (SQLite, media, keys) is put there
    counters: Any = (
        RedisCounterStore(settings.redis_url, settings.redis_prefix)
        if settings.redis_url
        else MemoryCounterStore()
    )
    db = Database(settings.database_url)
    cache = read_cache(settings, db)
    upstream = (
        OpenAICompatibleModel(
            settings.chat_upstream_url, settings.chat_upstream_key, settings.chat_upstream_timeout
        )
        if settings.chat_upstream_url and settings.chat_upstream_key
        else None
    )
    chat = ChatService(
        KnowledgeBase.load(settings.knowledge_dir),  # BM25 index built once, here
        db,
        upstream=upstream,
        upstream_model=settings.chat_upstream_model,
        pace_seconds=settings.chat_pace_ms / 1000,
        default_max_tokens=settings.chat_max_tokens,
    )
    roles = RoleLookup(db, settings.role_cache_seconds)
    tokens = TokenService(key_ring(settings), settings.jwt_issuer, settings.token_ttl_seconds)
    processor = TestProcessor()
    images = ImageService(
        db,
        media_store(settings),
        ImageLimits(max_bytes=settings.image_max_bytes, max_pixels=settings.image_max_pixels),
        settings.image_decode_slots,
    )
    orders = OrderService(
        db,
        processor,
        settings.order_hold,
        f"{settings.public_url}{API_PREFIX}" if settings.public_url else API_PREFIX,
        guest_hold=settings.guest_hold,
        max_unpaid=settings.order_hold_limit,
        rehold=settings.order_rehold,
        budget=RateLimiter(counters, 0, {ORDER_BUDGET: settings.order_rate_limit_per_minute}),
        client_secret=hmac.new(
            settings.jwt_secret.encode(), b"petstore guest clients v1", hashlib.sha256
        ).digest(),
    )
    users = UserService(
        db,
        FailureThrottle(
            counters,
            settings.login_max_failures,
            settings.login_window_seconds,
            backoff_max=settings.login_backoff_max_seconds,
        ),
        roles,
        tokens,
    )
    oauth_budget = settings.oauth_rate_limit_per_minute
    return Container(
        settings=settings,
        db=db,
        tokens=tokens,
        auth=Authenticator(tokens, roles),
        counters=counters,
        rate_limiter=RateLimiter(
            counters,
            settings.rate_limit_per_minute,
            {
                CHAT_PATH: settings.chat_rate_limit_per_minute,
                LOGIN_PATH: settings.login_rate_limit_per_minute,
                USERS_PATH: (settings.register_rate_limit_per_hour, 3600),
                TOKEN_BUDGET: oauth_budget,
                DEVICE_BUDGET: oauth_budget,
                LOGIN_BUDGET: settings.login_rate_limit_per_minute,
                REGISTER_BUDGET: (settings.register_rate_limit_per_hour, 3600),
            },
        ),
        roles=roles,
        processor=processor,
        sender=HttpSender(),
        pets=CachedPetService(db, cache, files=images),
        inventory=CachedInventoryService(db, cache),
        cache=cache,
        orders=orders,
        users=users,
        webhooks=WebhookService(
            db,
            SecretBox(settings.jwt_secret),
            counters,
            urls=UrlPolicy(settings.webhook_allow_loopback, settings.webhook_allowed_ports),
            callbacks=CallbackLimits(settings.callbacks_per_order, settings.callbacks_per_hour),
        ),
        chat=chat,
        upstream=upstream,
        images=images,
        admin=AdminService(db, roles, orders),
        oauth=OAuthService(
            db,
            tokens,
            users,
            roles,
            OAuthPolicy(
                code_ttl=settings.oauth_code_ttl_seconds,
                refresh_ttl=settings.oauth_refresh_ttl_seconds,
                device_ttl=settings.oauth_device_ttl_seconds,
                device_interval=settings.oauth_device_interval_seconds,
            ),
        ),
    )


def shared_counters_warning(settings: Settings) -> str | None:
    """Why the configured limits do not hold as written, if they do not: without Redis every
    worker process counts on its own, so N workers allow N times every rate limit, login
    throttle and budget."""
    if settings.workers > 1 and not settings.redis_url:
        return (
            f"{settings.workers} workers without REDIS_URL: rate limits and login throttling "
            f"are counted per worker, so every limit is effectively {settings.workers} times "
            "higher; set REDIS_URL to share the counters"
        )
    return None


def migrations_head() -> str:
    """The newest Alembic revision this code expects the database to be at."""
    head = ScriptDirectory.from_config(AlembicConfig(str(ROOT / "alembic.ini"))).get_current_head()
    if head is None:
        raise RuntimeError("no Alembic revisions found")
    return head


def readiness_checks(settings: Settings, container: Container) -> dict[str, Check]:
    """What /readyz checks: the database answers, its schema is at this code's migration head,
    and Redis answers when REDIS_URL is set (the shared counters)."""
    head = migrations_head()

    async def database() -> str:
        await container.db.run(SHARED_POOL, lambda s: s.execute(text("SELECT 1")).scalar())
        return "ok"

    async def migrations() -> str:
        current = await container.db.run(
            SHARED_POOL,
            lambda s: s.execute(text("SELECT version_num FROM alembic_version")).scalar(),
        )
        if current != head:
            raise RuntimeError(f"database at revision {current}, code expects {head}")
        return str(current)

    async def redis() -> str:
        if not settings.redis_url:
            return "not configured"
        await container.counters.ping()
        return "ok"

    return {"database": database, "migrations": migrations, "redis": redis}


_FROZEN = False


def freeze_startup_objects() -> None:
    """Once per process, when the app has started: collect, then move every object alive now
    (modules, the specs, the middleware stack, the GraphQL schema...) out of the cyclic garbage
    collector's generations (``gc.freeze``). They live as long as the process; scanning them
    again in every full collection was the tail latency: wrk -t2 -c32 on the repeated list, one
    uvicorn worker, idle 2-core box, p99 83 / 91 ms without, 24 ms with, p50 unchanged
    (README "Measured decisions"). It also keeps forked workers' pages shared."""
    global _FROZEN
    if _FROZEN:
        return
    _FROZEN = True
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> AsyncApp:
    warning = shared_counters_warning(settings)
    if warning:
        log.warning(warning)
    container = build_container(settings)
    spec = routing_order(load_spec())  # the written order is for readers; routes need this one
    admin_spec = routing_order(load_spec(ADMIN_SPEC_PATH))
    container.operation_scopes = {
        (base_path, routed_operation_id(op)): scopes
        for document, base_path in ((admin_spec, ADMIN_PREFIX), (spec, API_PREFIX))
        for _, _, op in iter_operations(document)
        if (scopes := bearer_scopes(op, document.get("security"))) is not None
    }

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if settings.admin_username and settings.admin_password:
            await ensure_admin(
                container.db,
                SHARED_POOL,
                settings.admin_username,
                settings.admin_password,
                settings.admin_email,
                promote_existing=settings.admin_promote_existing,
            )
            log.info("admin account ensured", extra={"username": settings.admin_username})
        jobs: list[asyncio.Task[None]] = []
        if settings.webhook_worker:
            policy = delivery_policy(settings)
            jobs.append(
                asyncio.create_task(
                    delivery.run_worker(
                        container.db, container.sender, policy, settings.webhook_poll_seconds
                    ),
                    name="webhook-delivery",
                )
            )
            jobs.append(
                asyncio.create_task(
                    _every(ORDER_SWEEP_SECONDS, lambda: _housekeeping(container)),
                    name="housekeeping",
                )
            )
        freeze_startup_objects()
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            for job in jobs:
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await container.close()

    app = AsyncApp(
        __name__,
        specification_dir=str(SPEC_PATH.parent),
        jsonifier=Jsonifier(_OrjsonModule),
        lifespan=lifespan,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/ui"),
    )
    use_prepared_operations(app)  # each handler decorated once, not per request (web/operations)
    # The Admin API first: the router tries the mounts in order, and /v1 would take /v1/admin/...
    for module, base_path in ((admin_spec, ADMIN_PREFIX), (spec, API_PREFIX)):
        app.add_api(
            module,
            base_path=base_path,
            resolver=Resolver(function_resolver=resolve_handler),
            strict_validation=True,
            validate_responses=settings.validate_responses,
            validator_map=validator_map(),
        )
    problems.register(app)
    app.add_middleware(  # outermost: probes bypass the Host allow-list and the rate limits
        HealthMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        checks=readiness_checks(settings, container),
        warnings=[warning] if warning else [],
    )
    if settings.metrics_token:  # inside the probes (not counted), outside everything else
        multiprocess = settings.workers > 1
        if multiprocess:
            prepare_multiprocess(settings.var_dir / "metrics", make_private_dir)
        operations = spec_operations(admin_spec, ADMIN_PREFIX) + spec_operations(spec, API_PREFIX)
        app.add_middleware(
            MetricsMiddleware,
            position=MiddlewarePosition.BEFORE_EXCEPTION,
            operations=operations,
            token=settings.metrics_token,
            multiprocess=multiprocess,
        )
    app.add_middleware(
        RequestContextMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, container=container
    )
    app.add_middleware(
        RateLimitMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        container=container,
        path_budgets=[CHAT_PATH, LOGIN_PATH, USERS_PATH],
        exclude=[GRAPHQL_PATH, GRAPHQL_PATH + "/"],  # counted by the GraphQL adapter itself
    )
    app.add_middleware(
        RequestGuard,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        routes=spec_routes(spec) + spec_routes(admin_spec, ADMIN_PATH),
        max_body_bytes=settings.max_body_bytes,
        body_limits=[("/pets/{id}/images", "POST", settings.image_max_bytes + MULTIPART_OVERHEAD)],
        produces=spec_media_types(spec) + spec_media_types(admin_spec, ADMIN_PATH),
        query_paths=sorted(QUERY_AS_POST),
        allowed_hosts=settings.served_hosts,
    )
    app.add_middleware(  # repeated anonymous reads from the read cache (handlers/fastpath.py)
        CachedReadMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, container=container
    )
    # Innermost of ours: GraphQL requests pass the request id, access log and the guard's Host
    # check and body limit first (add_middleware inserts each BEFORE_EXCEPTION one
    # just before the exception middleware, so later ones sit inside earlier ones).
    app.add_middleware(
        GraphQLMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, container=container
    )
    app.add_middleware(  # /.well-known/jwks.json: the token-verification keys, for anyone
        JwksMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, keys=container.tokens.keys
    )
    app.add_middleware(  # /oauth and the server metadata: inside the guard, like GraphQL
        OAuthMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, container=container
    )
    app.add_middleware(  # each spec as written (refs kept) and ReDoc, beside Swagger UI
        DocsMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        specs=[(SPEC_PATH, API_PREFIX), (ADMIN_SPEC_PATH, ADMIN_PREFIX)],
    )
    app.container = container  # type: ignore[attr-defined]  # for tests and tools
    return app


def app_from_env() -> AsyncApp:
    """uvicorn --factory entry point."""
    settings = Settings.from_env()
    configure_logging(json_lines=settings.log_json)
    return create_app(settings)
