"""Request dependencies: what the app was given (`AppContext`: settings, database, clock, URL guard,
the engine handle) and the caller's principal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Optional

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, create_model

from dialwave.clock import Clock
from dialwave.config import Settings
from dialwave.domain import call_tokens
from dialwave.engine.handle import EngineHandle
from dialwave.errors import ValidationFailed
from dialwave.metrics import Metrics
from dialwave.services import calls as calls_service
from dialwave.services.auth import Principal, authenticate
from dialwave.services.rate_limits import RateLimiter
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer dw_live_...")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(frozen=True)
class AppContext:
    """Everything the routes use that the composition root made (kept as `app.state.context`)."""

    settings: Settings
    db: Database
    clock: Clock
    url_guard: UrlGuard  # the SSRF policy for URLs saved through the API
    engine: EngineHandle  # the dispatcher in this process (a no-op one in an API-only process)
    limiter: RateLimiter  # requests a second per API key
    metrics: Metrics  # this process's registry (its engine and webhook worker count into it)


def context_of(app: Any) -> AppContext:
    context: AppContext = app.state.context
    return context


def get_context(request: Request) -> AppContext:
    return context_of(request.app)


def get_db(request: Request) -> Database:
    return context_of(request.app).db


def get_settings(request: Request) -> Settings:
    return context_of(request.app).settings


def get_now(request: Request) -> datetime:
    return context_of(request.app).clock.now()


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    who: Principal | None = getattr(request.state, "principal", None)  # checked before the body was read
    if who is None:
        key = x_api_key or (credentials.credentials if credentials else None)
        who = await authenticate(get_db(request), key)
        await get_context(request).limiter.admit(get_db(request), who)
    request.state.organization_id = who.organization_id
    return who


async def reader(who: Annotated[Principal, Depends(principal)]) -> Principal:
    who.require("read")
    return who


async def writer(who: Annotated[Principal, Depends(principal)]) -> Principal:
    who.require("write")
    return who


_declared: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters an operation declares (its own and its dependencies')."""
    names = _declared.get(id(route))
    if names is None:
        found: set[str] = set()
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            found.update(p.alias for p in dependant.query_params)
            stack.extend(dependant.dependencies)
        names = _declared[id(route)] = frozenset(found)
    return names


async def known_query(request: Request) -> None:
    """A query parameter the operation does not take is a 422 naming it, never silently ignored."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    declared = _query_names(route)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "none"
        raise ValidationFailed(
            f"{unknown[0]}: unknown query parameter (this operation takes: {takes})",
            fields={name: "unknown query parameter" for name in unknown},
        )


def get_engine(request: Request) -> EngineHandle:
    """The dispatcher in this process: tell it (`signal`) that an organization's or a campaign's guards
    changed, after the change is committed and before answering."""
    return context_of(request.app).engine


def _call_org(scope: str) -> Any:
    async def call_org(
        call_id: str,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        x_api_key: Annotated[str | None, Depends(api_key_header)],
    ) -> str:
        """Routes of one call: its per-call token (what the agent runtime holds), or an API key with
        `scope`. Returns the call's organization."""
        key = x_api_key or (credentials.credentials if credentials else None)
        if call_tokens.is_call_token(key):
            assert key is not None
            grace = timedelta(seconds=get_settings(request).call_token_grace_seconds)
            org_id = await calls_service.call_of_token(get_db(request), key, call_id, get_now(request), grace)
            request.state.organization_id = org_id
            return org_id
        who = await principal(request, credentials, x_api_key)
        who.require(scope)
        return who.organization_id

    return call_org


def get_guard(request: Request) -> UrlGuard:
    return context_of(request.app).url_guard


Reader = Annotated[Principal, Depends(reader)]
CallReader = Annotated[str, Depends(_call_org("read"))]
CallWriter = Annotated[str, Depends(_call_org("write"))]
Writer = Annotated[Principal, Depends(writer)]
Db = Annotated[Database, Depends(get_db)]
Now = Annotated[datetime, Depends(get_now)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Engine = Annotated[EngineHandle, Depends(get_engine)]
Guard = Annotated[UrlGuard, Depends(get_guard)]
Context = Annotated[AppContext, Depends(get_context)]


def partial(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A merge-patch body: every field optional and nullable (null clears), unknown keys left to the service."""
    fields: dict[str, Any] = {
        key: (Optional[field.annotation], None)  # noqa: UP045 - built at run time from a type object
        for key, field in model.model_fields.items()
    }
    return create_model(name, __config__=ConfigDict(extra="allow"), **fields)
