"""The live stream's rhythm (services/activity.changes): the state first, then only changes, a heartbeat
after a quiet spell, and the end once the campaign is finished. Driven by a fake sleep: no real time."""

from __future__ import annotations

from typing import Any

from dialwave.services.activity import changes


async def test_changes_heartbeats_and_the_end() -> None:
    states = iter(
        [{"status": "active", "n": 0}] * 5 + [{"status": "active", "n": 1}] + [{"status": "completed", "n": 2}]
    )
    slept: list[float] = []

    async def snapshot() -> dict[str, Any]:
        return next(states)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    got = [
        (name, data.get("n"))
        async for name, data in changes(snapshot, poll_seconds=1, heartbeat_seconds=2, sleep=sleep)
    ]
    assert got == [
        ("campaign", 0),
        ("heartbeat", None),  # after 2 quiet seconds
        ("heartbeat", None),
        ("campaign", 1),
        ("campaign", 2),  # completed: the last event
    ]
    assert slept == [1] * 6
