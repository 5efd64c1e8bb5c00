"""What every dashboard page uses: the templates, the session dependencies (cookie -> principal, the
`write` scope and the CSRF token of a POST), and `WebRoute`, which answers errors as HTML pages (a
missing or ended session: a redirect to /login)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialwave.api.deps import AppContext, context_of
from dialwave.errors import DialwaveError, Forbidden, PayloadTooLarge
from dialwave.services.sessions import Session, session_of

HERE = Path(__file__).parent
SESSION_COOKIE = "dw_session"
LOGIN_COOKIE = "dw_login"  # the sign-in form's CSRF token (double submit: cookie and hidden field)
CSRF_FIELD = "csrf_token"
FORM_FIELDS = 50  # fields of one dashboard form, at most
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: Any, empty: str = "—") -> str:
    """A time as `2026-03-02 15:04:05 UTC` (from a datetime or an ISO 8601 string)."""
    if value is None or value == "":
        return empty
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["when"] = when


class SignInRequired(Exception):
    """No session (or an ended one): the page redirects to /login."""


def wall_now() -> datetime:
    """Sessions age in real time, whatever the engine's clock (a demo runs it 60 times faster)."""
    return datetime.fromtimestamp(time.time(), UTC)


def render(
    request: Request, template: str, *, status: int = 200, session: Session | None = None, **values: Any
) -> HTMLResponse:
    page = templates.get_template(template).render(
        request_path=request.url.path, session=session, csrf_field=CSRF_FIELD, **values
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, message: str, session: Session | None = None) -> HTMLResponse:
    return render(request, "error.html", status=status, session=session, status_code=status, message=message)


class WebRoute(APIRoute):
    """A dashboard route: errors become HTML pages; without a session, a redirect to the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path if request.method == "GET" else "/"
                return redirect(f"/login?next={quote(target)}")
            except DialwaveError as exc:
                response = error_page(request, exc.status_code, exc.message, getattr(request.state, "session", None))
                response.headers.update(exc.headers)
                return response
            except RequestValidationError as exc:
                where = ", ".join(".".join(str(p) for p in err.get("loc", ())[1:]) for err in exc.errors())
                return error_page(request, 422, f"invalid input: {where or 'the request'}")
            except StarletteHTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))

        return route


async def get_session(request: Request) -> Session:
    """The signed-in session (its key re-read: a revoked key is signed out), else SignInRequired."""
    context = context_of(request.app)
    session = await session_of(context.db, request.cookies.get(SESSION_COOKIE), wall_now())
    if session is None:
        raise SignInRequired
    await context.limiter.admit(context.db, session.principal)  # the key's API rate applies here too
    request.state.session = session
    request.state.organization_id = session.principal.organization_id
    return session


@dataclass(frozen=True)
class Posted:
    """A checked POST of a session with the `write` scope: its form, CSRF token verified."""

    session: Session
    form: FormData

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""


async def read_form(request: Request, limit: int) -> FormData:
    """The form, if its declared size is within `limit` (browsers declare it; a body without is refused)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise DialwaveError("send the form with a Content-Length")
    if int(declared) > limit:
        raise PayloadTooLarge(f"the form is over {limit} bytes")
    return await request.form(max_files=1, max_fields=FORM_FIELDS)


def _posted(limit_of: Callable[[AppContext], int], *, write: bool = True) -> Callable[..., Awaitable[Posted]]:
    async def posted(request: Request, session: Annotated[Session, Depends(get_session)]) -> Posted:
        if write and not session.can_write:
            raise Forbidden("this API key is read-only: it changes nothing")
        form = await read_form(request, limit_of(context_of(request.app)))
        token = form.get(CSRF_FIELD)
        if not session.csrf_ok(token if isinstance(token, str) else None):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and submit again")
        return Posted(session, form)

    return posted


def notice(code: str | None, messages: Mapping[str, str]) -> str | None:
    """A known notice (`?notice=paused` after a redirect): never text from the URL itself."""
    return messages.get(code or "")


Signed = Annotated[Session, Depends(get_session)]
Checked = Annotated[Posted, Depends(_posted(lambda c: 65_536, write=False))]  # any scope (sign out)
Writes = Annotated[Posted, Depends(_posted(lambda c: c.settings.json_max_bytes))]
Uploads = Annotated[Posted, Depends(_posted(lambda c: c.settings.import_max_bytes + 65_536))]


def ctx(request: Request) -> AppContext:
    return context_of(request.app)
