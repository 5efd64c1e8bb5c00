"""An engine on a virtual clock with the simulated carrier, driven through the real API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dialwave.clock import VirtualClock
from dialwave.config import Settings
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.resources import SimulatedSettings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.handle import LocalEngine
from dialwave.engine.runner import VirtualRunner
from dialwave.engine.settings import EngineSettings
from dialwave.services.auth import create_key
from dialwave.store.db import Database
from dialwave.store.tables import calls, campaigns, leads
from dialwave.telephony.simulated import SimulatedCarrier
from dialwave.wiring import virtual_dialwave
from tests.conftest import Api

ALL_DAY = [{"start": "00:00", "end": "24:00"}]


@dataclass
class Rig:
    api: Api
    db: Database
    clock: VirtualClock
    carrier: SimulatedCarrier
    engine: Engine
    runner: VirtualRunner
    handle: LocalEngine  # the app's way to the engine: point it at a new engine to restart one
    default_caller: str | None = None

    async def number(self, e164: str = "+12125550100", **over: Any) -> str:
        body = {"number": e164, "simulated": over.pop("simulated", None), **over}
        body = {k: v for k, v in body.items() if v is not None}
        return str((await self.api.ok("post", "/v1/phone-numbers", 201, json=body))["id"])

    async def campaign(
        self,
        numbers: list[str],
        *,
        callers: list[str] | None = None,
        start: bool = True,
        lead_extra: dict[str, dict[str, Any]] | None = None,
        agent: dict[str, Any] | None = None,
        **config: Any,
    ) -> str:
        """A campaign dialing `numbers` (E.164) with a fresh agent (`agent`: more of its fields);
        started unless start=False."""
        body = {"name": "a", "system_prompt": "Call {{name}}", "opening_message": "Hi {{name}}", **(agent or {})}
        created_agent = await self.api.ok("post", "/v1/agents", 201, json=body)
        if callers is None:
            if self.default_caller is None:
                self.default_caller = await self.number()
            callers = [self.default_caller]
        campaign: dict[str, Any] = {
            "name": f"c{len(self.engine.campaigns)}-{self.clock.now().timestamp()}-{numbers[:1]}",
            "agent_id": created_agent["id"],
            "caller_ids": [{"phone_number_id": c} for c in callers],
            "dynamic_variables": {"name": "there"},
            **config,
        }
        campaign.setdefault("schedule", {"windows": ALL_DAY})
        created = await self.api.ok("post", "/v1/campaigns", 201, json=campaign)
        extra = lead_extra or {}
        batch = [{"phone_number": n, **extra.get(n, {})} for n in numbers]
        for i in range(0, len(batch), 10_000):
            report = await self.api.ok(
                "post", f"/v1/campaigns/{created['id']}/leads", json={"leads": batch[i : i + 10_000]}
            )
            assert report["rejected"] == 0, report
        if start:
            await self.api.ok("post", f"/v1/campaigns/{created['id']}/start")
        return str(created["id"])

    async def run(self, delta: timedelta) -> None:
        await self.runner.run_for(delta)

    async def until_idle(self, limit: timedelta = timedelta(days=10)) -> None:
        assert await self.runner.run_until_idle(limit), "the engine did not become idle"

    async def get(self, campaign_id: str) -> dict[str, Any]:
        return dict(await self.api.ok("get", f"/v1/campaigns/{campaign_id}"))

    async def calls(self, campaign_id: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(calls).order_by(calls.c.started_at, calls.c.id)
        if campaign_id:
            stmt = stmt.where(calls.c.campaign_id == campaign_id)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def leads(self, campaign_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            stmt = sa.select(leads).where(leads.c.campaign_id == campaign_id).order_by(leads.c.phone_number)
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def counts_check(self, campaign_id: str) -> None:
        """The maintained counters equal a fresh count of the leads."""
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id))).mappings().one()
            actual = dict(
                (
                    await conn.execute(
                        sa.select(leads.c.status, sa.func.count())
                        .where(leads.c.campaign_id == campaign_id)
                        .group_by(leads.c.status)
                    )
                ).all()
            )
        in_progress = actual.pop("dialing", 0) + actual.pop("in_call", 0)
        expected = {"in_progress": in_progress, **actual}
        for name in ("queued", "in_progress", "completed", "failed", "skipped", "retry_pending", "cancelled"):
            assert rows[f"count_{name}"] == expected.get(name, 0), (name, rows[f"count_{name}"], expected)


@asynccontextmanager
async def make_rig(
    db_url: str,
    db: Database,
    start: datetime,
    model: SimulatedSettings | None = None,
    org: str | None = None,
    allow_loopback: bool = False,
    carriers: dict[str, Any] | None = None,
    **engine_over: Any,
) -> AsyncIterator[Rig]:
    """`carriers`: name -> factory(clock) of carriers beside the simulated one."""
    # Virtual time stands still between requests: no rate limit here (test_rate_limits.py sets one).
    settings = Settings(database_url=db_url, webhook_allow_loopback=allow_loopback, rate_limit_per_second=0)
    engine_settings = EngineSettings.virtual(allow_loopback=allow_loopback, **engine_over)
    async with virtual_dialwave(
        settings, db, start, model=model, carriers=carriers, engine_settings=engine_settings
    ) as virtual:
        created = await create_key(db, org or f"org-{start.timestamp()}", ["read", "write"], start)
        api = Api(virtual.client, created.key, created.organization_id)
        rig = Rig(api, db, virtual.clock, virtual.carrier, virtual.engine, virtual.runner, virtual.handle)
        try:
            yield rig
        finally:
            await rig.engine.close()


def config_of(campaign: dict[str, Any]) -> CampaignConfig:
    """The configuration part of a campaign as the API returns it."""
    config = {k: v for k, v in campaign.items() if k in CampaignConfig.model_fields}
    config["webhook"] = {k: v for k, v in config["webhook"].items() if k in ("url", "metadata")}
    return CampaignConfig.model_validate(config)


def model(**over: Any) -> SimulatedSettings:
    return SimulatedSettings.model_validate(over)


async def step(engines: list[Engine], clock: VirtualClock, carrier: SimulatedCarrier) -> None:
    """Tick every live engine at the next instant any of them (or the carrier) has work."""
    now = clock.now()
    for engine in engines:
        await engine.tick(now)
    times = [t for t in [*(e.next_wake() for e in engines), carrier.next_event_at()] if t is not None]
    clock.set(max(min(times), now + timedelta(milliseconds=1)) if times else now + timedelta(seconds=1))
