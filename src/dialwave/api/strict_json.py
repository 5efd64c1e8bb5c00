"""JSON bodies are parsed strictly, in one place, before any route sees them: no NaN or Infinity (nor
a number too large for a float), no NUL character and no lone surrogate in any string or key. Such
values were stored and then broke every later read (a NaN in a simulated model, a lone surrogate in a
lead variable) or the PostgreSQL write itself (NUL in JSONB): each is a 422 naming its place."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from dialwave.errors import ValidationFailed


def _constant(name: str) -> Any:
    raise ValidationFailed(f"body: {name} is not a number JSON allows", fields={"body": f"{name} is not allowed"})


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValidationFailed(f"body: {text[:40]} is too large a number", fields={"body": "number out of range"})
    return value


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def check_strings(value: Any, path: str = "") -> None:
    """Refuse NUL and lone surrogates anywhere in a parsed JSON value, naming the path."""
    if isinstance(value, str):
        why = _bad_text(value)
        if why:
            where = path or "body"
            raise ValidationFailed(f"{where}: {why}", fields={where: why})
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            why = _bad_text(str(key))
            if why:
                raise ValidationFailed(f"{path or 'body'}: a key {why}", fields={path or "body": f"a key {why}"})
            check_strings(item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, f"{path}[{i}]")


def loads(body: bytes) -> Any:
    value = json.loads(body, parse_constant=_constant, parse_float=_float)
    check_strings(value)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """Every route of the API: its JSON body goes through `loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            strict_request = StrictJSONRequest(request.scope, request.receive)
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "application/json" or content_type.endswith("+json"):
                body = await strict_request.body()
                if body:
                    # parsed here, so its 422 is ours; a syntax error FastAPI answers, naming the position
                    with contextlib.suppress(json.JSONDecodeError):
                        await strict_request.json()
            return await handler(strict_request)

        return strict
