"""A forecast's store gives out due leads in the order of claim_due's statement on SQLite: by
(next_attempt_at, status, rowid), each lead once, a moved lead at its new place (engine/storage.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.domain import lead_states as ls
from dialwave.domain.leads import ClaimedLead
from dialwave.engine.storage import MemoryStore, _due_bound, _due_key, _Lead

T0 = datetime(2026, 3, 2, 14, tzinfo=UTC)


def test_the_integer_keys_sort_as_time_status_and_rowid_and_the_bound_takes_every_time_up_to_now() -> None:
    rng = random.Random(7)
    entries = [
        (T0 + timedelta(seconds=rng.randrange(-3, 3), microseconds=rng.choice([0, 1, 999_999])), s, r, v)
        for s in ls.DUE
        for r in rng.sample(range(1, 2**40), 40)
        for v in (0, 1, 7)
    ]
    assert sorted(entries) == sorted(entries, key=lambda e: _due_key(*e))
    for now in (T0 - timedelta(seconds=1), T0, T0 + timedelta(microseconds=1)):
        assert {e for e in entries if _due_key(*e) < _due_bound(now)} == {e for e in entries if e[0] <= now}


def _lead(i: int, at: datetime | None, status: str = ls.QUEUED) -> ClaimedLead:
    return ClaimedLead(f"lead_{i}", f"+1212555{i:04d}", None, {}, None, status, 0, {}, at, None)


def _store(leads: list[ClaimedLead]) -> MemoryStore:
    store = MemoryStore()
    store.loaded.add("cmp")
    store.due["cmp"], store.taken["cmp"], store.untimed["cmp"] = [], [], set()
    for rowid, lead in enumerate(leads, start=1):
        held = store.leads[lead.id] = store.rows[rowid] = _Lead("cmp", "org", rowid, lead)
        store._place(held)
    return store


@pytest.mark.asyncio
async def test_due_leads_come_in_order_once_each_and_a_moved_lead_at_its_new_place() -> None:
    rng = random.Random(3)
    leads = [_lead(i, T0 + timedelta(seconds=rng.randrange(0, 50)), rng.choice(ls.DUE)) for i in range(200)]
    store = _store(leads)
    conn: Any = None  # every lead is held: no statement runs
    moved = {leads[5].id: {"next_attempt_at": T0 + timedelta(seconds=70)}, leads[9].id: {"status": ls.SKIPPED}}
    await store.update_leads(conn, moved)
    order = sorted(
        (lead for lead in leads if lead.id != leads[9].id),
        key=lambda lead: (lead.next_attempt_at, lead.status, int(lead.id.split("_")[1])),
    )
    first = await store.claim_due(conn, "cmp", T0 + timedelta(seconds=60), 50)
    assert [lead.id for lead in first] == [lead.id for lead in order[:50]]
    # the claim writes what it took but the first ten: those are due again at the next look, in order
    await store.update_leads(conn, {lead.id: {"status": ls.DIALING} for lead in first[10:]})
    rest = await store.claim_due(conn, "cmp", T0 + timedelta(seconds=60), 1000)
    assert [lead.id for lead in rest] == [lead.id for lead in order[:10] + order[50:] if lead.id != leads[5].id]
    assert await store.next_due_at(conn, "cmp") == order[0].next_attempt_at  # taken, not written: still due
    await store.update_leads(conn, {lead.id: {"status": ls.DIALING} for lead in rest})
    assert await store.next_due_at(conn, "cmp") == T0 + timedelta(seconds=70)  # leads[5], moved
    assert await store.claim_due(conn, "cmp", T0 + timedelta(seconds=69), 10) == []
