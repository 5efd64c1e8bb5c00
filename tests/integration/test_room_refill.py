"""Room freed at the dial is given out at once: a slotted lead released by the dial-time guards (its
window closed between its claim and its slot) frees its place, and the next waiting lead gets the next
pace slot, not whenever some unrelated event (another call's ringing) wakes the engine next. Before,
the next lead's start depended on when other calls' events happened to arrive: the simulated carrier's
`agent_connected` events, added for abandonment, moved 28,976 start times of the 50,000-lead forecast
scenario by up to 46.7 s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialwave.store.db import Database
from tests.rig import make_rig, model

CLOSE = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # Monday 17:00 in New York, 14:00 in Los Angeles
LONG_CALL = "+14155550101"  # Los Angeles: dialed first, holds one line
CLOSED = "+12125550102"  # New York: claimed before 17:00, its slot comes after
NEXT = "+14155550103"  # Los Angeles: waits for the room
MORE = [f"+1415555{200 + i:04d}" for i in range(40)]  # over half a claim's target held: no claim meanwhile


async def test_room_freed_by_a_release_at_the_dial_goes_to_the_next_lead_at_the_next_slot(
    db_url: str, db: Database
) -> None:
    start = CLOSE - timedelta(milliseconds=500)
    talk = model(outcomes={"answered": 1.0}, ring_seconds=[5, 5], talk_seconds=[60, 60])
    async with make_rig(db_url, db, start, talk) as rig:
        cid = await rig.campaign(
            [LONG_CALL, CLOSED, NEXT, *MORE],
            schedule={
                "timezone": "America/New_York",
                "windows": [{"start": "09:00", "end": "17:00"}],
                "recipient_local_time": True,
            },
            pacing={"max_concurrency": 2, "attempts_per_second": 1},
            retry={"max_attempts": 1},
        )
        await rig.run(timedelta(seconds=3))
        started = {c["to_number"]: c["started_at"] for c in await rig.calls(cid)}
        assert started[LONG_CALL] == start
        assert CLOSED not in started  # its slot (17:00:00.5 New York time) came after its window closed
        leads = {lead["phone_number"]: lead for lead in await rig.leads(cid)}
        assert leads[CLOSED]["status"] == "queued" and leads[CLOSED]["next_attempt_at"] > CLOSE
        # the pace slot after the released one (1 s later), not the long call's answer at +5 s
        assert started[NEXT] == CLOSE + timedelta(milliseconds=1500)
