"""The pure parts of the API commands: --set paths, row errors, ETAs, number files, table cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialwave.cli_http.client import ApiError
from dialwave.cli_http.common import cell, duration
from dialwave.cli_http.dnc import numbers_in
from dialwave.cli_http.forecast import parse_sets
from dialwave.cli_http.leads import errors_path, parse_row_error
from dialwave.cli_http.watch import WatchState, pace_eta

NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


def test_set_paths_build_a_patch_shaped_object_with_json_values() -> None:
    assert parse_sets(
        [
            "pacing.max_concurrency=40",
            "pacing.attempts_per_second=2.5",
            'schedule.windows=[{"start": "09:00", "end": "17:00"}]',
            "schedule.timezone=America/New_York",
            "schedule.end_at=null",
            "auto_complete=false",
            "name=Q1 = the big one",
            "description=",
            'dynamic_variables.company="42"',
        ]
    ) == {
        "pacing": {"max_concurrency": 40, "attempts_per_second": 2.5},
        "schedule": {
            "windows": [{"start": "09:00", "end": "17:00"}],
            "timezone": "America/New_York",
            "end_at": None,
        },
        "auto_complete": False,
        "name": "Q1 = the big one",  # split at the first '='; not JSON: the string as written
        "description": "",
        "dynamic_variables": {"company": "42"},  # a quoted JSON string stays a string
    }
    assert parse_sets([]) == {}
    assert parse_sets(["pacing.max_concurrency=10", "pacing.max_concurrency=20"]) == {"pacing": {"max_concurrency": 20}}


@pytest.mark.parametrize("bad", ["pacing", "=3", "pacing..max=3", ".x=1", "x.=1"])
def test_a_set_without_a_path_and_value_is_refused(bad: str) -> None:
    with pytest.raises(ApiError, match="expected PATH=VALUE"):
        parse_sets([bad])


def test_a_set_below_a_value_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ApiError, match="pacing is already set to 3"):
        parse_sets(["pacing=3", "pacing.max_concurrency=4"])


def test_row_errors_are_split_into_row_and_reason() -> None:
    assert parse_row_error("Row 3: invalid phone number '+1234'") == (3, "invalid phone number '+1234'")
    assert parse_row_error("Row 12: missing required variable 'name'") == (12, "missing required variable 'name'")
    assert parse_row_error("the header has no phone column") == (None, "the header has no phone column")
    assert errors_path(Path("/data/leads.csv")) == Path("/data/leads-errors.csv")
    assert errors_path(Path("leads")) == Path("leads-errors.csv")


def test_the_eta_from_the_pace_and_from_the_forecast() -> None:
    campaign = {
        "id": "cmp_x",
        "status": "active",
        "counts": {"total": 100, "completed": 30, "failed": 5, "skipped": 3, "cancelled": 2},
        "live": {"attempts_last_minute": 12},
    }
    assert pace_eta(campaign, NOW) == NOW + timedelta(minutes=5)  # 60 left at 12 a minute
    assert pace_eta({**campaign, "live": {"attempts_last_minute": 0}}, NOW) is None

    watching = WatchState("cmp_x", campaign=campaign)
    watching.has_forecast_endpoint = False
    assert watching.eta(NOW) == "2031-03-04 12:05 UTC (in 5m 00s, from pace)"
    watching.has_forecast_endpoint, watching.forecast_at = True, NOW + timedelta(hours=2, minutes=3)
    assert watching.eta(NOW) == "2031-03-04 14:03 UTC (in 2h 03m, forecast)"
    watching.campaign = {**campaign, "status": "completed"}
    assert watching.eta(NOW) == "finished (completed)"


def test_number_files_with_a_header_or_one_number_a_line(tmp_path: Path) -> None:
    with_header = tmp_path / "a.csv"
    with_header.write_text("name;Phone\nAda;+14155550101\nLin;\nBo;+14155550102\n", encoding="utf-8-sig")
    assert list(numbers_in(with_header)) == [(2, "+14155550101"), (4, "+14155550102")]
    plain = tmp_path / "b.txt"
    plain.write_text("+14155550101\n\n# a comment\n+14155550102, opted out\n")
    assert list(numbers_in(plain)) == [(1, "+14155550101"), (4, "+14155550102")]


def test_table_cells_and_durations() -> None:
    assert cell(None) == "" and cell(True) == "yes" and cell({"a": [1]}) == '{"a":[1]}'
    assert cell("2031-03-04T12:00:05.123456Z") == "2031-03-04 12:00:05Z"
    assert cell("2031-03-04T12:00:05+00:00") == "2031-03-04 12:00:05Z"
    assert duration(timedelta(days=2, hours=3, minutes=4)) == "2d 3h"
    assert duration(timedelta(seconds=-5)) == "0s" and duration(timedelta(seconds=65)) == "1m 05s"
