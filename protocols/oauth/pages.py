"""The Flask application behind ``/oauth`` and ``/.well-known/oauth-authorization-server``:
the authorization endpoint with its login and consent page, the token, device authorization,
revocation, introspection and registration endpoints, the device verification page and the
server metadata (RFC 8414).

Pages are Jinja templates (autoescaped: a client's name or a typed user code is shown as text);
every form carries the session's CSRF token, compared in constant time before anything else.
The session is Flask's signed cookie (HttpOnly, SameSite=Lax, path /oauth) holding who signed in
on these pages, in which tenant, and the CSRF token. An unknown client or a redirect URI that is
not the client's, exactly, gets an error page, never a redirect.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Flask, Response, jsonify, render_template, request, session

from auth.principals import bearer_token
from protocols.oauth.bridge import call, current
from protocols.oauth.server import build_server, service
from services.oauth.clients import (
    AUTH_METHODS,
    GRANT_TYPES,
    OAUTH_SCOPES,
    SCOPE_WORDS,
    Client,
    ClientData,
    RegistrationError,
)
from services.oauth.service import OAuthError, SignedIn
from services.shared.errors import AuthenticationFailed, DomainError, Forbidden, TooManyAttempts

METADATA_PATH = "/.well-known/oauth-authorization-server"
CSRF_FIELD = "csrf_token"
FORM_LIMIT = 64 * 1024  # the pages' and endpoints' forms are small; tighter than the guard's 1 MiB
SESSION_LIFETIME = timedelta(minutes=30)
"""How long the pages' signed session cookie is honoured after it was last written (a sign-in
or a new CSRF token): Flask refuses an older signature, so a sign-in on a shared browser does
not outlive a short visit; the cookie itself lasts until the browser closes."""
INSUFFICIENT = 'Bearer realm="petstore", error="insufficient_scope", scope="admin"'


@dataclass(frozen=True)
class SignedInUser:
    id: uuid.UUID


def base_url() -> str:
    """Where this server is reached: PETSTORE_PUBLIC_URL, else the request's own origin."""
    settings = current().container.settings
    return settings.public_url or request.host_url.rstrip("/")


def metadata() -> dict[str, Any]:
    settings = current().container.settings
    base = base_url()
    issuer = settings.jwt_issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "device_authorization_endpoint": f"{base}/oauth/device/authorize",
        "registration_endpoint": f"{base}/oauth/register",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(OAUTH_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": [m for m in AUTH_METHODS if m != "none"],
        "service_documentation": f"{base}/v1/docs",
    }


def _csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    kept = session.get("csrf")
    return isinstance(kept, str) and bool(sent) and hmac.compare_digest(sent, kept)


def _page(template: str, status: int = 200, **context: Any) -> Response:
    body = render_template(template, csrf_token=_csrf_token(), **context)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _error_page(message: str, status: int = 400) -> Response:
    return _page("error.html", status, message=message)


def _json_error(status: int, error: str, description: str, **headers: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def _signed_in(client: Client) -> uuid.UUID | None:
    """The user signed in on these pages, if in the client's tenant, still ACTIVE and with the
    token version it signed in with (a changed password ends the pages' session too)."""
    raw, tenant, version = session.get("uid"), session.get("tenant"), session.get("ver")
    if not isinstance(raw, str) or tenant != client.tenant or not isinstance(version, int):
        return None
    try:
        signed_in = SignedIn(uuid.UUID(raw), version)
    except ValueError:
        return None
    if not call(service().still_signed_in(client.tenant, signed_in)):
        _sign_out()
        return None
    return signed_in.user_id


def _sign_out() -> None:
    """End the pages' session; a fresh CSRF token comes with the next page."""
    session.clear()


def _sign_in(client: Client) -> tuple[uuid.UUID | None, str | None, int]:
    """(user id, None, 200) or (None, message, status) from the login form."""
    username = request.form.get("username", "")[:100]
    password = request.form.get("password", "")[:128]
    if not username or not password:
        return None, "Enter your username and password.", 400
    try:
        signed_in = call(service().sign_in(client, username, password, current().origin))
    except TooManyAttempts as refused:
        return None, refused.detail, 429
    except Forbidden as refused:
        return None, refused.detail, 403
    except AuthenticationFailed:
        return None, "Invalid username or password.", 401
    except DomainError as refused:
        return None, refused.detail, 400
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session["uid"] = str(signed_in.user_id)
    session["tenant"] = client.tenant
    session["ver"] = signed_in.token_version
    return signed_in.user_id, None, 200


def _scopes(scope: str) -> list[tuple[str, str]]:
    return [(s, SCOPE_WORDS.get(s, s)) for s in scope.split()]


def create_flask_app(secret: str, *, secure_cookie: bool = False) -> Flask:
    """The pages and endpoints. ``secure_cookie``: the session cookie is sent over HTTPS only
    (set when PETSTORE_PUBLIC_URL is https)."""
    app = Flask(__name__, template_folder="templates")
    app.config.update(
        SECRET_KEY=hashlib.sha256(b"petstore oauth pages v1" + secret.encode()).hexdigest(),
        SESSION_COOKIE_NAME="petstore_oauth",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/oauth",
        SESSION_COOKIE_SECURE=secure_cookie,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=FORM_LIMIT,
        OAUTH2_SCOPES_SUPPORTED=list(OAUTH_SCOPES),
    )
    server = build_server(app)

    def authorize_grant() -> Any:
        """The validated authorization request, or the response that refuses it: an error
        page for an unknown client or a redirect URI that is not the client's (nowhere safe
        to redirect to), else the redirect with the RFC 6749 error and the ``state``."""
        try:
            return server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            if error.redirect_uri:
                return server.handle_error_response(None, error)
            return _error_page(error.description or error.error)

    @app.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        if request.method == "POST" and not _csrf_ok():
            return _error_page("The form has expired or did not come from this site.", 400)
        grant = authorize_grant()
        if isinstance(grant, Response):
            return grant
        client: Client = grant.client.client
        scopes = _scopes(grant.request.scope)
        user_id = _signed_in(client)
        if request.method == "POST" and "username" in request.form:
            user_id, problem, status = _sign_in(client)
            if user_id is None:
                return _page("login.html", status, client=client, scopes=scopes, error=problem)
        if user_id is None:
            return _page("login.html", client=client, scopes=scopes, error=None)
        decision = request.form.get("decision") if request.method == "POST" else None
        if decision not in ("allow", "deny"):
            return _page("consent.html", client=client, scopes=scopes)
        try:
            return server.create_authorization_response(
                grant_user=SignedInUser(user_id) if decision == "allow" else None, grant=grant
            )
        except DomainError as refused:  # the account was suspended or deleted meanwhile
            session.pop("uid", None)
            return _error_page(refused.detail, 403)

    @app.post("/oauth/signout")
    def sign_out() -> Any:
        """Sign out of these pages (the form on the consent and device pages)."""
        if not _csrf_ok():
            return _error_page("The form has expired or did not come from this site.", 400)
        _sign_out()
        return _page("signed_out.html")

    @app.post("/oauth/token")
    def token() -> Any:
        return server.create_token_response()

    @app.post("/oauth/device/authorize")
    def device_authorization() -> Any:
        return server.create_endpoint_response("device_authorization")

    @app.post("/oauth/revoke")
    def revoke() -> Any:
        return server.create_endpoint_response("revocation")

    @app.post("/oauth/introspect")
    def introspect() -> Any:
        return server.create_endpoint_response("introspection")

    @app.route("/oauth/device", methods=["GET", "POST"])
    def device() -> Any:
        """Verification page (RFC 8628 §3.3): the user code (typed, or from
        verification_uri_complete), a login in the client's tenant, then approve or deny."""
        typed = (request.values.get("user_code") or "")[:20]
        if request.method == "GET":
            return _page("device.html", user_code=typed, pending=None, error=None)
        if not _csrf_ok():
            return _error_page("The form has expired or did not come from this site.", 400)
        pending = call(service().pending_device(typed)) if typed else None
        if pending is None:
            return _page(
                "device.html",
                400,
                user_code=typed,
                pending=None,
                error="That code is unknown or has expired. Check it on your device.",
            )
        context: dict[str, Any] = {
            "user_code": pending.user_code,
            "pending": pending,
            "scopes": _scopes(pending.scope),
        }
        user_id = _signed_in(pending.client)
        if "username" in request.form:
            user_id, problem, status = _sign_in(pending.client)
            if user_id is None:
                return _page("device.html", status, error=problem, **context)
        if user_id is None:
            return _page("device.html", error=None, **context)
        decision = request.form.get("decision")
        if decision not in ("approve", "deny"):
            return _page("device_confirm.html", **context)
        try:
            done = call(service().decide_device(pending.user_code, user_id, decision == "approve"))
        except OAuthError:  # the account may no longer authorize
            session.pop("uid", None)
            return _error_page("This account can no longer authorize devices.", 403)
        if not done:
            return _error_page("That code is no longer waiting for an answer.", 400)
        return _page("device_done.html", approved=decision == "approve", client=pending.client)

    @app.post("/oauth/register")
    def register() -> Any:
        """RFC 7591 with an admin's bearer token (RFC 6750 errors without one)."""
        ctx = current()
        if not bearer_token(ctx.authorization):
            return _json_error(
                401,
                "invalid_token",
                "Registering a client requires an admin's bearer token.",
                WWW_Authenticate='Bearer realm="petstore", error="invalid_token"',
            )
        try:
            who = call(ctx.container.auth.principal(ctx.authorization, ctx.tenant_header))
        except Forbidden as refused:
            return _json_error(403, "insufficient_scope", refused.detail)
        except DomainError:
            return _json_error(
                401,
                "invalid_token",
                "The bearer token is invalid or expired.",
                WWW_Authenticate='Bearer realm="petstore", error="invalid_token"',
            )
        who = dataclasses.replace(who, address=ctx.origin.address, user_agent=ctx.origin.user_agent)
        if not who.is_admin:  # refused before the body is read (the service checks it too)
            return _json_error(
                403,
                "insufficient_scope",
                "Only an admin registers OAuth clients.",
                WWW_Authenticate=INSUFFICIENT,
            )
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json_error(400, "invalid_client_metadata", "The body must be a JSON object.")
        try:
            data = _client_data(body)
            registered = call(service().register_client(who, data))
        except RegistrationError as refused:
            return _json_error(400, refused.error, refused.detail)
        except Forbidden as refused:
            return _json_error(
                403,
                "insufficient_scope",
                refused.detail,
                WWW_Authenticate=INSUFFICIENT,
            )
        client = registered.client
        answer: dict[str, Any] = {
            "client_id": client.client_id,
            "client_id_issued_at": int(client.created_at.timestamp()),
            "client_name": client.name,
            "redirect_uris": list(client.redirect_uris),
            "grant_types": list(client.grant_types),
            "response_types": ["code"] if "authorization_code" in client.grant_types else [],
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "scope": client.scope,
        }
        if registered.secret is not None:
            answer["client_secret"] = registered.secret
            answer["client_secret_expires_at"] = 0
        response = jsonify(answer)
        response.status_code = 201
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(413)
    def too_large(_error: Exception) -> Response:
        """Flask's own form limit (MAX_CONTENT_LENGTH), as the guard answers its own."""
        body = {
            "type": "about:blank",
            "title": "Payload Too Large",
            "status": 413,
            "detail": f"The request body exceeds the limit of {FORM_LIMIT} bytes.",
        }
        response = jsonify(body)
        response.status_code = 413
        response.mimetype = "application/problem+json"
        return response

    @app.get(METADATA_PATH)
    def server_metadata() -> Any:
        response = jsonify(metadata())
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    return app


def _client_data(body: dict[str, Any]) -> ClientData:
    def strings(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = body.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RegistrationError(
                "invalid_redirect_uri" if name == "redirect_uris" else "invalid_client_metadata",
                f"{name}: a list of strings",
            )
        return tuple(value)

    name = body.get("client_name")
    scope = body.get("scope", " ".join(OAUTH_SCOPES))
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if not isinstance(name, str):
        raise RegistrationError("invalid_client_metadata", "client_name: required, a string")
    if not isinstance(scope, str) or not isinstance(method, str):
        raise RegistrationError(
            "invalid_client_metadata", "scope and token_endpoint_auth_method: strings"
        )
    response_types = strings("response_types", ("code",))
    if any(r != "code" for r in response_types):
        raise RegistrationError("invalid_client_metadata", "response_types: only 'code'")
    return ClientData(
        name=name,
        redirect_uris=strings("redirect_uris", ()),
        scope=scope,
        grant_types=strings("grant_types", ("authorization_code", "refresh_token")),
        token_endpoint_auth_method=method,
    )
