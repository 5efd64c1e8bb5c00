"""The statements of the dispatcher's hot path (claims and group commits), as one port with two
implementations. `Storage` runs them on the database, in the caller's transaction (every engine).
`MemoryStore` is a forecast's (`dialwave simulate`, POST .../forecast: EngineSettings.forecast): its
throwaway SQLite database has no other reader or writer while the engine runs, so the campaign's open
leads, its new calls and its counters live in memory, the claims are answered from there, and the
rows are written to the database only when something is about to read it there (`sync`: before a
refresh, the lifecycle's reads; the counters alone for the auto-complete check and at the end of a
run, whose result reads the calls from here). The engine's decisions are the same code either
way (claims.claim, write_buffer.flush, endings, starts); only where the rows live differs
(tests/integration/test_simulate_fast.py compares the two on seeded scenarios)."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.domain.leads import ClaimedLead
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import dnc as dnc_repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.store.repositories.campaigns import add_counts


class Storage:
    """The hot-path statements on the database (the caller's transaction)."""

    memory = False

    async def claim_due(self, conn: AsyncConnection, campaign_id: str, now: datetime, limit: int) -> list[ClaimedLead]:
        return await lead_repo.claim_due(conn, campaign_id, now, limit)

    async def next_due_at(self, conn: AsyncConnection, campaign_id: str) -> datetime | None:
        return await lead_repo.next_due_at(conn, campaign_id)

    async def dnc_contains(self, conn: AsyncConnection, org_id: str, numbers: Sequence[str]) -> set[str]:
        """Which of `numbers` are on the organization's do-not-call list."""
        return await dnc_repo.dnc_contains(conn, org_id, numbers)

    async def update_leads(self, conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
        await lead_repo.update_leads(conn, rows)

    async def insert_calls(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        await call_repo.insert_calls(conn, rows)

    async def update_calls(self, conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
        await call_repo.update_calls(conn, rows)

    async def delete_pending_calls(self, conn: AsyncConnection, call_ids: Sequence[str]) -> None:
        await call_repo.delete_pending_calls(conn, call_ids)

    async def add_counts(self, conn: AsyncConnection, campaign_id: str, deltas: dict[str, int]) -> None:
        await add_counts(conn, campaign_id, **deltas)

    async def recount(self, conn: AsyncConnection, campaign_id: str) -> None:
        await campaign_repo.recount(conn, campaign_id)

    async def attempts_since(
        self, conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        return await call_repo.attempts_since(conn, org_id, numbers, since)

    async def put_on_dnc(
        self, conn: AsyncConnection, org_id: str, number: str, reason: str, source: str, now: datetime
    ) -> tuple[bool, dict[str, dict[str, int]]]:
        return await dnc_repo.put_on_dnc(conn, org_id, number, reason, source, now)

    async def sync(self, conn: AsyncConnection, *, calls: bool = True, leads: bool = True) -> None:
        """Make the database show every change (`calls=False`: the reader reads no call; `leads=False`:
        no lead either). Nothing to do here: it already does."""

    async def campaign_calls(
        self, conn: AsyncConnection, campaign_id: str, *, stored: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """Every call of the campaign as stored, in start order (a forecast's result). `stored=False`:
        a reader that converts the values it reads itself (the export's lines) may be given them as
        held (see MemoryStore.campaign_calls); here they are as stored either way."""
        async for row in call_repo.stream_campaign_calls(conn, campaign_id):
            yield dict(row)

    def forget(self, campaign_id: str) -> None:
        """The campaign's leads may have changed in the database (an edit, a re-plan): read them again."""


SQL = Storage()


class _Lead:
    """An open lead held in memory: what a claim returns, where it sorts, and its version (an entry
    in the due heap is current only while the lead's version is the one it was pushed with).

    A claim is given `claimed` itself, not a copy. The claim reads it before it writes it; from then
    until its attempt ends or it is released, the lead is claimed (dialing, in a call: not due, so
    neither put_on_dnc nor another claim touches it) and the writes to it change its status and
    attempts only (the claim's, then in_call at an answer), which a reservation keeps apart
    (prior_status, attempt). What the engine reads of a reservation's lead meanwhile, its number,
    zone, region, variables, overrides, retries (a write replaces the dict, never changes it) and the
    time it was due (a release puts it back at that time), stays as it was when claimed."""

    __slots__ = ("campaign_id", "claimed", "org_id", "rowid", "version")

    def __init__(self, campaign_id: str, org_id: str, rowid: int, claimed: ClaimedLead) -> None:
        self.campaign_id = campaign_id
        self.org_id = org_id
        self.rowid = rowid
        self.claimed = claimed
        self.version = 0


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_RANKS = len(ls.DUE)
_RANK = {status: i for i, status in enumerate(sorted(ls.DUE))}  # ties on the time go by status, as in SQL
_ROWID_MASK = (1 << 64) - 1
_VERSION_MASK = (1 << 32) - 1


def _due_key(at: datetime, status: str, rowid: int, version: int) -> int:
    """A due heap entry as one integer, in the order of (next_attempt_at, status, rowid) with the
    lead's version in its low bits: a heap of integers pops three times faster than one of tuples
    whose first item is a datetime (50,000 leads: 16 levels, two comparisons per level)."""
    return ((((at - _EPOCH) // _MICROSECOND) * _RANKS + _RANK[status]) << 96) + (rowid << 32) + version


def _due_bound(now: datetime) -> int:
    """Every entry whose time is at or before `now` (any status, rowid, version) is below this."""
    return (((now - _EPOCH) // _MICROSECOND) * _RANKS + _RANKS) << 96


class MemoryStore(Storage):
    """A forecast's open leads, new calls and counter changes in memory (see the module's docstring).
    Due leads sit in a heap per campaign by (next_attempt_at, status, rowid): the order of
    claim_due's statement on SQLite (`_due_key`: one integer per entry, the version in its low bits)."""

    memory = True

    def __init__(self) -> None:
        self.leads: dict[str, _Lead] = {}
        self.rows: dict[int, _Lead] = {}  # rowid -> the lead (a heap entry names its lead by rowid)
        self.loaded: set[str] = set()  # campaigns whose open leads are held
        self.due: dict[str, list[int]] = {}  # campaign -> heap of _due_key
        # campaign -> the entries its last claim took: still due unless the claim wrote their lead (it
        # writes every lead it takes: back in the heap at the next look only if it did not)
        self.taken: dict[str, list[int]] = {}
        self.untimed: dict[str, set[str]] = {}  # campaign -> due leads without a time (sort first)
        self.by_number: dict[tuple[str, str], list[str]] = {}  # (org, number) -> held lead ids
        self.dirty_leads: dict[str, dict[str, Any]] = {}
        self.new_calls: dict[str, dict[str, Any]] = {}  # inserted since the last sync (updates merged)
        self.dirty_calls: dict[str, dict[str, Any]] = {}  # rows already in the database
        self.deleted_calls: list[str] = []
        self.counts: dict[str, Counter[str]] = {}
        self.starts: dict[tuple[str, str], list[datetime]] = {}  # (org, number) -> starts not yet written
        self.call_numbers: dict[str, tuple[str, str]] = {}  # call -> (org, number), of calls inserted here
        self.syncs = 0
        # org -> its do-not-call list, read at its first claim: only the engine writes to a forecast's
        # database while it runs (put_on_dnc, below, adds to it); an API change signals the engine,
        # whose refresh forgets the campaigns it changed, and this with them
        self.dnc: dict[str, set[str]] = {}

    # -- loading ---------------------------------------------------------------------------------
    async def _load(self, conn: AsyncConnection, campaign_id: str) -> None:
        await self.sync(conn)  # the database shows every change before it is read
        self.loaded.add(campaign_id)
        self.due[campaign_id] = []
        self.taken[campaign_id] = []
        self.untimed[campaign_id] = set()
        for org_id, rowid, lead in await lead_repo.open_leads_sqlite(conn, campaign_id):
            held = self.leads[lead.id] = self.rows[rowid] = _Lead(campaign_id, org_id, rowid, lead)
            self.by_number.setdefault((org_id, lead.phone_number), []).append(lead.id)
            self._place(held)

    def _place(self, held: _Lead) -> None:
        lead = held.claimed
        untimed = self.untimed[held.campaign_id]
        if untimed:
            untimed.discard(lead.id)
        if lead.status not in ls.DUE:
            return
        if lead.next_attempt_at is None:
            untimed.add(lead.id)
            return
        key = _due_key(lead.next_attempt_at, lead.status, held.rowid, held.version)
        heapq.heappush(self.due[held.campaign_id], key)

    def forget(self, campaign_id: str) -> None:
        self.dnc.clear()
        if campaign_id not in self.loaded:
            return
        self.loaded.discard(campaign_id)
        self.due.pop(campaign_id, None)
        self.taken.pop(campaign_id, None)
        self.untimed.pop(campaign_id, None)
        for lead_id in [i for i, h in self.leads.items() if h.campaign_id == campaign_id]:
            held = self.leads.pop(lead_id)
            del self.rows[held.rowid]
            self.by_number[(held.org_id, held.claimed.phone_number)].remove(lead_id)

    # -- the claim's reads -----------------------------------------------------------------------
    async def claim_due(self, conn: AsyncConnection, campaign_id: str, now: datetime, limit: int) -> list[ClaimedLead]:
        if campaign_id not in self.loaded:
            await self._load(conn, campaign_id)
        heap = self._restore(campaign_id)
        taken, current, pop = self.taken[campaign_id], self._current, heapq.heappop
        bound = _due_bound(now)
        found: list[ClaimedLead] = []
        while heap and len(found) < limit and heap[0] < bound:
            key = pop(heap)
            held = current(key)
            if held is None:
                continue  # the lead moved since: a newer entry (or none) stands for it
            taken.append(key)  # still due until the claim writes the lead
            found.append(held.claimed)
        return found

    def _current(self, key: int) -> _Lead | None:
        """The lead of a heap entry, if the entry still stands for it (not moved since)."""
        held = self.rows.get((key >> 32) & _ROWID_MASK)
        return held if held is not None and held.version == key & _VERSION_MASK else None

    def _restore(self, campaign_id: str) -> list[int]:
        """The campaign's due heap, with the entries last taken whose lead was not written since."""
        heap, taken = self.due[campaign_id], self.taken[campaign_id]
        for key in taken:
            if self._current(key) is not None:
                heapq.heappush(heap, key)
        taken.clear()
        return heap

    async def next_due_at(self, conn: AsyncConnection, campaign_id: str) -> datetime | None:
        if campaign_id not in self.loaded:
            await self._load(conn, campaign_id)
        if self.untimed[campaign_id]:
            return None  # as SQLite sorts NULL first
        heap = self._restore(campaign_id)
        while heap:
            held = self._current(heap[0])
            if held is not None:
                return held.claimed.next_attempt_at  # the entry's time: it changes with the version
            heapq.heappop(heap)
        return None

    async def dnc_contains(self, conn: AsyncConnection, org_id: str, numbers: Sequence[str]) -> set[str]:
        listed = self.dnc.get(org_id)
        if listed is None:
            listed = self.dnc[org_id] = await dnc_repo.dnc_listed(conn, org_id)
        return listed.intersection(numbers)

    async def attempts_since(
        self, conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        found = await call_repo.attempts_since(conn, org_id, numbers, since)
        for number in numbers:  # calls started since the last sync are not in the database yet
            for at in self.starts.get((org_id, number), ()):
                if at >= since:
                    found.setdefault(number, []).append(at)
        return found

    # -- writes ----------------------------------------------------------------------------------
    async def update_leads(self, conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
        dirty, leads, loaded, untimed, due = self.dirty_leads, self.leads, self.loaded, self.untimed, ls.DUE
        for lead_id, values in rows.items():
            pending = dirty.get(lead_id)
            if pending is None:
                dirty[lead_id] = dict(values)
            else:
                pending.update(values)
            held = leads.get(lead_id)
            if held is None or held.campaign_id not in loaded:
                continue
            lead = held.claimed  # also a reservation's: see _Lead
            if "status" in values:
                lead.status = values["status"]
            if "attempts" in values:
                lead.attempts = values["attempts"]
            if "retries" in values:
                lead.retries = dict(values["retries"] or {})
            if "next_attempt_at" in values:
                at = values["next_attempt_at"]
                lead.next_attempt_at = at if at is None or at.tzinfo is UTC else at.astimezone(UTC)
            held.version += 1
            if lead.status in due or untimed[held.campaign_id]:  # else _place has nothing to do (a dial)
                self._place(held)

    async def insert_calls(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """The rows become the store's (the claim builds them for it alone): held, not copied."""
        new_calls, call_numbers = self.new_calls, self.call_numbers
        for row in rows:
            new_calls[row["id"]] = row
            call_numbers[row["id"]] = (row["organization_id"], row["to_number"])

    async def update_calls(self, conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
        new_calls, numbers = self.new_calls, self.call_numbers
        for call_id, values in rows.items():
            target = new_calls.get(call_id)
            if target is None:
                target = self.dirty_calls.setdefault(call_id, {})
            if "started_at" in values:  # a dial: the claim's look-ups count its start from now on
                started, number = values["started_at"], numbers.get(call_id)
                if started is not None and number is not None:
                    self.starts.setdefault(number, []).append(started)
            target.update(values)

    async def delete_pending_calls(self, conn: AsyncConnection, call_ids: Sequence[str]) -> None:
        for call_id in call_ids:
            new = self.new_calls.get(call_id)
            if new is None:
                self.deleted_calls.append(call_id)
            elif new.get("status") == "pending":  # as the statement: only a call never dialed
                del self.new_calls[call_id]

    async def add_counts(self, conn: AsyncConnection, campaign_id: str, deltas: dict[str, int]) -> None:
        self.counts.setdefault(campaign_id, Counter()).update(deltas)

    async def recount(self, conn: AsyncConnection, campaign_id: str) -> None:
        await self.sync(conn, calls=False)  # the leads held here first, then their counts from the database
        await super().recount(conn, campaign_id)

    async def put_on_dnc(
        self, conn: AsyncConnection, org_id: str, number: str, reason: str, source: str, now: datetime
    ) -> tuple[bool, dict[str, dict[str, int]]]:
        """The statement skips the number's due leads in the database: it must see their state, and
        the leads held here then take the state it left them in."""
        await self.sync(conn, calls=False)
        result = await dnc_repo.put_on_dnc(conn, org_id, number, reason, source, now)
        if org_id in self.dnc:
            self.dnc[org_id].add(number)
        for lead_id in self.by_number.get((org_id, number), []):  # the due ones were skipped, as here
            held = self.leads[lead_id]
            if held.claimed.status in ls.DUE:
                held.claimed.status, held.claimed.next_attempt_at = ls.SKIPPED, None
                held.version += 1
                self._place(held)
        return result

    async def sync(self, conn: AsyncConnection, *, calls: bool = True, leads: bool = True) -> None:
        """Write what is held here to the database (in the caller's transaction). `calls=False`: the
        leads and counters only; the calls stay here until a reader of calls needs them (the claim's
        cooldowns, the abandonment rate), or for ever: a forecast's result reads them from here
        (`campaign_calls`), not after 90,000 inserts and their read back. `leads=False` (with
        `calls=False`): the counters only; the leads stay here until a reader of leads needs them (a
        refresh, a re-plan, the claim's look-ups, an automatic DNC entry, a recount), or for ever: the
        auto-complete check and a forecast's result read the counters, no lead (50,000 lead updates
        at the end of a 50,000-lead run, for nobody)."""
        if calls and (self.new_calls or self.dirty_calls or self.deleted_calls):
            self.syncs += 1
            if self.deleted_calls:
                await call_repo.delete_pending_calls(conn, self.deleted_calls)
            if self.new_calls:
                await call_repo.insert_calls(conn, list(self.new_calls.values()))
            if self.dirty_calls:
                await call_repo.update_calls(conn, self.dirty_calls)
            self.new_calls, self.dirty_calls, self.deleted_calls, self.starts = {}, {}, [], {}
        writing = leads and bool(self.dirty_leads)
        if not (writing or self.counts):
            return
        self.syncs += 1
        if writing:
            await lead_repo.update_leads(conn, self.dirty_leads)
            self.dirty_leads = {}
        for campaign_id, counter in self.counts.items():
            changed = {k: v for k, v in counter.items() if v}
            if changed:
                await add_counts(conn, campaign_id, **changed)
        self.counts = {}

    async def campaign_calls(
        self, conn: AsyncConnection, campaign_id: str, *, stored: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """The calls written to the database, with the changes held here, and those held here only,
        as the database would return them, in its order (started_at, NULL first, then id).
        `stored=False`: the same rows in the same order, but as held, not converted to the stored form
        (call_repo.as_stored): a column may be missing, a time in another zone, a number or a flag of
        another type. For a reader that converts only what it reads (the export's lines: one
        conversion per value instead of the whole row's, then the value's); such a reader must not
        change the rows (some are the ones held here)."""
        deleted = set(self.deleted_calls)
        dirty = self.dirty_calls
        held: list[dict[str, Any]] = []
        async for written in call_repo.stream_campaign_calls(conn, campaign_id):
            if written["id"] not in deleted:
                changes = dirty.get(written["id"])
                held.append({**written, **changes} if changes else dict(written))
        held.extend(r for r in self.new_calls.values() if r["campaign_id"] == campaign_id)
        rows = [call_repo.as_stored(r) for r in held] if stored else held
        for row in call_repo.in_start_order(rows):
            yield row
