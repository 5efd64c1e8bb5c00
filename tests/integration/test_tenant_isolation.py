"""Every route, called with another organization's ids, answers 404 (never 403, never data)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from dialwave.clock import VirtualClock
from dialwave.store.db import Database
from dialwave.store.tables import calls
from dialwave.webhooks.transport import AiohttpTransport
from dialwave.webhooks.worker import DeliveryWorker
from tests import helpers
from tests.conftest import Api

BODIES: dict[str, Any] = {
    "PATCH": {"json": {}},
    "POST": {"json": {}},
}


async def test_every_route_hides_other_tenants(api: Api, other_api: Api, db: Database, clock: VirtualClock) -> None:
    cmp = await helpers.campaign(api, "Mine", ready=True)
    lead = (await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads"))["data"][0]
    ids = {
        "agent_id": cmp["agent_id"],
        "number_id": cmp["caller_ids"][0]["phone_number_id"],
        "campaign_id": cmp["id"],
        "lead_id": lead["id"],
        "call_id": "call_tenant_a_0001",
    }
    endpoint = await api.ok("post", "/v1/webhook-endpoints", 201, json={"url": "https://hooks.example.com/in"})
    await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550999"]})  # an event, then a delivery
    assert await DeliveryWorker(db, AiohttpTransport(), clock).fan_out(clock.now()) == 1
    delivery = (await api.ok("get", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"))["data"][0]
    ids |= {"endpoint_id": endpoint["id"], "delivery_id": delivery["id"]}
    consent = {
        "phone_number": "+14155550123",
        "scope": "ai_voice",
        "source": "form",
        "captured_at": "2026-01-01T00:00:00Z",
    }
    ids["consent_id"] = (await api.ok("post", "/v1/consents", 201, json=consent))["id"]
    dnc_file = {"content": "+14155550999\n", "headers": {"Content-Type": "text/csv"}}
    ids["name"] = (await api.ok("post", "/v1/dnc/import", params={"list": "mine"}, **dnc_file))["list"]["name"]
    async with db.write() as conn:
        await conn.execute(
            calls.insert().values(
                id=ids["call_id"],
                organization_id=api.org_id,
                campaign_id=cmp["id"],
                lead_id=lead["id"],
                attempt=1,
                from_number="+14155550100",
                to_number=lead["phone_number"],
                status="ended",
                outcome="busy",
                created_at=clock.now(),
            )
        )
    transport = api.client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: Any = transport.app
    templated = {p: ops for p, ops in app.openapi()["paths"].items() if "{" in p}
    tried = 0
    for template, operations in templated.items():
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
        for method in (m.upper() for m in operations):
            kwargs: dict[str, Any] = dict(BODIES.get(method, {}))
            if path.endswith("/leads") and method == "POST":
                kwargs = {"json": {"leads": [{"phone_number": "+14155550123"}]}}
            if path.endswith("/import"):
                kwargs = {"content": b"phone\n+14155550123\n", "headers": {"Content-Type": "text/csv"}}
            response = await getattr(other_api, method.lower())(path, **kwargs)
            assert response.status_code == 404, (method, template, response.text)
            assert response.json()["error"]["type"] == "not_found"
            tried += 1
    assert tried >= 23
    # Lists never show another tenant's objects.
    for url, params in (
        ("/v1/campaigns", {}),
        ("/v1/agents", {}),
        ("/v1/phone-numbers", {}),
        ("/v1/calls", {"campaign_id": cmp["id"]}),
        ("/v1/calls", {}),
        ("/v1/webhook-endpoints", {}),
        ("/v1/consents", {}),
        ("/v1/dnc/lists", {}),
    ):
        assert (await other_api.ok("get", url, params=params))["data"] == [], url
    # ... and the owner still sees everything, untouched.
    assert (await api.ok("get", f"/v1/calls/{ids['call_id']}"))["outcome"] == "busy"
    assert (await api.ok("get", f"/v1/campaigns/{cmp['id']}"))["version"] == cmp["version"]
    # Referencing another tenant's agent or number is "no such object" too.
    theirs = await other_api.post("/v1/campaigns", json={"name": "X", "agent_id": cmp["agent_id"]})
    assert theirs.status_code == 422 and "agent_id" in theirs.json()["error"]["fields"]
