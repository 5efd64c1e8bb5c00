"""Builders shared by tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

AGENT = {
    "name": "Booker",
    "system_prompt": "You call {{name}} from {{company}}. Convince them to schedule a demo.",
    "opening_message": "Hi {{name}}!",
    "required_variables": ["name"],
}


async def agent(api: Api, **over: Any) -> dict[str, Any]:
    body = {**AGENT, **over}
    return dict(await api.ok("post", "/v1/agents", 201, json=body))


async def number(api: Api, e164: str = "+14155550100", **over: Any) -> dict[str, Any]:
    return dict(await api.ok("post", "/v1/phone-numbers", 201, json={"number": e164, **over}))


async def campaign(api: Api, name: str = "Q1", *, ready: bool = False, **over: Any) -> dict[str, Any]:
    """A campaign; with ready=True it has an agent, a caller id and one lead, so it can start."""
    body: dict[str, Any] = {"name": name, **over}
    if ready:
        agt = await agent(api)
        pn = await number(api)
        body.setdefault("agent_id", agt["id"])
        body.setdefault("caller_ids", [{"phone_number_id": pn["id"]}])
        body.setdefault("dynamic_variables", {"company": "Acme"})
    created = dict(await api.ok("post", "/v1/campaigns", 201, json=body))
    if ready:
        lead = {"phone_number": "+12125550123", "variables": {"name": "Ada"}}
        report = await api.ok("post", f"/v1/campaigns/{created['id']}/leads", json={"leads": [lead]})
        assert report["accepted"] == 1, report
    return created
