"""Agents and phone numbers (read-only lists: change them through the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dialwave.api import serialize
from dialwave.services import agents as agent_service
from dialwave.services import phone_numbers as number_service
from dialwave.web.core import Signed, WebRoute, ctx, render

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])

LIMIT = 500


@router.get("/agents")
async def agents_page(request: Request, session: Signed) -> Response:
    rows, more = await agent_service.list_agents(ctx(request).db, session.principal.organization_id, LIMIT, None)
    return render(request, "agents.html", session=session, agents=[serialize.agent(r) for r in rows], more=more)


@router.get("/numbers")
async def numbers_page(request: Request, session: Signed) -> Response:
    rows, more = await number_service.list_numbers(
        ctx(request).db, session.principal.organization_id, None, LIMIT, None
    )
    return render(
        request, "numbers.html", session=session, numbers=[serialize.phone_number(r) for r in rows], more=more
    )
