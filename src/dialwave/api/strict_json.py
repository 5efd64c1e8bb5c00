"""JSON bodies are parsed strictly, in one place, before any route sees them: no NaN or Infinity (nor
a number too large for a float), no NUL character and no lone surrogate in any string or key. Such
values were stored and then broke every later read (a NaN in a simulated model, a lone surrogate in a
lead variable) or the PostgreSQL write itself (NUL in JSONB): each is a 422 naming its place."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

import ijson  # type: ignore[import-untyped]
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


def _int(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:  # as the incremental parser reads them: every body alike
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


def check_strings(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse NUL and lone surrogates anywhere in a parsed JSON value, naming the path, and values
    nested deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise _too_deep()
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
            check_strings(item, child, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, f"{path}[{i}]", depth + 1)


INCREMENTAL_BYTES = 512 * 1024  # a body this big parses in about 5 ms in one go; bigger ones in slices
SLICE_BYTES = 64 * 1024
MAX_DEPTH = 64  # arrays and objects nested deeper than this are refused (Python's parser recurses)


def loads(body: bytes) -> Any:
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError as exc:
        raise _too_deep() from exc
    check_strings(value)
    return value


def _too_deep() -> ValidationFailed:
    why = f"is nested deeper than {MAX_DEPTH} levels"
    return ValidationFailed(f"body: {why}", fields={"body": why})


# A `\uD800`-`\uDFFF` escape: the incremental parser would turn a lone one into "?" silently.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


async def parse(body: bytes) -> Any:
    """`loads`, without holding up the event loop: Python's parser is C that keeps the interpreter lock
    throughout (a 10 MB body: about 90 ms in which no other request is answered, from any thread). A
    body over INCREMENTAL_BYTES is parsed incrementally instead, a 64 KB slice at a time with the loop
    running between slices (about 5 ms each), and its strings checked in a worker thread. A body with
    surrogate escapes (a client's `ensure_ascii` emoji) takes the C parser, in a worker thread."""
    if len(body) <= INCREMENTAL_BYTES:
        return loads(body)
    if _SURROGATE_ESCAPE.search(body):
        return await asyncio.to_thread(loads, body)
    found: list[Any] = []
    parser = ijson.items_coro(_Into(found), "", use_float=True)
    try:
        for start in range(0, len(body), SLICE_BYTES):
            parser.send(body[start : start + SLICE_BYTES])
            await asyncio.sleep(0)
        parser.close()
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        said = exc.args[0] if exc.args and not isinstance(exc, UnicodeDecodeError) else str(exc)
        text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        why = f"is not valid JSON ({(text.strip().splitlines() or [type(exc).__name__])[0][:200]})"
        raise ValidationFailed(f"body: {why}", fields={"body": why}) from exc
    await asyncio.to_thread(check_strings, found[0])
    return found[0]


class _Into:
    """The incremental parser's sink: collects the document."""

    def __init__(self, into: list[Any]) -> None:
        self.into = into

    def send(self, value: Any) -> None:
        self.into.append(value)


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = await parse(await self.body())
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
