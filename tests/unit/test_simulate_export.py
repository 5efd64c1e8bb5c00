"""The export of `dialwave simulate` reads a forecast's calls as held (MemoryStore.campaign_calls with
stored=False) and converts each value once, for its line: its lines and order must be those of the
calls as stored (call_repo.as_stored), and its JSON Lines text json.dumps' of each line alone."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dialwave.engine.storage import MemoryStore
from dialwave.simulate import _json_lines, _line
from dialwave.store.repositories import calls as call_repo

T0 = datetime(2026, 3, 2, 14, tzinfo=UTC)
EAST = timezone(timedelta(hours=5, minutes=30))


def _held(i: int, rng: random.Random) -> dict[str, Any]:
    """A call row as the engine may hold it: columns missing, times in another zone, an int duration,
    int flags."""
    started = T0 + timedelta(seconds=rng.randrange(0, 50), microseconds=rng.choice([0, 1, 250_000]))
    row: dict[str, Any] = {
        "id": f"call_{rng.randrange(10**6):06d}_{i}",
        "campaign_id": "cmp_1",
        "lead_id": f"lead_{i}",
        "to_number": f"+1617555{i:04d}",
        "attempt": rng.choice([1, 2]),
        "status": rng.choice(["ended", "pending", "in_call"]),
    }
    if rng.random() < 0.8:
        row["started_at"] = started.astimezone(EAST) if rng.random() < 0.3 else started
    elif rng.random() < 0.5:
        row["started_at"] = None
    if rng.random() < 0.7:
        row["ended_at"] = started + timedelta(seconds=rng.randrange(1, 300))
        row["answered_at"] = rng.choice([None, started.astimezone(EAST) + timedelta(seconds=3)])
        row["outcome"] = rng.choice(["answered", "busy", None])
        row["sip_code"] = rng.choice([200, 486, None])
        row["duration_seconds"] = rng.choice([0, 12, 239.628, None])
        row["conversion"] = rng.choice([0, 1, True, False, None])
        row["voicemail_left"] = rng.choice([0, 1, None])
    if rng.random() < 0.5:
        row["from_number"] = "+13125550100"
    return row


def test_a_line_from_the_held_values_is_the_line_from_the_stored_row() -> None:
    rng = random.Random(3)
    for i in range(500):
        held = _held(i, rng)
        assert _line(held) == _line(call_repo.as_stored(held))
        assert json.dumps(_line(held)) == json.dumps(_line(call_repo.as_stored(held)))


def test_the_json_lines_are_each_line_as_json_dumps_writes_it() -> None:
    rng = random.Random(5)
    lines = [_line(call_repo.as_stored(_held(i, rng))) for i in range(50)]
    lines[3]["outcome"] = 'a "quoted", }, {"id": value'  # the separator's text inside a string
    lines[4]["to_number"] = "é ✓ \n"
    assert _json_lines(lines) == "".join(json.dumps(line) + "\n" for line in lines)
    assert _json_lines([]) == ""


@pytest.mark.parametrize("all_started", [True, False])
def test_the_start_order_is_the_databases(all_started: bool) -> None:
    rng = random.Random(11)
    rows = [_held(i, rng) for i in range(300)]
    if all_started:
        rows = [r for r in rows if r.get("started_at") is not None]
    expected = sorted(
        (call_repo.as_stored(r) for r in rows),
        key=lambda r: (r["started_at"] is not None, r["started_at"] or T0 - timedelta(days=10**4), r["id"]),
    )
    assert [r["id"] for r in call_repo.in_start_order(rows)] == [r["id"] for r in expected]


def test_the_store_gives_the_same_calls_held_as_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(13)
    written = [call_repo.as_stored(_held(i, rng)) for i in range(40)]

    async def stream(conn: Any, campaign_id: str) -> AsyncIterator[dict[str, Any]]:
        for row in written:
            yield dict(row)

    monkeypatch.setattr(call_repo, "stream_campaign_calls", stream)
    store = MemoryStore()
    store.new_calls = {r["id"]: r for r in (_held(100 + i, rng) for i in range(60))}
    store.new_calls["call_other"] = {**_held(999, rng), "id": "call_other", "campaign_id": "cmp_2"}
    store.dirty_calls = {written[1]["id"]: {"ended_at": T0, "duration_seconds": 3}}
    store.deleted_calls = [written[2]["id"]]

    async def read(stored: bool) -> list[dict[str, Any]]:
        return [row async for row in store.campaign_calls(None, "cmp_1", stored=stored)]  # type: ignore[arg-type]

    as_stored, as_held = asyncio.run(read(True)), asyncio.run(read(False))
    assert len(as_stored) == 40 - 1 + 60
    assert [_line(r) for r in as_held] == [_line(r) for r in as_stored]
    assert as_stored == [call_repo.as_stored(r) for r in as_held]
