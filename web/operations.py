"""Connexion's per-operation wrapper, prepared once per operation instead of on every request.

Connexion 3.3's ``AsyncOperation.fn`` builds a ``StarletteDecorator`` on every call, and that
decorator's wrapper decorates the handler again on every call: ``inspect.signature`` of the
handler, new parameter and response decorators, a new URI parser from the operation's
parameters. None of it depends on the request (the handler, its signature and the operation's
parameter definitions are fixed when the spec is loaded); profiled with ``bench.profile``, it was
~9% of a GET of one pet in process. Here it is built on an operation's first request and kept:
each request still gets its own ``ConnexionRequest``, parameters parsed and validated as before.

Installed by ``use_prepared_operations(app)`` before the specs are added (it sets the API class
of the app's inner ASGI app); ``tests/api/test_operations.py`` fails if a Connexion upgrade stops
it from applying.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from connexion import AsyncApp
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.operations import AbstractOperation


class PreparedDecorator(StarletteDecorator):
    def __call__(self, function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        prepared: tuple[Any, Callable[..., Awaitable[Any]]] | None = None

        @functools.wraps(function)
        async def wrapper(*_args: Any, **_kwargs: Any) -> Any:
            nonlocal prepared
            if prepared is None:  # needs the operation in Connexion's context: the first call
                prepared = (self.uri_parser, self.decorate(function))
            uri_parser, decorated = prepared
            request = self.framework.get_request(
                uri_parser=uri_parser, scope=scope, receive=receive
            )
            return await decorated(request)

        return wrapper


class PreparedOperation(AsyncOperation):
    _prepared: Callable[..., Awaitable[Any]] | None = None

    @property
    def fn(self) -> Callable[..., Awaitable[Any]]:
        if self._prepared is None:
            decorator = PreparedDecorator(
                pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
            )
            self._prepared = decorator(self._fn)
        return self._prepared


class PreparedApi(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return PreparedOperation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


def use_prepared_operations(app: AsyncApp) -> None:
    """Make the APIs added to ``app`` from now on use PreparedOperation."""
    app._middleware_app.api_cls = PreparedApi  # type: ignore[misc]
