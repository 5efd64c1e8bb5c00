"""Vapi and Retell phone numbers through the API, on SQLite and PostgreSQL: their settings, secrets that
are write-only (shown as *_set, kept by an update that does not resend them), and 422s naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from dialwave.store.db import Database
from dialwave.store.tables import phone_numbers
from tests.conftest import Api

pytestmark = pytest.mark.asyncio
VAPI = {"api_key": "vapi-key-1", "assistant_id": "asst-1", "phone_number_id": "pn-1", "webhook_secret": "s" * 24}
RETELL = {"api_key": "key_retell_1", "agent_id": "agent_1"}


async def test_vapi_and_retell_secrets_are_write_only(api: Api, db: Database) -> None:
    body: dict[str, Any] = {"number": "+12125550101", "provider": "vapi", "vapi": VAPI, "max_concurrency": 10}
    created = await api.ok("post", "/v1/phone-numbers", 201, json=body)
    assert created["vapi"] == {
        "assistant_id": "asst-1",
        "phone_number_id": "pn-1",
        "credential_id": None,
        "api_key_set": True,
        "webhook_secret_set": True,
    }
    assert created["max_concurrency"] == 10 and created["retell"] is None
    assert "vapi-key-1" not in str(created) and "s" * 24 not in str(created)
    full = {"vapi": {"assistant_id": "asst-3", "phone_number_id": "pn-1"}}  # secrets not resent: kept
    patched = await api.ok("patch", f"/v1/phone-numbers/{created['id']}", json=full)
    assert patched["vapi"]["assistant_id"] == "asst-3"
    assert patched["vapi"]["webhook_secret_set"] is True and patched["vapi"]["api_key_set"] is True
    async with db.read() as conn:  # stored as given, for the carrier
        stored = await conn.execute(sa.select(phone_numbers.c.config).where(phone_numbers.c.id == created["id"]))
        assert stored.scalar_one()["vapi"]["api_key"] == "vapi-key-1"
    retell = await api.ok(
        "post", "/v1/phone-numbers", 201, json={"number": "+12125550102", "provider": "retell", "retell": RETELL}
    )
    assert retell["retell"] == {"agent_id": "agent_1", "api_key_set": True} and retell["vapi"] is None
    listed = await api.ok("get", "/v1/phone-numbers")
    assert "key_retell_1" not in str(listed) and "vapi-key-1" not in str(listed)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "vapi"}, "vapi"),
        ({"provider": "vapi", "vapi": {**VAPI, "api_key": None}}, "vapi.api_key"),
        ({"provider": "vapi", "vapi": {k: v for k, v in VAPI.items() if k != "webhook_secret"}}, "vapi.webhook_secret"),
        ({"provider": "vapi", "vapi": {**VAPI, "webhook_secret": "short"}}, "vapi.webhook_secret"),
        ({"provider": "retell"}, "retell"),
        ({"provider": "retell", "retell": {"agent_id": "a"}}, "retell.api_key"),
        ({"provider": "simulated", "retell": RETELL}, "retell"),
        ({"provider": "retell", "retell": RETELL, "vapi": VAPI}, "vapi"),
    ],
)
async def test_bad_hosted_settings_are_422s_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = await api.post("/v1/phone-numbers", json={"number": "+12125550103", **body})
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"], response.json()
