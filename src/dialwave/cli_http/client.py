"""The CLI's HTTP client of the dialwave API: every failure leaves it as one `ApiError` (a one-line
message and a hint), which `dialwave.cli.main` prints as `error: ...` / `hint: ...` with exit code 2."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
SERVE_HINT = "is `dialwave serve` running there? set --url or DIALWAVE_URL"
KEY_HINT = "pass --api-key or set DIALWAVE_API_KEY; `dialwave keys create --org NAME` makes one"


class ApiError(Exception):
    """A request that did not work, said in one line, with what to do about it."""

    def __init__(
        self, message: str, hint: str | None = None, status: int | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status
        self.fields = fields or {}  # the API's error.fields: {"schedule.windows[0].start": "why"}


@dataclass
class Event:
    """One server-sent event."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


def _error_from(response: httpx.Response) -> ApiError:
    """The API's error body (`{"error": {"message", "fields", ...}}`) as one line."""
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    message = str(error.get("message") or response.reason_phrase or "error")
    line = f"{status} {' '.join(message.split())}"
    if error.get("code"):
        line += f" ({error['code']})"
    hint = None
    if status == 401:
        hint = KEY_HINT
    elif status == 403:
        hint = "this key lacks the scope: `dialwave keys create --scope read --scope write`"
    elif status == 429 or status == 503:
        hint = f"retry in {response.headers.get('Retry-After', 'a few')} s"
    elif status >= 500 and error.get("request_id"):
        hint = f"quote request_id {error['request_id']} when reporting"
    fields = error.get("fields")
    return ApiError(line, hint, status, {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {})


class Api:
    """A small synchronous client: JSON in and out, the API's pagination, CSV uploads and the event stream."""

    def __init__(self, url: str, api_key: str | None, timeout: float = 30.0) -> None:
        if not api_key:
            raise ApiError("no API key", KEY_HINT)
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "dialwave-cli"}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def unreachable(self, exc: httpx.TransportError) -> NoReturn:
        """Raise the ApiError for a server that could not be reached."""
        if isinstance(exc, httpx.TimeoutException):
            raise ApiError(f"{self.url} did not answer in time ({type(exc).__name__})", SERVE_HINT) from exc
        raise ApiError(f"cannot reach {self.url} ({type(exc).__name__}: {exc})", SERVE_HINT) from exc

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a request that succeeded (2xx); anything else is an ApiError."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.InvalidURL as exc:
            raise ApiError(f"not a URL: {self.url} ({exc})", "set --url or DIALWAVE_URL") from exc
        except httpx.TransportError as exc:
            self.unreachable(exc)
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"{method} {path} answered {response.status_code} without JSON", SERVE_HINT) from exc

    def get(self, path: str, **params: Any) -> Any:
        return self.json("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.json("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.json("PATCH", path, json=body, headers=headers or {})

    def delete(self, path: str, **params: Any) -> None:
        self.request("DELETE", path, params={k: v for k, v in params.items() if v is not None})

    def listing(self, path: str, limit: int, **params: Any) -> dict[str, Any]:
        """Up to `limit` items (0: all) of a list, following `next_cursor`; the API's shape
        (`{"data": [...], "next_cursor": ...}`) with the cursor after the last item returned."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            want = 500 if limit == 0 else min(500, limit - len(items))
            page = self.get(path, **params, limit=want, cursor=cursor)
            items.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor or (limit and len(items) >= limit):
                return {"data": items, "next_cursor": cursor}

    def upload(self, path: str, chunks: Iterable[bytes], size: int, params: dict[str, Any]) -> Any:
        """POST a CSV body from `chunks` (streamed, never read whole) and return the JSON answer."""
        headers = {"Content-Type": "text/csv", "Content-Length": str(size)}
        timeout = httpx.Timeout(30.0, read=None)  # a big import is answered when it is stored
        query = {k: v for k, v in params.items() if v is not None}
        return self.json("POST", path, content=chunks, headers=headers, params=query, timeout=timeout)

    def events(self, path: str, read_timeout: float) -> Iterator[Event]:
        """The server-sent events of `path` until the server ends the stream. A dropped connection or a
        read timeout raises httpx.TransportError (the caller decides whether to reconnect); an error answer
        before the stream is an ApiError."""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        with self._http.stream("GET", path, timeout=timeout, headers={"Accept": "text/event-stream"}) as response:
            if response.status_code >= 400:
                response.read()
                raise _error_from(response)
            name, data = "message", []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "":
                    if data:
                        yield Event(name, json.loads("\n".join(data)))
                    elif name != "message":
                        yield Event(name)
                    name, data = "message", []
            if data:
                yield Event(name, json.loads("\n".join(data)))
