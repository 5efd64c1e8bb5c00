"""/v1/agents: voice agents and their versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import Db, Guard, Now, Reader, Writer, partial
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import AgentOut, Page
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.domain.resources import AgentConfig
from dialwave.services import agents as service

router = APIRouter(prefix="/v1/agents", tags=["agents"], route_class=StrictJSONRoute)

AgentPatch = partial(AgentConfig, "AgentPatch")

AGENT_EXAMPLE = {
    "name": "Demo booker",
    "system_prompt": "You call {{name}} from {{company}} to book a product demo.",
    "opening_message": "Hi {{name}}, this is Ava from Dialwave.",
    "voice": "alloy",
    "language": "en-US",
    "required_variables": ["name", "company"],
    "status": "live",
}


@router.post("", name="create", status_code=201, response_model=AgentOut, responses=WRITE_ERRORS)
async def create_agent(
    who: Writer,
    db: Db,
    now: Now,
    guard: Guard,
    body: AgentConfig = Body(openapi_examples={"agent": {"value": AGENT_EXAMPLE}}),
) -> JSONResponse:
    row = await service.create_agent(db, who.organization_id, body, now, guard)
    return JSONResponse(serialize.agent(row), status_code=201)


@router.get("", name="list", response_model=Page[AgentOut], responses=READ_ERRORS)
async def list_agents(
    who: Reader, db: Db, limit: int = Query(50, ge=1, le=500), cursor: str | None = Query(None, max_length=200)
) -> JSONResponse:
    rows, nxt = await service.list_agents(db, who.organization_id, limit, cursor)
    return JSONResponse(serialize.listing([serialize.agent(r) for r in rows], nxt))


@router.get("/{agent_id}", name="get", response_model=AgentOut, responses=READ_ERRORS)
async def get_agent(agent_id: str, who: Reader, db: Db) -> JSONResponse:
    return JSONResponse(serialize.agent(await service.get_agent(db, who.organization_id, agent_id)))


@router.get("/{agent_id}/versions", name="list_versions", responses=READ_ERRORS)
async def list_agent_versions(agent_id: str, who: Reader, db: Db) -> JSONResponse:
    """Every update of an agent is kept as an immutable snapshot; campaigns can pin one (`agent_version`)."""
    rows = await service.list_versions(db, who.organization_id, agent_id)
    return JSONResponse(serialize.listing([serialize.agent_version(r) for r in rows], None))


@router.patch("/{agent_id}", name="update", response_model=AgentOut, responses=WRITE_ERRORS)
async def update_agent(
    agent_id: str,
    who: Writer,
    db: Db,
    now: Now,
    guard: Guard,
    patch: AgentPatch = Body(openapi_examples={"prompt": {"value": {"opening_message": "Hello {{name}}!"}}}),  # type: ignore[valid-type]
) -> JSONResponse:
    body: dict[str, Any] = patch.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
    row = await service.update_agent(db, who.organization_id, agent_id, body, now, guard)
    return JSONResponse(serialize.agent(row))


@router.delete("/{agent_id}", name="delete", status_code=204, responses=WRITE_ERRORS)
async def delete_agent(agent_id: str, who: Writer, db: Db) -> Response:
    await service.delete_agent(db, who.organization_id, agent_id)
    return Response(status_code=204)
