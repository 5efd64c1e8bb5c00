"""Re-planning after an edit that can make waiting leads dialable earlier (a wider window, another
zone, a shorter initial delay or cooldown; see campaign_rules.opens_earlier). The edit only marks the
campaign (`replan_from`); the engine then brings its waiting leads forward a batch per tick, each
batch its own transaction, so the edit answers at once and the dialer keeps dialing meanwhile. A lead
comes due at its earliest instant (its retry interval or callback, never earlier) or now; the claim
then places it at its next dialable time under the new schedule. Crash-safe: the mark stays until a
batch finds nothing left to move, and the next owner of the campaign carries on."""

from __future__ import annotations

from datetime import datetime

from dialwave.engine.state import CampaignState
from dialwave.store.db import Database
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import leads as lead_repo

BATCH = 5_000  # leads moved per transaction (about 100 ms of PostgreSQL's time here)


async def replan_step(db: Database, camp: CampaignState, now: datetime, batch: int = BATCH) -> int:
    """Move one batch of the campaign's waiting leads forward; returns how many moved. When a batch
    moves fewer than `batch`, the re-plan is done and the campaign's mark is cleared."""
    since = camp.replan_from
    assert since is not None
    async with db.write() as conn:
        moved = await lead_repo.replan_batch(conn, camp.id, now, batch)
        if moved < batch:
            await campaign_repo.finish_replan(conn, camp.id, since)
    if moved < batch:
        camp.replan_from = None
    if moved:
        camp.due_known = False  # the claim reads the due leads again
    return moved
