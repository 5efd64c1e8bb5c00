"""/login and /logout: an API key in, an HttpOnly SameSite=Strict session cookie out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dialwave.errors import Forbidden, Unauthorized
from dialwave.services.sessions import SESSION_SECONDS, session_of, sign_in
from dialwave.web.core import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Checked,
    WebRoute,
    ctx,
    read_form,
    redirect,
    render,
    wall_now,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])
LOGIN_FORM_BYTES = 16_384
NOTICES = {"signed_out": "You are signed out."}


def safe_next(target: str | None) -> str:
    """Only a path of this site (never `//host` or a URL elsewhere)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 or ch == "\x7f" for ch in target):  # browsers drop tabs and newlines: "/\t/evil"
        return "/"
    return target


def _login_page(
    request: Request, *, status: int = 200, error: str | None = None, next_: str = "/", notice: str | None = None
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status=status, error=error, next=safe_next(next_), login_token=token, notice=notice
    )
    secure = request.url.scheme == "https"
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="strict", secure=secure
    )
    return response


@router.get("/login")
async def login_page(
    request: Request,
    next: str | None = Query(None, max_length=500),
    notice: str | None = Query(None, max_length=40),
) -> Response:
    if await session_of(ctx(request).db, request.cookies.get(SESSION_COOKIE), wall_now()) is not None:
        return redirect(safe_next(next))
    return _login_page(request, next_=next or "/", notice=NOTICES.get(notice or ""))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request, LOGIN_FORM_BYTES)
    given, expected = form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE)
    if not isinstance(given, str) or not expected or not hmac.compare_digest(given, expected):
        raise Forbidden("the sign-in form's CSRF token is missing or wrong: reload the page and sign in again")
    key, target = form.get("api_key"), form.get("next")
    next_ = target if isinstance(target, str) else "/"
    try:
        cookie, _ = await sign_in(ctx(request).db, key if isinstance(key, str) else None, wall_now())
    except Unauthorized:
        return _login_page(request, status=401, error="That API key is not valid, or it was revoked.", next_=next_)
    response = redirect(safe_next(next_))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, posted: Checked) -> Response:
    response = redirect("/login?notice=signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
