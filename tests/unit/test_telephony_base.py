"""A carrier's Retry-After header is read as seconds or an HTTP date, never negative and capped at an hour."""

from __future__ import annotations

from datetime import UTC, datetime


def test_retry_after_takes_seconds_or_an_http_date_within_an_hour() -> None:
    from dialwave.telephony.base import retry_after_seconds

    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 02 Mar 2026 15:01:30 GMT", now) == 90
    assert retry_after_seconds("Mon, 02 Mar 2026 14:00:00 GMT", now) == 0  # in the past: no wait
    assert retry_after_seconds("999999", now) == 3600  # capped
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


def test_an_event_compares_hashes_and_is_replaced_as_a_frozen_dataclass_was() -> None:
    from dataclasses import replace

    from dialwave.telephony.base import CallEvent

    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    ended = CallEvent("c1", "ended", now, "sim-c1", outcome="busy", sip_code=486)
    assert ended == CallEvent("c1", "ended", now, "sim-c1", outcome="busy", sip_code=486)
    assert hash(ended) == hash(CallEvent("c1", "ended", now, "sim-c1", outcome="busy", sip_code=486))
    assert replace(ended, outcome="opted_out") == CallEvent(
        "c1", "ended", now, "sim-c1", outcome="opted_out", sip_code=486
    )
    assert ended.outcome == "busy" and not hasattr(ended, "__dict__")  # slotted: no dict per event
