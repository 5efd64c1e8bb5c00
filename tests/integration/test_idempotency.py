"""Idempotency-Key holds for retries: the key is reserved before the request runs, so concurrent
requests with one key create one object (the others get 409 IDEMPOTENCY_KEY_IN_USE or the replay), a
finished request is replayed exactly, a failed one frees its key. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests import helpers
from tests.conftest import Api

pytestmark = pytest.mark.asyncio


async def test_concurrent_requests_with_one_key_create_one_object(api: Api) -> None:
    async def attempt(key: str, n: int) -> httpx.Response:
        return await api.post("/v1/agents", json={"name": f"agent-{key}"}, headers={"Idempotency-Key": key})

    keys = [f"k{i}" for i in range(20)]
    answers = await asyncio.gather(*(attempt(k, n) for k in keys for n in range(5)))
    assert {r.status_code for r in answers} <= {201, 409}
    in_use = [r for r in answers if r.status_code == 409]
    assert all(r.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE" for r in in_use)
    assert all(r.headers["retry-after"] == "1" for r in in_use)
    listed = (await api.ok("get", "/v1/agents", params={"limit": 500}))["data"]
    assert sorted(a["name"] for a in listed) == sorted(f"agent-{k}" for k in keys)  # one agent per key
    by_key = {r.json()["name"]: r.json()["id"] for r in answers if r.status_code == 201}
    assert {a["name"]: a["id"] for a in listed} == by_key  # every 201 names the one object of its key


async def test_a_finished_request_is_replayed_exactly(api: Api) -> None:
    headers = {"Idempotency-Key": "campaign-1"}
    first = await api.post("/v1/campaigns", json={"name": "Once"}, headers=headers)
    again = await api.post("/v1/campaigns", json={"name": "Once"}, headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["etag"] == first.headers["etag"] and again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]


async def test_a_refusal_is_remembered_and_replayed_too(api: Api) -> None:
    headers = {"Idempotency-Key": "start-1"}
    draft = await helpers.campaign(api, "not ready")
    refused = await api.post(f"/v1/campaigns/{draft['id']}/start", headers=headers)
    assert refused.status_code == 409  # a 4xx answer is remembered and replayed ...
    again = await api.post(f"/v1/campaigns/{draft['id']}/start", headers=headers)
    assert again.status_code == 409 and again.headers.get("idempotent-replayed") == "true"


async def test_concurrent_imports_with_one_key_import_once(api: Api) -> None:
    campaign = await helpers.campaign(api, "import once")
    rows = "phone_number\n" + "".join(f"+1212555{2000 + i:04d}\n" for i in range(2000))
    headers = {"Idempotency-Key": "import-1", "Content-Type": "text/csv"}
    url = f"/v1/campaigns/{campaign['id']}/leads/import"
    answers = await asyncio.gather(*(api.post(url, content=rows.encode(), headers=headers) for _ in range(4)))
    assert {r.status_code for r in answers} <= {200, 409}
    done = [r.json() for r in answers if r.status_code == 200]
    assert done and all(d["accepted"] == 2000 for d in done)  # the one import, or its replay
    assert (await api.ok("get", f"/v1/campaigns/{campaign['id']}"))["counts"]["total"] == 2000
