"""Wake._flush_due looks at the batch's size first (it is asked at every instant): the same answer as
the plain rule, for every state of the buffer, time and batch limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dialwave.engine.wake import Wake
from dialwave.engine.write_buffer import WriteBuffer

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _plain_rule(writes: WriteBuffer, flush_at: datetime | None, now: datetime, flush_max: int) -> bool:
    if writes.empty:
        return False
    if flush_at is None or now >= flush_at:
        return True
    return len(writes) >= flush_max


@given(
    calls=st.integers(0, 3),
    counts=st.booleans(),
    events=st.integers(0, 2),
    flush_in=st.one_of(st.none(), st.integers(-2, 2)),
    flush_max=st.integers(0, 4),
)
def test_flush_due_is_the_plain_rule(
    calls: int, counts: bool, events: int, flush_in: int | None, flush_max: int
) -> None:
    writes = WriteBuffer()
    for i in range(calls):
        writes.call(f"c{i}", status="ringing")
    if counts:
        writes.move("camp", "in_progress", "completed")
    writes.events = [{} for _ in range(events)]
    flush_at = None if flush_in is None else T0 + timedelta(seconds=flush_in)
    wake: Any = SimpleNamespace(writes=writes, flush_at=flush_at, settings=SimpleNamespace(flush_max=flush_max))
    assert Wake._flush_due(wake, T0) == _plain_rule(writes, flush_at, T0, flush_max)
