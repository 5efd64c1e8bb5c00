"""The dashboard's pure parts: progress and pace text, the chart's geometry, the settings form's parsing,
where an error is shown, the sign-in redirect target, and a DNC file's numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.errors import ValidationFailed
from dialwave.web.auth import safe_next
from dialwave.web.campaigns import form_errors, parse_windows, patch_of
from dialwave.web.dnc import numbers_in, numbers_of_file
from dialwave.web.leads import errors_csv
from dialwave.web.view import chart, state_view

COUNTS = {"total": 10, "queued": 4, "in_progress": 1, "completed": 3, "failed": 1, "skipped": 1, "retry_pending": 0}


def state(**over: Any) -> dict[str, Any]:
    return {
        "status": "active",
        "counts": {**COUNTS, "cancelled": 0},
        "live": {"in_flight": 2, "claimed": 0, "attempts_last_minute": 7},
        "pacing": {"max_concurrency": 5, "attempts_per_second": 0.5},
        "next_dial_at": None,
        "waiting_reason": None,
        **over,
    }


def test_progress_pace_and_concurrency() -> None:
    view = state_view(state())
    assert view["progress"] == 50 and view["progress_text"] == "50% (5 of 10 leads done)"
    assert view["pace"] == "7/min" and view["pace_limit"] == "at most 30/min"
    assert view["concurrency"] == "2 of 5" and view["waiting"] == "dialing" and view["next_dial"] == "—"
    waiting = state_view(state(next_dial_at="2026-03-02T22:00:00Z", waiting_reason="outside the calling windows"))
    assert waiting["waiting"] == "outside the calling windows" and waiting["next_dial"] == "2026-03-02 22:00:00 UTC"
    empty = state_view(state(counts={k: 0 for k in [*COUNTS, "cancelled"]}, status="draft"))
    assert empty["progress"] == 0 and empty["waiting"] == "—"


def test_the_chart_scales_to_the_busiest_minute() -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    minutes = [
        {"minute": start + timedelta(minutes=i), "attempts": n, "answered": n // 2, "outcomes": {"answered": n}}
        for i, n in enumerate([0, 4, 8, 2])
    ]
    drawn = chart(minutes)
    bars = drawn["bars"]
    assert [b["attempts"] for b in bars] == [0, 4, 8, 2] and drawn["peak"] == 8
    assert bars[2]["y"] == drawn["top"] and bars[0]["height"] == 0  # the busiest reaches the top
    assert bars[1]["height"] == pytest.approx(bars[2]["height"] / 2, abs=0.1)
    assert bars[2]["answered_height"] == pytest.approx(bars[2]["height"] / 2, abs=0.1)
    assert bars[0]["label"] == "15:00" and bars[0]["show_label"] and not bars[1]["show_label"]
    assert drawn["summary"] == "14 attempts in the last 4 minutes, 7 answered; at most 8 in one minute"
    assert chart([])["summary"].startswith("0 attempts")


def test_the_settings_form_becomes_a_merge_patch() -> None:
    form = {"max_concurrency": "8", "attempts_per_second": "2.5", "windows": "09:00-12:00; 14:00-18:00,"}
    patch = patch_of({**form, "timezone": "America/New_York"})
    assert patch == {
        "pacing": {"max_concurrency": 8, "attempts_per_second": 2.5},
        "schedule": {
            "windows": [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "18:00"}],
            "timezone": "America/New_York",
        },
    }
    assert patch_of({"attempts_per_second": "3"}, partial=True) == {"pacing": {"attempts_per_second": 3.0}}
    with pytest.raises(ValidationFailed) as bad:
        patch_of({**form, "max_concurrency": "8.5", "timezone": "UTC"})
    assert bad.value.fields == {"pacing.max_concurrency": "must be a whole number"}
    with pytest.raises(ValidationFailed):
        parse_windows("9 to 5")


def test_errors_go_beside_their_fields() -> None:
    shown = form_errors(
        {
            "schedule.windows[1].end": "not a time",
            "schedule.timezone": "cannot change while active",
            "pacing": "bad",
            "agent_id": "no agent",
        }
    )
    assert shown == {
        "windows": "not a time",
        "timezone": "cannot change while active",
        "max_concurrency": "bad",
        "general": "agent_id: no agent",
    }


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/campaigns/cmp_1", "/campaigns/cmp_1"),
        ("/dnc?phone_number=1", "/dnc?phone_number=1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_goes_back_only_to_a_page_of_this_site(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


def test_numbers_of_a_text_box_and_of_a_file() -> None:
    assert numbers_in("+1 415 555 0101, +14155550102\n\n+14155550103;x") == [
        "+1 415 555 0101",
        "+14155550102",
        "+14155550103",
        "x",
    ]
    data = "\ufeffphone_number;reason\n+14155550101;a\n\n+14155550102;b\n".encode()
    assert numbers_of_file(data) == [(2, "+14155550101"), (4, "+14155550102")]
    assert numbers_of_file(b"+14155550101\n+14155550102\n") == [(1, "+14155550101"), (2, "+14155550102")]


def test_the_row_errors_as_csv() -> None:
    text = errors_csv(["Row 2: invalid phone number 'x, y'", "Row 10: missing required variable 'name'", "odd"])
    assert text.splitlines() == [
        "row,error",
        "2,\"invalid phone number 'x, y'\"",
        "10,missing required variable 'name'",
        ",odd",
    ]
