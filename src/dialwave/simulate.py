"""`dialwave simulate`: the real engine on a virtual clock, in a throwaway database, against the
simulated carrier. Everything goes through the public API (the same code path as `dialwave serve`),
so a simulation is also a campaign forecast. The file formats are documented in docs/simulate.md;
their key names are fixed."""

from __future__ import annotations

import asyncio
import gc
import json
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dialwave.config import Settings
from dialwave.domain.resources import SimulatedSettings
from dialwave.engine.settings import EngineSettings
from dialwave.engine.storage import Storage
from dialwave.errors import ValidationFailed
from dialwave.services import campaigns as campaign_service
from dialwave.services.auth import create_key
from dialwave.store.db import Database
from dialwave.store.schema import create_throwaway_schema
from dialwave.wiring import virtual_dialwave

LEAD_BATCH = 10_000
EXPORT_LINES = 1_000  # lines of calls.jsonl encoded and written at once


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_at: AwareDatetime
    campaign: dict[str, Any]
    caller_numbers: list[str] = Field(min_length=1)
    agent: dict[str, Any]
    leads: str | list[dict[str, Any]]
    dnc: list[str] = Field(default_factory=list)
    carrier: SimulatedSettings = Field(default_factory=SimulatedSettings)
    max_days: float = Field(60, gt=0, le=366, description="stop after this much virtual time")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


class _Client:
    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, url: str, what: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        response = await self.client.request(method, url, headers=headers, **kw)
        if response.status_code >= 300:
            raise ValidationFailed(f"scenario {what}: {response.text}")
        return response.json() if response.content else None


async def _setup(api: _Client, sc: Scenario, base: Path) -> str:
    agent = await api.call("POST", "/v1/agents", "agent", json=sc.agent)
    numbers = []
    for number in sc.caller_numbers:
        body = {"number": number, "provider": "simulated", "simulated": sc.carrier.model_dump(mode="json")}
        numbers.append(await api.call("POST", "/v1/phone-numbers", f"caller number {number}", json=body))
    campaign = dict(sc.campaign)
    campaign.setdefault("agent_id", agent["id"])
    campaign.setdefault("caller_ids", [{"phone_number_id": n["id"]} for n in numbers])
    created = await api.call("POST", "/v1/campaigns", "campaign", json=campaign)
    cid = created["id"]
    if isinstance(sc.leads, str):
        path = (base / sc.leads).resolve()
        with path.open("rb") as fh:
            report = await api.call(
                "POST",
                f"/v1/campaigns/{cid}/leads/import",
                "leads",
                content=fh.read(),
                headers={"Content-Type": "text/csv"},
            )
        reports = [report]
    else:
        reports = []
        for i in range(0, len(sc.leads), LEAD_BATCH):
            batch = {"leads": sc.leads[i : i + LEAD_BATCH]}
            reports.append(await api.call("POST", f"/v1/campaigns/{cid}/leads", "leads", json=batch))
    if not any(r["accepted"] for r in reports):
        raise ValidationFailed(f"scenario leads: none accepted: {reports[0]['errors'][:5]}")
    for i in range(0, len(sc.dnc), LEAD_BATCH):
        await api.call("POST", "/v1/dnc", "dnc", json={"numbers": sc.dnc[i : i + LEAD_BATCH], "reason": "scenario"})
    await api.call("POST", f"/v1/campaigns/{cid}/start", "start")
    return str(cid)


def peak_concurrency(intervals: list[tuple[datetime, datetime | None]]) -> int:
    """The most calls up at once: a call ending at the instant another starts does not overlap it (an
    interval without an end never ends). The starts and the ends are sorted apart, then swept."""
    starts = sorted(a for a, _ in intervals)
    ends = sorted(b for _, b in intervals if b is not None)
    level = top = j = 0
    for at in starts:
        while j < len(ends) and ends[j] <= at:  # the ends up to this start, first
            j += 1
            level -= 1
        level += 1
        if level > top:
            top = level
    return top


async def _export(db: Database, store: Storage, org_id: str, cid: str, out: Path) -> dict[str, Any]:
    """calls.jsonl and the summary; the calls as `store` holds them (a forecast's: partly in memory),
    read whole (a forecast's store sorts them all before the first anyway), then written and counted
    a list at a time rather than a row at a time (about 92,000 rows at 50,000 leads)."""
    camp = await campaign_service.get_campaign(db, org_id, cid)
    async with db.read() as conn:  # as held: each value is converted once, for its line (_line)
        calls = [row async for row in store.campaign_calls(conn, cid, stored=False)]
    with (out / "calls.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(0, len(calls), EXPORT_LINES):
            fh.write(_json_lines([_line(row) for row in calls[i : i + EXPORT_LINES]]))
    outcomes = Counter([row.get("outcome") or row.get("status") for row in calls])
    intervals = [(start, row.get("ended_at")) for row in calls if (start := row.get("started_at")) is not None]
    starts = [start for start, _ in intervals]
    attempts = len(calls)
    leads = int(camp["count_total"])
    span = (max(starts) - min(starts)).total_seconds() if len(starts) > 1 else 0.0
    return {
        "outcomes": dict(sorted(outcomes.items())),
        "completed_at": _iso(camp["completed_at"]) if camp["status"] == "completed" else None,
        "attempts_per_lead": round(attempts / leads, 4) if leads else 0.0,
        "peak_concurrency": peak_concurrency(intervals),
        "achieved_attempts_per_second": round(len(starts) / span, 4) if span > 0 else float(len(starts)),
        "campaign_status": camp["status"],
        "status_reason": camp["status_reason"],
        "leads": leads,
        "attempts": attempts,
        "counts": {
            k: int(camp[f"count_{k}"])
            for k in ("completed", "failed", "skipped", "cancelled", "queued", "retry_pending")
        },
        "first_attempt_at": _iso(min(starts)) if starts else None,
        "last_attempt_at": _iso(max(starts)) if starts else None,
    }


_ENCODE = json.JSONEncoder(check_circular=False).encode  # json.dumps' text (flat values: no cycle)
_BETWEEN_LINES = '}, {"id": '  # a list's text between two lines (_line's first key is "id")


def _json_lines(lines: list[dict[str, Any]]) -> str:
    """The lines as JSON Lines, each as json.dumps writes it alone. They are encoded as one list (one
    encoder call per EXPORT_LINES lines, not per line), whose text is then cut between the objects:
    `}, {"id": ` is found there only, never in a string value (its quotes are escaped: `\\"`)."""
    if not lines:
        return ""
    return _ENCODE(lines)[1:-1].replace(_BETWEEN_LINES, '}\n{"id": ') + "\n"


def _line(row: Mapping[str, Any]) -> dict[str, Any]:
    """A line of calls.jsonl from a call as stored or as held (Storage.campaign_calls(stored=False)):
    each value converted as call_repo.as_stored converts it (a missing column is null, a time in UTC,
    the duration a float, a flag a bool), but only the values of the line, and straight to the line's
    form (tests/unit/test_simulate_export.py holds the two to the same lines)."""
    get = row.get
    to_number = get("to_number")
    duration, conversion, voicemail = get("duration_seconds"), get("conversion"), get("voicemail_left")
    return {
        "id": row["id"],
        "campaign_id": get("campaign_id"),
        "lead_id": get("lead_id"),
        "phone_number": to_number,
        "to_number": to_number,
        "from_number": get("from_number"),
        "attempt": get("attempt"),
        "started_at": _iso(get("started_at")),
        "answered_at": _iso(get("answered_at")),
        "ended_at": _iso(get("ended_at")),
        "outcome": get("outcome"),
        "sip_code": get("sip_code"),
        "duration_seconds": None if duration is None else float(duration),
        "conversion": None if conversion is None else bool(conversion),
        "voicemail_left": None if voicemail is None else bool(voicemail),
    }


def load_scenario(scenario_file: Path) -> Scenario:
    try:
        return Scenario.model_validate(json.loads(scenario_file.read_text("utf-8")))
    except (OSError, ValueError) as exc:
        raise ValidationFailed(f"scenario {scenario_file}: {exc}") from exc


def simulate(scenario_file: Path, out: Path) -> dict[str, Any]:
    """Run a scenario file; writes out/calls.jsonl and out/summary.json and returns the summary."""
    sc = load_scenario(scenario_file)
    out.mkdir(parents=True, exist_ok=True)
    summary = asyncio.run(run_scenario(sc, scenario_file.parent, out))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return summary


async def run_scenario(sc: Scenario, base: Path, out: Path, *, fast: bool = True) -> dict[str, Any]:
    """`fast` (always, but for the test that shows it decides the same): the database is a throwaway
    (no fsync) and the engine runs as a forecast's (EngineSettings.forecast)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return await _run_scenario(sc, base, out, fast=fast)
    finally:
        if enabled:
            gc.enable()


async def _run_scenario(sc: Scenario, base: Path, out: Path, *, fast: bool) -> dict[str, Any]:
    """The run, without the cyclic garbage collector: a forecast holds every lead and call to its end
    and makes almost no cyclic garbage (the same peak memory with the collector or without), while the
    collector's passes walked the ever more objects held, about a sixth of the run's CPU at 50,000
    leads (docs/benchmarks.md)."""
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dialwave-sim-") as tmp:
        url = f"sqlite:///{tmp}/simulation.db"
        create_throwaway_schema(url)  # a throwaway database needs the tables, not their history
        db = Database(url, inline_sqlite=True, throwaway=fast)  # one process, one purpose: no thread hop
        engine_settings = EngineSettings.for_forecast() if fast else EngineSettings.virtual()
        try:
            settings = Settings(database_url=url)
            async with virtual_dialwave(
                settings,
                db,
                sc.start_at,
                model=sc.carrier,
                engine_settings=engine_settings,
                base_url="http://simulation",
                dashboard=False,  # the set-up speaks to the API only
            ) as virtual:
                key = await create_key(db, "simulation", ["read", "write"], sc.start_at)
                cid = await _setup(_Client(virtual.client, key.key), sc, base)
                finished = await virtual.runner.run_until_idle(timedelta(days=sc.max_days))
            summary = await _export(db, virtual.engine.store, key.organization_id, cid, out)
        finally:
            await db.dispose()
    summary["finished"] = finished
    summary["virtual_seconds"] = round((virtual.clock.now() - sc.start_at).total_seconds(), 3)
    summary["wall_seconds"] = round(time.perf_counter() - wall, 3)
    summary["decisions"] = virtual.engine.stats["decisions"]
    return summary
