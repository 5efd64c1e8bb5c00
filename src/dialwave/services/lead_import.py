"""Importing leads: a JSON batch or a CSV file, validated row by row, deduplicated within the file and
against the campaign, checked against the do-not-call lists, and stored in batches.

Each batch of valid rows is written in one transaction (one commit per batch), so a 2,000,000-row
file never sits in memory and the rows before a failure stay stored. A CSV file is read as a
stream; the next batch is parsed while the database inserts this one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import campaign_rules as rules
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.lead_rows import Candidate, ImportContext, ImportReport, check_row, common_keys
from dialwave.domain.phone import is_valid_region, region_of
from dialwave.errors import Conflict, NotFound, ValidationFailed
from dialwave.ids import new_ids
from dialwave.services.campaigns import agent_of, template_requirements
from dialwave.services.csv_rows import SLICE_CELLS, CsvRows, parse_batch, rows_per_slice
from dialwave.store.db import Database
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import dnc as dnc_repo
from dialwave.store.repositories import leads as repo
from dialwave.store.repositories import phone_numbers as number_repo
from dialwave.store.repositories.leads import LeadBatch, NewLead
from dialwave.webhooks.events import emit

BULK_LOAD_ROWS = 10_000
BATCH_CELLS = 250_000  # a CSV batch (one transaction) holds at most the setting's rows, and this many cells


async def _in_slices(steps: Iterator[object]) -> None:
    """Run a computation's steps, letting the event loop run between them."""
    for _ in steps:
        await asyncio.sleep(0)


def _refuse_finished(campaign: RowMapping) -> None:
    """Checked when the import starts and again in each batch's transaction (it may be cancelled meanwhile)."""
    if campaign["status"] in rules.FINAL:
        raise Conflict(f"the campaign is {campaign['status']}: it takes no more leads", code="CAMPAIGN_FINISHED")


# -- writing batches ---------------------------------------------------------------------------------
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

    async def prepare(self, batch: list[Candidate]) -> Prepared:
        """The Python part of writing a batch (the CSV import does it while the batch before is inserted),
        in slices that let the event loop run between them."""
        batch = self._dedupe_in_file(batch)
        ids = new_ids("lead", len(batch))
        rows = [
            NewLead(lead_id, c.phone, c.variables, c.timezone, c.agent_overrides, c.region)
            for lead_id, c in zip(ids, batch, strict=True)
        ]
        leads = LeadBatch(rows)
        await _in_slices(leads.encode_in_steps(self._slice(batch)))
        return Prepared(batch, leads, common_keys(batch))

    @staticmethod
    def _slice(batch: list[Candidate]) -> int:
        return rows_per_slice(1 + max((len(c.variables) for c in batch[:100]), default=0))

    async def write(self, batch: list[Candidate], *, last: str | None = None) -> None:
        await self.write_prepared(await self.prepare(batch), last=last)

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
            if ctx.check_org_dnc and not await dnc_repo.dnc_is_empty(conn, ctx.org_id):
                blocked |= await dnc_repo.dnc_contains(conn, ctx.org_id, numbers)
            if blocked:
                for cand in batch:
                    if cand.phone in blocked:
                        self.report.dnc += 1
                        self.report.error(cand.row, f"{cand.phone} is on the do-not-call list")
                batch = [cand for cand in batch if cand.phone not in blocked]
                leads, keys = leads.without(blocked), common_keys(batch)
                await _in_slices(leads.encode_in_steps(self._slice(batch)))
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
            numbers = await number_repo.get_numbers(conn, org_id, [config.caller_ids[0].phone_number_id])
            first = numbers.get(config.caller_ids[0].phone_number_id)
            region = region_of(first["number"]) if first else None
    dnc = config.dnc
    ctx = ImportContext(
        org_id=org_id,
        campaign_id=campaign_id,
        region=region,
        required=frozenset(used | required),
        defaults=frozenset(config.dynamic_variables),
        check_org_dnc=dnc.uses_organization_list,
        custom_dnc=dnc.custom_list(),
        metadata=config.webhook.metadata,
    )
    return ctx, ImportReport(max_errors=max_errors)


async def after_bulk_load(db: Database, accepted: int) -> None:
    """After a big load, table statistics are stale: on PostgreSQL the claim queries ran 4.9x slower
    on 1,000,000 fresh leads until they were refreshed (docs/benchmarks.md)."""
    if accepted >= BULK_LOAD_ROWS and db.dialect == "postgresql":
        async with db.write() as conn:
            await repo.refresh_statistics(conn)


# -- JSON batches --------------------------------------------------------------------------------------
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
    batch: list[Candidate] = []

    def check_rows() -> Iterator[None]:
        cells = 0
        for i, lead in enumerate(leads, start=1):
            overrides = lead.get("agent_overrides")
            phone, variables = lead.get("phone_number"), lead.get("variables") or {}
            cand = check_row(ctx, report, i, phone, variables, lead.get("timezone"), overrides, lead.get("region"))
            if cand:
                batch.append(cand)
            cells += max(4, 1 + len(variables))
            if cells >= SLICE_CELLS:
                cells = 0
                yield

    await _in_slices(check_rows())
    await LeadWriter(db, ctx, report, now).write(batch, last="json")
    await after_bulk_load(db, report.accepted)
    return report


async def import_csv(
    db: Database,
    org_id: str,
    campaign_id: str,
    binary: IO[bytes],
    default_region: str | None,
    now: datetime,
    *,
    batch_rows: int,
    max_rows: int,
    max_errors: int,
) -> ImportReport:
    ctx, report = await prepare(db, org_id, campaign_id, default_region, max_errors)
    rows = await asyncio.to_thread(CsvRows, binary, ctx, report, max_rows)
    # Wide rows make smaller batches: the rows of a batch are alive at once, and each of the garbage
    # collector's full passes walks them all (5,000 rows of 200 columns: 50-70 ms holding the loop).
    batch_rows = max(100, min(batch_rows, BATCH_CELLS // rows.columns))
    writer = LeadWriter(db, ctx, report, now)
    # Pipeline: the next batch is parsed while the database inserts this one (the insert is one SQLite
    # statement, run in C without the GIL), so both cores work. Parsing runs on the event loop's own
    # thread, in slices that let the loop run between them: parsing in a worker thread instead made the
    # loop's every database round trip wait for the GIL (60 ms a trip against a busy thread, measured),
    # which serialised parsing and writing.
    first = await parse_batch(rows, batch_rows)
    prepared = await writer.prepare(first) if first is not None else None
    while prepared is not None:
        inserting = asyncio.Event()
        writing = asyncio.ensure_future(writer.write_prepared(prepared, inserting=inserting))
        started = asyncio.ensure_future(inserting.wait())
        try:
            await asyncio.wait({writing, started}, return_when=asyncio.FIRST_COMPLETED)
            if writing.done():
                await writing  # an empty batch, or a failed one: its error ends the import
            try:
                batch = await parse_batch(rows, batch_rows)
                prepared = await writer.prepare(batch) if batch is not None else None
            except Exception:
                with contextlib.suppress(Exception):
                    await writing  # the rows before a bad row (or the size limit) stay stored
                raise
            await writing
        finally:
            started.cancel()
            if not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing
    # A CSV import spans many transactions: its completion is recorded in one more, after the last batch.
    await writer.write([], last="csv")
    await after_bulk_load(db, report.accepted)
    return report
