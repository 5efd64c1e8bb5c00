"""Each API key has a request rate (the organization's own, else the server's): a burst of twice it
passes, the next request is a 429 with Retry-After and nothing done, time refills the bucket, and
another organization's keys are not slowed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from dialwave.api.app import create_app
from dialwave.clock import VirtualClock
from dialwave.config import Settings
from dialwave.services import orgs
from dialwave.store.db import Database
from tests.conftest import make_api


@pytest.fixture
async def limited(db: Database, clock: VirtualClock) -> httpx.AsyncClient:
    app = create_app(Settings(database_url=str(db.url), rate_limit_per_second=5), db=db, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialwave.test")


async def test_a_key_over_its_rate_gets_429_and_others_do_not(
    limited: httpx.AsyncClient, db: Database, clock: VirtualClock
) -> None:
    async with limited:
        acme, globex = await make_api(limited, db, "acme"), await make_api(limited, db, "globex")
        statuses = [(await acme.get("/v1/agents")).status_code for _ in range(10)]
        assert statuses == [200] * 10  # a burst of twice the rate

        over = await acme.post("/v1/agents", json={"name": "x", "system_prompt": "p"})
        assert over.status_code == 429, over.text
        assert over.json()["error"]["code"] == "RATE_LIMITED"
        assert int(over.headers["Retry-After"]) >= 1
        assert (await globex.get("/v1/agents")).status_code == 200  # not slowed by acme

        clock.advance(timedelta(seconds=1))  # five more requests' worth
        assert (await acme.get("/v1/agents")).json()["data"] == []  # the refused POST did nothing
        statuses = [(await acme.get("/v1/agents")).status_code for _ in range(5)]
        assert statuses == [200] * 4 + [429]


async def test_an_organization_gets_its_own_rate(limited: httpx.AsyncClient, db: Database, clock: VirtualClock) -> None:
    async with limited:
        acme = await make_api(limited, db, "acme")
        assert await orgs.set_rate_limit(db, "acme", 1)  # `dialwave orgs rate --org acme --per-second 1`
        statuses = [(await acme.get("/v1/agents")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]

        assert await orgs.set_rate_limit(db, "acme", 0)  # 0: no limit
        clock.advance(timedelta(seconds=11))  # a running server rereads an organization's limit within 10 s
        assert {(await acme.get("/v1/agents")).status_code for _ in range(50)} == {200}
        assert not await orgs.set_rate_limit(db, "nobody", 3)
