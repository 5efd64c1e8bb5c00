"""SQLite time text: the fast formatting writes exactly what strftime wrote (SQLAlchemy reads it back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.store.repositories.sql import sqlite_time

ZONES = st.sampled_from(
    [UTC, ZoneInfo("UTC"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3))]
)


@settings(max_examples=500, deadline=None)
@given(t=st.datetimes(datetime(1900, 1, 2), datetime(9998, 12, 30), timezones=ZONES))
def test_the_same_text_as_strftime(t: datetime) -> None:
    expected = t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert sqlite_time(t) == expected
    assert sqlite_time(t) == expected  # the remembered last value
