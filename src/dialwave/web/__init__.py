"""The operator's dashboard: server-rendered pages at `/` (Jinja2 templates, a little vendored JavaScript,
live by server-sent events). Signed in with an API key (a signed, HttpOnly session cookie); every form
carries the session's CSRF token. Pages call the services, as the API's routes do. See docs/dashboard.md."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dialwave.web import auth, calls, campaigns, dnc, leads, resources, webhooks
from dialwave.web.core import HERE

ROUTERS = (auth.router, campaigns.router, leads.router, calls.router, dnc.router, webhooks.router, resources.router)


def install(app: FastAPI) -> None:
    """The dashboard's pages and its static files (`/static/...`, shipped in the package)."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
