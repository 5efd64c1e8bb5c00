"""Agents and phone numbers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import Db, Guard, Now, Reader, Signal, Writer, partial
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import AgentOut, Page, PhoneNumberOut
from dialwave.domain.resources import AgentConfig, PhoneNumberConfig
from dialwave.services import agents as service
from dialwave.store.repositories import agents as repo

router = APIRouter(prefix="/v1", tags=["agents & numbers"])

AgentPatch = partial(AgentConfig, "AgentPatch")
PhoneNumberPatch = partial(PhoneNumberConfig, "PhoneNumberPatch")

AGENT_EXAMPLE = {
    "name": "Demo booker",
    "system_prompt": "You call {{name}} from {{company}} to book a product demo.",
    "opening_message": "Hi {{name}}, this is Ava from Dialwave.",
    "voice": "alloy",
    "language": "en-US",
    "required_variables": ["name", "company"],
    "status": "live",
}
NUMBER_EXAMPLE = {"number": "+14155550100", "provider": "simulated", "friendly_name": "Sales line"}
SIP_EXAMPLE = {
    "number": "+14155550101",
    "provider": "sip",
    "sip": {"trunk_uri": "sip:trunk.example.com:5060", "username": "acme", "password": "s3cret", "transport": "udp"},
}


@router.post("/agents", status_code=201, response_model=AgentOut, responses=WRITE_ERRORS)
async def create_agent(
    who: Writer,
    db: Db,
    now: Now,
    guard: Guard,
    body: AgentConfig = Body(openapi_examples={"agent": {"value": AGENT_EXAMPLE}}),
) -> JSONResponse:
    row = await service.create_agent(db, who.organization_id, body, now, guard)
    return JSONResponse(serialize.agent(row), status_code=201)


@router.get("/agents", response_model=Page[AgentOut], responses=READ_ERRORS)
async def list_agents(
    who: Reader, db: Db, limit: int = Query(50, ge=1, le=500), cursor: str | None = Query(None, max_length=200)
) -> JSONResponse:
    async with db.read() as conn:
        rows, nxt = await repo.list_agents(conn, who.organization_id, limit, cursor)
    return JSONResponse(serialize.listing([serialize.agent(r) for r in rows], nxt))


@router.get("/agents/{agent_id}", response_model=AgentOut, responses=READ_ERRORS)
async def get_agent(agent_id: str, who: Reader, db: Db) -> JSONResponse:
    return JSONResponse(serialize.agent(await service.get_agent(db, who.organization_id, agent_id)))


@router.get("/agents/{agent_id}/versions", responses=READ_ERRORS)
async def list_agent_versions(agent_id: str, who: Reader, db: Db) -> JSONResponse:
    """Every update of an agent is kept as an immutable snapshot; campaigns can pin one (`agent_version`)."""
    await service.get_agent(db, who.organization_id, agent_id)
    async with db.read() as conn:
        rows = await repo.list_agent_versions(conn, agent_id)
    data = [
        {
            "version": r["version"],
            "snapshot": serialize.agent_config(r["snapshot"]),
            "created_at": serialize.iso(r["created_at"]),
        }
        for r in rows
    ]
    return JSONResponse({"data": data, "next_cursor": None})


@router.patch("/agents/{agent_id}", response_model=AgentOut, responses=WRITE_ERRORS)
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


@router.delete("/agents/{agent_id}", status_code=204, responses=WRITE_ERRORS)
async def delete_agent(agent_id: str, who: Writer, db: Db) -> Response:
    await service.delete_agent(db, who.organization_id, agent_id)
    return Response(status_code=204)


@router.post("/phone-numbers", status_code=201, response_model=PhoneNumberOut, responses=WRITE_ERRORS)
async def create_number(
    who: Writer,
    db: Db,
    now: Now,
    body: PhoneNumberConfig = Body(
        openapi_examples={"simulated": {"value": NUMBER_EXAMPLE}, "sip trunk": {"value": SIP_EXAMPLE}}
    ),
) -> JSONResponse:
    row = await service.create_number(db, who.organization_id, body, now)
    return JSONResponse(serialize.phone_number(row), status_code=201)


@router.get("/phone-numbers", response_model=Page[PhoneNumberOut], responses=READ_ERRORS)
async def list_numbers(
    who: Reader, db: Db, limit: int = Query(50, ge=1, le=500), cursor: str | None = Query(None, max_length=200)
) -> JSONResponse:
    async with db.read() as conn:
        rows, nxt = await repo.list_numbers(conn, who.organization_id, limit, cursor)
    return JSONResponse(serialize.listing([serialize.phone_number(r) for r in rows], nxt))


@router.get("/phone-numbers/{number_id}", response_model=PhoneNumberOut, responses=READ_ERRORS)
async def get_number(number_id: str, who: Reader, db: Db) -> JSONResponse:
    return JSONResponse(serialize.phone_number(await service.get_number(db, who.organization_id, number_id)))


@router.patch("/phone-numbers/{number_id}", response_model=PhoneNumberOut, responses=WRITE_ERRORS)
async def update_number(
    number_id: str,
    who: Writer,
    db: Db,
    now: Now,
    signal: Signal,
    patch: PhoneNumberPatch = Body(openapi_examples={"deactivate": {"value": {"active": False}}}),  # type: ignore[valid-type]
) -> JSONResponse:
    body: dict[str, Any] = patch.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
    row = await service.update_number(db, who.organization_id, number_id, body, now)
    signal(who.organization_id, None)  # caller ids in use are re-read (active, limits)
    return JSONResponse(serialize.phone_number(row))


@router.delete("/phone-numbers/{number_id}", status_code=204, responses=WRITE_ERRORS)
async def delete_number(number_id: str, who: Writer, db: Db, signal: Signal) -> Response:
    await service.delete_number(db, who.organization_id, number_id)
    signal(who.organization_id, None)
    return Response(status_code=204)
