"""The dispatcher's buffered writes: every state change (calls, leads, counters, automatic DNC
entries, events) waits here, merged per row, until the next group commit writes it all in one
transaction (`flush`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.engine.storage import SQL, Storage
from dialwave.services.calls import EndedWith, stored_results
from dialwave.store.repositories.webhooks import insert_events

# Records `lead.dnc_added` (org, number, reason, counter deltas per campaign, campaign, at, source) for a
# number the commit put on the list: the event log's method.
DncAdded = Callable[[str, str, str, Mapping[str, Mapping[str, int]], str | None, datetime, str], None]


@dataclass
class Batch:
    """What one group commit writes."""

    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    released_calls: list[str] = field(default_factory=list)
    dnc: list[tuple[str, str, str, str | None, str]] = field(
        default_factory=list
    )  # org, number, reason, campaign, source
    events: list[dict[str, Any]] = field(default_factory=list)  # outbox rows, committed with the changes
    # Answered calls ended (call -> organization, and the conversion and callback their end decided
    # with): a runtime result stored meanwhile that this engine had not heard of (posted to another
    # process just before the end) is looked up in the commit that ends the call.
    ended_with: dict[str, EndedWith] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.calls) + len(self.leads) + len(self.released_calls) + len(self.dnc) + len(self.events)

    @property
    def empty(self) -> bool:
        return not (self.calls or self.leads or self.released_calls or self.dnc or self.counts or self.events)

    def merge(self, newer: Batch) -> None:
        """Add `newer`'s changes on top of these (a row's later values win; counter moves add up)."""
        for call_id, values in newer.calls.items():
            self.calls.setdefault(call_id, {}).update(values)
        for lead_id, values in newer.leads.items():
            self.leads.setdefault(lead_id, {}).update(values)
        for campaign_id, counter in newer.counts.items():
            self.counts.setdefault(campaign_id, Counter()).update(counter)
        self.released_calls = list(dict.fromkeys(self.released_calls + newer.released_calls))
        self.dnc = self.dnc + newer.dnc
        self.events = self.events + newer.events
        self.ended_with = {**self.ended_with, **newer.ended_with}


@dataclass
class WriteBuffer(Batch):
    """The batch being filled. One object for the engine's life: `take()` hands its contents to a
    commit and starts afresh (a transaction may take several times: the refresh flushes before and
    after releasing leads); `committed()` forgets what the transaction took, `put_back()` returns it
    under whatever was buffered meanwhile when the transaction failed."""

    finished: set[str] = field(default_factory=set)  # campaigns whose leads reached a final status
    counting: set[str] = field(default_factory=set)  # campaigns whose counters the commit under way writes
    recount: set[str] = field(default_factory=set)  # after a commit of unknown outcome: counted from the leads
    taken: list[Batch] = field(default_factory=list)  # what the transaction under way took, oldest first

    # A row's first write keeps the keyword dict it came in (always a new one): no copy, no merge.
    def call(self, call_id: str, **values: Any) -> None:
        row = self.calls.get(call_id)
        if row is None:
            self.calls[call_id] = values
        else:
            row.update(values)

    def lead(self, lead_id: str, **values: Any) -> None:
        row = self.leads.get(lead_id)
        if row is None:
            self.leads[lead_id] = values
        else:
            row.update(values)

    def move(self, campaign_id: str, old: str | None, new: str | None) -> None:
        counter = self.counts.get(campaign_id)
        if counter is None:
            counter = self.counts[campaign_id] = Counter()
        if old:
            counter[old] -= 1
        if new:
            counter[new] += 1

    def snapshot(self) -> Batch:
        """The batch as it stands (the same containers, not copies)."""
        return Batch(self.calls, self.leads, self.counts, self.released_calls, self.dnc, self.events, self.ended_with)

    def take(self) -> Batch:
        batch = self.snapshot()
        self.taken.append(batch)
        self.restore(Batch())
        return batch

    def committed(self) -> None:
        self.taken, self.counting = [], set()

    def put_back(self) -> None:
        """The transaction failed (or its answer was lost): what it took is written again, with what
        was buffered since on top; the campaigns whose counters it wrote are counted from the leads."""
        merged = Batch()
        for batch in [*self.taken, self.snapshot()]:
            merged.merge(batch)
        self.restore(merged)
        self.recount |= self.counting
        self.taken, self.counting = [], set()

    def restore(self, batch: Batch) -> None:
        self.calls, self.leads, self.counts = batch.calls, batch.leads, batch.counts
        self.released_calls, self.dnc, self.events = batch.released_calls, batch.dnc, batch.events
        self.ended_with = batch.ended_with


async def flush(
    buffer: WriteBuffer,
    dnc_added: DncAdded,
    conn: AsyncConnection,
    now: datetime,
    *,
    results: bool = True,
    store: Storage = SQL,
) -> set[str]:
    """Write every buffered change in the caller's transaction (one group commit). Returns the
    campaigns whose due leads changed in the database meanwhile (a result posted to another process
    reopened a lead; an automatic DNC entry skipped leads of that number). `results=False`: no other
    process can have stored a result (a forecast), so none is looked up. `store`: where the rows go
    (engine/storage.py: a forecast's to memory, written to the database by its `sync`)."""
    w = buffer.take()
    changed: set[str] = set()
    if w.released_calls:
        await store.delete_pending_calls(conn, w.released_calls)
    if w.calls:
        await store.update_calls(conn, w.calls)
    if w.leads:
        await store.update_leads(conn, w.leads)
    if w.ended_with and results:  # after the call rows are written (and, on PostgreSQL, locked): see post_result
        await store.sync(conn)
        changed |= await stored_results(conn, w.ended_with, now)
        for reopened in changed:  # leads reopened in the database
            store.forget(reopened)
    counts: dict[str, Counter[str]] = {k: Counter(v) for k, v in w.counts.items()}
    for org_id, number, reason, campaign_id, source in w.dnc:
        added, deltas = await store.put_on_dnc(conn, org_id, number, reason, source, now)
        if added:
            dnc_added(org_id, number, reason, deltas, campaign_id, now, source)
        for moved_in, delta in deltas.items():
            counts.setdefault(moved_in, Counter()).update(delta)
            changed.add(moved_in)
    # After a failed commit (the database went away at the COMMIT) nobody knows whether its deltas
    # landed: those campaigns' counters are set from their leads instead of added to.
    recount, buffer.recount = buffer.recount, set()
    buffer.counting |= set(counts) | recount
    for campaign_id, counter in counts.items():
        if campaign_id not in recount:
            await store.add_counts(conn, campaign_id, {k: v for k, v in counter.items() if v})
    for campaign_id in sorted(recount):
        await store.recount(conn, campaign_id)
    if buffer.events or w.events:  # the dnc_added events above went to the fresh batch
        await insert_events(conn, w.events + buffer.events)
        buffer.events = []
    return changed
