"""Adding leads: JSON batches (and the rules and writer the CSV import in csv_import.py shares),
validated row by row, stored in batches.

Each batch of valid rows is deduplicated against the campaign, checked against the DNC lists and
inserted in one transaction (one commit per batch), so a 2,000,000-row file never sits in memory
and the rows before a failure stay stored."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import campaign_rules as rules
from dialwave.domain.campaign_config import CampaignConfig, is_time_zone
from dialwave.domain.phone import is_valid_region, normalize, region_of
from dialwave.errors import Conflict, InvalidPhoneNumber, NotFound, ValidationFailed
from dialwave.ids import new_ids
from dialwave.services.campaigns import agent_of, template_requirements
from dialwave.store.db import Database
from dialwave.store.repositories import agents as agent_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import leads as repo
from dialwave.store.repositories.leads import LeadBatch, NewLead
from dialwave.webhooks.events import emit


def _row_number(error: str) -> int:
    head = error.split(":", 1)[0]
    return int(head[4:]) if head.startswith("Row ") and head[4:].isdigit() else 0


@dataclass
class ImportReport:
    max_errors: int
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    dnc: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    errors_truncated: bool = False

    def error(self, row: int, message: str) -> None:
        if len(self.errors) < self.max_errors:
            self.errors.append(f"Row {row}: {message}")
        else:
            self.errors_truncated = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "dnc": self.dnc,
            "rows": self.rows,
            "errors": sorted(self.errors, key=_row_number),
            "errors_truncated": self.errors_truncated,
        }


@dataclass
class ImportContext:
    """What every row is checked against, read once per import."""

    org_id: str
    campaign_id: str
    region: str | None
    required: frozenset[str]
    defaults: frozenset[str]
    check_org_dnc: bool
    custom_dnc: frozenset[str]
    metadata: dict[str, Any] = field(default_factory=dict)  # the campaign's webhook.metadata (echoed in events)


@dataclass
class Candidate:
    row: int
    phone: str
    variables: dict[str, Any]
    timezone: str | None
    agent_overrides: dict[str, Any] | None


def check_row(
    ctx: ImportContext,
    report: ImportReport,
    row: int,
    raw_phone: Any,
    variables: dict[str, Any],
    timezone: str | None,
    overrides: dict[str, Any] | None,
) -> Candidate | None:
    """Validate one row; report and drop it when it is wrong."""
    report.rows += 1
    if raw_phone is None or str(raw_phone).strip() == "":
        report.rejected += 1
        report.error(row, "missing phone number")
        return None
    try:
        phone = normalize(str(raw_phone), ctx.region)
    except InvalidPhoneNumber:
        report.rejected += 1
        report.error(row, f"invalid phone number '{str(raw_phone)[:40]}'")
        return None
    missing = sorted(ctx.required - ctx.defaults - variables.keys())
    if missing:
        report.rejected += 1
        names = ", ".join(f"'{m}'" for m in missing)
        report.error(row, f"missing required variable{'s' if len(missing) > 1 else ''} {names}")
        return None
    if timezone and not is_time_zone(timezone):
        report.rejected += 1
        report.error(row, f"unknown time zone '{timezone[:64]}'")
        return None
    return Candidate(row, phone, variables, timezone or None, overrides)


def _common_keys(batch: list[Candidate]) -> set[str]:
    """The variable names every lead of the batch has (CSV rows mostly share one set of keys)."""
    keys: set[str] | None = None
    last: Any = None
    for cand in batch:
        names = cand.variables.keys()
        if names == last:
            continue
        keys = set(names) if keys is None else keys & names
        last = names
    return keys or set()


def _refuse_finished(campaign: RowMapping) -> None:
    """Checked when the import starts and again in each batch's transaction (it may be cancelled meanwhile)."""
    if campaign["status"] in rules.FINAL:
        raise Conflict(f"the campaign is {campaign['status']}: it takes no more leads", code="CAMPAIGN_FINISHED")


@dataclass
class Prepared:
    """A batch ready to insert: deduplicated within the file, with ids and (on SQLite) its encoding."""

    batch: list[Candidate]
    leads: LeadBatch
    keys: set[str]  # the variable names all its leads have


class LeadWriter:
    """Collects valid rows and writes them a batch (one transaction) at a time."""

    def __init__(self, db: Database, ctx: ImportContext, report: ImportReport, now: datetime) -> None:
        self.db, self.ctx, self.report, self.now = db, ctx, report, now
        self.seen: set[str] = set()

    def _dedupe_in_file(self, batch: list[Candidate]) -> list[Candidate]:
        fresh = []
        for cand in batch:
            if cand.phone in self.seen:
                self.report.duplicates += 1
            else:
                self.seen.add(cand.phone)
                fresh.append(cand)
        return fresh

    def prepare(self, batch: list[Candidate]) -> Prepared:
        """The Python part of writing a batch (the CSV import does it while the batch before is inserted)."""
        batch = self._dedupe_in_file(batch)
        ids = new_ids("lead", len(batch))
        rows = [
            NewLead(lead_id, c.phone, c.variables, c.timezone, c.agent_overrides)
            for lead_id, c in zip(ids, batch, strict=True)
        ]
        leads = LeadBatch(rows)
        leads.encoded()
        return Prepared(batch, leads, _common_keys(batch))

    async def write(self, batch: list[Candidate], *, last: str | None = None) -> None:
        await self.write_prepared(self.prepare(batch), last=last)

    async def write_prepared(
        self, prepared: Prepared, *, last: str | None = None, inserting: asyncio.Event | None = None
    ) -> None:
        """Write a batch; `last` (the import's source, json or csv): it is the import's final write, and
        import.completed is recorded in its transaction. `inserting` is set when the insert statement
        starts (the CSV import then parses the next batch while the database works)."""
        batch, leads, keys = prepared.batch, prepared.leads, prepared.keys
        ctx, now = self.ctx, self.now
        if not batch:
            if last is not None:
                async with self.db.write() as conn:
                    await self._completed(conn, last)
            return
        async with self.db.write() as conn:
            campaign = await campaign_repo.get_campaign(conn, ctx.org_id, ctx.campaign_id, for_update=True)
            if campaign is None:
                raise NotFound(f"no campaign '{ctx.campaign_id}'")
            _refuse_finished(campaign)
            numbers = [c.phone for c in batch]
            blocked = set(ctx.custom_dnc.intersection(numbers))
            if ctx.check_org_dnc and not await repo.dnc_is_empty(conn, ctx.org_id):
                blocked |= await repo.dnc_contains(conn, ctx.org_id, numbers)
            if blocked:
                for cand in batch:
                    if cand.phone in blocked:
                        self.report.dnc += 1
                        self.report.error(cand.row, f"{cand.phone} is on the do-not-call list")
                batch = [cand for cand in batch if cand.phone not in blocked]
                leads, keys = leads.without(blocked), _common_keys(batch)
            if inserting is not None:
                inserting.set()
            inserted = await repo.insert_leads(conn, ctx.org_id, ctx.campaign_id, now, leads)
            self.report.duplicates += len(leads) - inserted  # already in the campaign
            self.report.accepted += inserted
            if inserted:
                await campaign_repo.add_counts(conn, ctx.campaign_id, total=inserted, queued=inserted)
                common = campaign["lead_common_keys"]
                merged = sorted(keys) if common is None else sorted(set(common) & keys)
                if merged != common:
                    await campaign_repo.set_common_keys(conn, ctx.campaign_id, merged)
            if last is not None:
                await self._completed(conn, last)

    async def _completed(self, conn: AsyncConnection, source: str) -> None:
        report = self.report.as_dict()
        data = {"campaign_id": self.ctx.campaign_id, "source": source, **report, "errors": report["errors"][:20]}
        ctx = self.ctx
        await emit(
            conn, ctx.org_id, "import.completed", data, self.now, campaign_id=ctx.campaign_id, metadata=ctx.metadata
        )


async def prepare(
    db: Database, org_id: str, campaign_id: str, default_region: str | None, max_errors: int
) -> tuple[ImportContext, ImportReport]:
    if default_region is not None and not is_valid_region(default_region):
        raise ValidationFailed(
            f"default_region: unknown region '{default_region}' (ISO 3166 alpha-2, e.g. US)",
            fields={"default_region": "unknown region"},
        )
    async with db.read() as conn:
        row: RowMapping | None = await campaign_repo.get_campaign(conn, org_id, campaign_id)
        if row is None:
            raise NotFound(f"no campaign '{campaign_id}'")
        _refuse_finished(row)
        config = CampaignConfig.model_validate(row["config"])
        used, required = template_requirements(config, await agent_of(conn, org_id, config))
        region = default_region.upper() if default_region else None
        if region is None and config.caller_ids:
            numbers = await agent_repo.get_numbers(conn, org_id, [config.caller_ids[0].phone_number_id])
            first = numbers.get(config.caller_ids[0].phone_number_id)
            region = region_of(first["number"]) if first else None
    dnc = config.dnc
    ctx = ImportContext(
        org_id=org_id,
        campaign_id=campaign_id,
        region=region,
        required=frozenset(used | required),
        defaults=frozenset(config.dynamic_variables),
        check_org_dnc=dnc.enabled and "organization" in dnc.sources,
        custom_dnc=frozenset(dnc.custom_numbers if dnc.enabled and "custom" in dnc.sources else ()),
        metadata=config.webhook.metadata,
    )
    return ctx, ImportReport(max_errors=max_errors)


async def add_leads(
    db: Database,
    org_id: str,
    campaign_id: str,
    leads: list[dict[str, Any]],
    default_region: str | None,
    now: datetime,
    max_errors: int,
) -> ImportReport:
    """JSON batch: the same rules as a CSV row, with row numbers counting from 1."""
    ctx, report = await prepare(db, org_id, campaign_id, default_region, max_errors)
    batch = []
    for i, lead in enumerate(leads, start=1):
        overrides = lead.get("agent_overrides")
        cand = check_row(
            ctx, report, i, lead.get("phone_number"), lead.get("variables") or {}, lead.get("timezone"), overrides
        )
        if cand:
            batch.append(cand)
    await LeadWriter(db, ctx, report, now).write(batch, last="json")
    await after_bulk_load(db, report.accepted)
    return report


BULK_LOAD_ROWS = 10_000


async def after_bulk_load(db: Database, accepted: int) -> None:
    """After a big load, table statistics are stale: on PostgreSQL the claim queries ran 4.9x slower
    on 1,000,000 fresh leads until they were refreshed (docs/benchmarks.md)."""
    if accepted >= BULK_LOAD_ROWS and db.dialect == "postgresql":
        async with db.write() as conn:
            await repo.refresh_statistics(conn)
