"""Authlib's authorization server, its hooks answered by services.oauth.

Authlib parses and checks the requests (client authentication, redirect URI, scope, PKCE) and
renders RFC 6749 errors; everything that reads or writes state is one service call, and each
token response is built from what the service issued through the project's one issuer (so the
grants' own token generators are never used). Where Authlib's order of steps is not atomic
(claim a code, rotate a refresh token, consume a device code), ``create_token_response`` is one
service call doing it in one transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import (
    DEVICE_CODE_GRANT_TYPE,
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    ExpiredTokenError,
    SlowDownError,
)
from flask import Flask

from protocols.oauth.bridge import call, current
from services.oauth.clients import OAUTH_SCOPES, Client
from services.oauth.service import CodeGrant, OAuthError, OAuthService, RefreshGrant, TokenSet

TOKEN_HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
]
ERRORS: dict[str, type[OAuth2Error]] = {
    "invalid_grant": InvalidGrantError,
    "authorization_pending": AuthorizationPendingError,
    "slow_down": SlowDownError,
    "expired_token": ExpiredTokenError,
    "access_denied": AccessDeniedError,
}


def service() -> OAuthService:
    oauth: OAuthService = current().container.oauth  # type: ignore[attr-defined]
    return oauth


def oauth_error(refused: OAuthError) -> OAuth2Error:
    return ERRORS.get(refused.error, InvalidGrantError)(description=refused.detail)


class ClientModel(ClientMixin):  # type: ignore[misc]
    """A services.oauth Client as Authlib asks about it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.client_id = client.client_id

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.client.redirect_uris
        return uris[0] if len(uris) == 1 else None  # several: the request must name one

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope if the client may ask for all of it (else None, which is
        ``invalid_scope``); the client's whole scope when none is requested."""
        if not scope:
            return self.client.scope
        asked = scope.split()
        if not set(asked) <= self.client.scopes:
            return None
        return " ".join(s for s in OAUTH_SCOPES if s in asked)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact match, RFC 9700 §4.1.3

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.client.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.client.allows_grant("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return self.client.allows_grant(grant_type)


def query_client(client_id: str) -> ClientModel | None:
    found = call(service().client(client_id)) if isinstance(client_id, str) else None
    return None if found is None else ClientModel(found)


def token_body(issued: TokenSet) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": issued.access.token,
        "token_type": "Bearer",
        "expires_in": issued.access.expires_in,
        "scope": issued.access.scope,
    }
    if issued.refresh:
        body["refresh_token"] = issued.refresh
    return body


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only (``plain`` is refused), required of public clients at the token
    endpoint here and at the authorization endpoint by AuthorizationCode below."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def get_authorization_code_challenge(self, authorization_code: CodeModel) -> str | None:
        return authorization_code.grant.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: CodeModel) -> str | None:
        return authorization_code.grant.code_challenge_method


class CodeModel:
    def __init__(self, code: str, grant: CodeGrant) -> None:
        self.code = code
        self.grant = grant

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope


class AuthorizationCode(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def validate_authorization_request(self) -> str:
        """Authlib's checks (client, redirect URI, scope) and then PKCE: a public client must
        send an S256 ``code_challenge`` (``plain`` is refused for everyone). Authlib itself
        only enforces PKCE at the token endpoint."""
        redirect_uri: str = super().validate_authorization_request()
        payload = self.request.payload
        method = payload.data.get("code_challenge_method")
        challenge = payload.data.get("code_challenge")
        client: ClientModel = self.request.client
        if challenge and (method or "plain") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256 ('plain' is not supported).",
                redirect_uri=redirect_uri,
            )
        if client.client.is_public and not challenge:
            raise InvalidRequestError(
                "A public client must use PKCE: code_challenge with code_challenge_method=S256.",
                redirect_uri=redirect_uri,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: Any) -> None:
        raise NotImplementedError  # codes are generated by the service: see below

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> Any:
        """The service generates and stores the code (the user must still be ACTIVE)."""
        if not grant_user:
            raise AccessDeniedError(redirect_uri=redirect_uri)
        self.request.user = grant_user
        payload = self.request.payload
        client: ClientModel = self.request.client
        code = call(
            service().issue_code(
                client.client,
                grant_user.id,
                redirect_uri,
                self.request.scope,
                payload.data.get("code_challenge"),
                payload.data.get("code_challenge_method")
                if payload.data.get("code_challenge")
                else None,
            )
        )
        params = [("code", code)]
        if payload.state:
            params.append(("state", payload.state))
        return 302, "", [("Location", add_params_to_uri(redirect_uri, params))]

    def query_authorization_code(self, code: str, client: ClientModel) -> CodeModel | None:
        found = call(service().find_code(client.client, code)) if isinstance(code, str) else None
        return None if found is None else CodeModel(code, found)

    def delete_authorization_code(self, authorization_code: CodeModel) -> None:
        """Never called: the code is claimed in create_token_response's transaction."""

    def authenticate_user(self, authorization_code: CodeModel) -> uuid.UUID:
        return authorization_code.grant.user_id

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: ClientModel = self.request.client
        code: CodeModel = self.request.authorization_code
        try:
            issued = call(service().exchange_code(client.client, code.code, current().origin))
        except OAuthError as refused:
            raise oauth_error(refused) from None
        return 200, token_body(issued), TOKEN_HEADERS


class RefreshModel:
    def __init__(self, token: str, grant: RefreshGrant) -> None:
        self.token = token
        self.grant = grant

    def check_client(self, client: ClientModel) -> bool:
        return self.grant.client_id == client.client.client_id

    def get_scope(self) -> str:
        return self.grant.scope


class RefreshToken(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshModel | None:
        client: ClientModel = self.request.client
        found = call(service().find_refresh(client.client, refresh_token))
        return None if found is None else RefreshModel(refresh_token, found)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Scope: at most the family's (Authlib refused more: ``invalid_scope``)."""
        client: ClientModel = self.request.client
        token: RefreshModel = self.request.refresh_token
        asked = self.request.payload.scope
        scope = " ".join(s for s in OAUTH_SCOPES if s in (asked or token.grant.scope).split())
        if not scope:
            raise InvalidScopeError()
        try:
            issued = call(
                service().rotate_refresh(client.client, token.token, scope, current().origin)
            )
        except OAuthError as refused:
            raise oauth_error(refused) from None
        return 200, token_body(issued), TOKEN_HEADERS


class DeviceCode(DeviceCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def validate_token_request(self) -> None:
        device_code = self.request.payload.data.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code' in payload")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'"
            )
        self.request.client = client
        self.request.device_code = device_code

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """One poll: pending, slow_down, expired, denied, or the tokens (once)."""
        client: ClientModel = self.request.client
        try:
            issued = call(
                service().poll_device(client.client, self.request.device_code, current().origin)
            )
        except OAuthError as refused:
            raise oauth_error(refused) from None
        return 200, token_body(issued), TOKEN_HEADERS

    def query_device_credential(self, device_code: str) -> None:  # pragma: no cover
        raise NotImplementedError  # poll_device does it

    def query_user_grant(self, user_code: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def should_slow_down(self, credential: Any) -> bool:  # pragma: no cover
        raise NotImplementedError


class DeviceAuthorization(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def get_verification_uri(self) -> str:
        from protocols.oauth.pages import base_url

        return f"{base_url()}/oauth/device"

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client: ClientModel = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise UnauthorizedClientError(
                "The client is not authorized to use the device authorization grant."
            )
        scope = client.get_allowed_scope(request.payload.scope)
        if scope is None:
            raise InvalidScopeError()
        started = call(service().start_device(client.client, scope))
        uri = self.get_verification_uri()
        return (
            200,
            {
                "device_code": started.device_code,
                "user_code": started.user_code,
                "verification_uri": uri,
                "verification_uri_complete": f"{uri}?user_code={started.user_code}",
                "expires_in": started.expires_in,
                "interval": started.interval,
            },
            TOKEN_HEADERS,
        )

    def save_device_credential(self, client_id: str, scope: str, data: Any) -> None:
        raise NotImplementedError  # pragma: no cover (start_device does it)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: any registered client, authenticated as it registered (a public client by
    its client_id)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client: ClientModel = self.authenticate_endpoint_client(request)
        token = request.form.get("token")
        if not token:
            raise InvalidRequestError("Missing 'token' in the request.")
        hint = request.form.get("token_type_hint")
        call(service().revoke(client.client, token, hint))
        return 200, {}, TOKEN_HEADERS


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662: confidential clients only (a secret proves who asks)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client: ClientModel = self.authenticate_endpoint_client(request)
        token = request.form.get("token")
        if not token:
            raise InvalidRequestError("Missing 'token' in the request.")
        return 200, call(service().introspect(client.client, token)), TOKEN_HEADERS

    def query_token(
        self, token_string: str, token_type_hint: str | None
    ) -> None:  # pragma: no cover
        raise NotImplementedError

    def introspect_token(self, token: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:  # pragma: no cover
        raise NotImplementedError


def build_server(app: Flask) -> AuthorizationServer:
    def save_token(token: Any, request: Any) -> None:  # pragma: no cover
        raise NotImplementedError  # every grant's create_token_response issues through services

    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.scopes_supported = list(OAUTH_SCOPES)
    server.register_grant(AuthorizationCode, [S256Only(required=True)])
    server.register_grant(RefreshToken)
    server.register_grant(DeviceCode)
    server.register_endpoint(DeviceAuthorization)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    return server


__all__ = ["ClientModel", "InvalidClientError", "build_server", "query_client"]
