"""Pure rules: config checks, merge-patch, edit matrix, status machine, templates, phones, log masking."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dialwave.domain import campaign_rules as rules
from dialwave.domain.campaign_config import CampaignConfig, check
from dialwave.domain.phone import mask, normalize
from dialwave.domain.templates import render, variables_in
from dialwave.errors import InvalidPhoneNumber
from dialwave.logging import mask_phone
from dialwave.services.validation import fields_of


def config(**over: Any) -> CampaignConfig:
    return CampaignConfig.model_validate({"name": "c", **over})


def windows(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"windows": [{"start": a, "end": b} for a, b in pairs]}


def test_several_ranges_a_day_are_accepted() -> None:
    assert check(config(schedule=windows(("09:00", "12:00"), ("14:00", "17:00")))) == {}


def test_a_window_across_midnight_is_accepted_last() -> None:
    assert check(config(schedule=windows(("09:00", "12:00"), ("22:00", "02:00")))) == {}


def test_overlapping_windows_name_the_second_window() -> None:
    errors = check(config(schedule=windows(("09:00", "12:00"), ("11:00", "13:00"))))
    assert "schedule.windows[1].start" in errors


def test_windows_out_of_order_are_refused() -> None:
    errors = check(config(schedule=windows(("14:00", "16:00"), ("10:00", "12:00"))))
    assert "schedule.windows[1].start" in errors


def test_empty_window_is_refused_at_its_end() -> None:
    assert "schedule.windows[0].end" in check(config(schedule=windows(("10:00", "10:00"))))


def test_bad_time_format_names_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        config(schedule=windows(("9am", "12:00")))
    assert "schedule.windows[0].start" in fields_of(exc.value)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        config(schedule={"timezone": "Mars/Olympus"})
    assert fields_of(exc.value)["schedule.timezone"].startswith("unknown IANA time zone")


def test_naive_start_at_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        config(schedule={"start_at": "2026-03-01T10:00:00"})
    assert "schedule.start_at" in fields_of(exc.value)


def test_threshold_seconds_is_refused_on_any_reason_but_short_duration() -> None:
    errors = check(config(retry={"on": {"busy": {"threshold_seconds": 5}}}))
    assert errors == {"retry.on.busy.threshold_seconds": "only applies to short_duration"}


def test_interval_entries_are_bounded() -> None:
    with pytest.raises(ValidationError) as exc:
        config(retry={"on": {"busy": {"interval_minutes": [30, 20000]}}})
    assert "retry.on.busy.interval_minutes[1]" in fields_of(exc.value)


def test_custom_dnc_numbers_are_normalised_and_checked() -> None:
    cfg = config(dnc={"sources": ["custom"], "custom_numbers": ["+1 (415) 555-0123"]})
    assert cfg.dnc.custom_numbers == ["+14155550123"]
    with pytest.raises(ValidationError) as exc:
        config(dnc={"custom_numbers": ["+15551234567"]})
    assert "dnc.custom_numbers[0]" in fields_of(exc.value)


def test_merge_patch_follows_rfc7396() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert rules.merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert rules.merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert rules.merge_patch({"a": 1}, {"b": {"c": None}}) == {"a": 1, "b": {}}


@given(st.dictionaries(st.text(max_size=3), st.integers() | st.none(), max_size=5))
def test_merge_patch_with_itself_minus_nulls_is_identity(patch: dict[str, Any]) -> None:
    target = {k: v for k, v in patch.items() if v is not None}
    assert rules.merge_patch(target, patch) == target


def test_changed_paths_name_schedule_subfields_and_other_sections_whole() -> None:
    old = config().model_dump(mode="json")
    new = config(schedule={"timezone": "Europe/Paris"}, pacing={"max_concurrency": 3}).model_dump(mode="json")
    assert rules.changed_paths(old, new) == {"schedule.timezone", "pacing"}


@pytest.mark.parametrize(
    ("status", "paths", "code"),
    [
        ("draft", {"agent_id", "schedule.timezone"}, None),
        ("paused", {"agent_id", "dynamic_variables"}, None),
        ("scheduled", {"agent_overrides"}, None),
        ("active", {"pacing", "schedule.windows", "retry", "dnc", "webhook", "caller_ids"}, None),
        ("active", {"agent_id"}, "CAMPAIGN_ACTIVE"),
        ("active", {"schedule.timezone"}, "CAMPAIGN_ACTIVE"),
        ("active", {"schedule.recipient_local_time"}, "CAMPAIGN_ACTIVE"),
        ("active", {"dynamic_variables"}, "CAMPAIGN_ACTIVE"),
        ("completed", {"name", "description"}, None),
        ("completed", {"pacing"}, "CAMPAIGN_FINISHED"),
        ("cancelled", {"retry"}, "CAMPAIGN_FINISHED"),
    ],
)
def test_a_patch_is_allowed_or_refused_by_campaign_status_and_changed_fields(
    status: str, paths: set[str], code: str | None
) -> None:
    refusal = rules.check_edit(status, paths)
    assert (refusal.code if refusal else None) == code
    if code == "CAMPAIGN_ACTIVE":
        assert refusal is not None and "pause the campaign first" in refusal.message


@pytest.mark.parametrize(
    ("status", "action", "future", "target"),
    [
        ("draft", "start", False, "active"),
        ("draft", "start", True, "scheduled"),
        ("active", "pause", False, "paused"),
        ("scheduled", "pause", True, "paused"),
        ("paused", "resume", False, "active"),
        ("paused", "resume", True, "scheduled"),
        ("draft", "cancel", False, "cancelled"),
        ("active", "cancel", False, "cancelled"),
        ("active", "start", False, None),
        ("draft", "resume", False, None),
        ("completed", "cancel", False, None),
        ("cancelled", "start", False, None),
    ],
)
def test_each_status_action_reaches_its_target_or_is_refused_with_a_reason(
    status: str, action: str, future: bool, target: str | None
) -> None:
    step = rules.transition(status, action, start_in_future=future)
    assert step.target == target
    if target is None:
        assert step.refusal


def test_templates_list_their_variables_and_leave_missing_ones_unrendered() -> None:
    assert variables_in("Hi {{ name }} from {{company}}", None) == {"name", "company"}
    assert render("Hi {{name}}, {{missing}}", {"name": "Ada"}) == "Hi Ada, {{missing}}"


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+14155550123", None, "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("0044 20 7946 0000", None, "+442079460000"),
        ("020 7946 0000", "GB", "+442079460000"),
        ("+39 06 6982 0000", None, "+390669820000"),
    ],
)
def test_normalize_turns_e164_international_and_national_forms_into_e164(
    raw: str, region: str | None, e164: str
) -> None:
    assert normalize(raw, region) == e164


@pytest.mark.parametrize("raw", ["+1234", "hello", "+15551234567", "415 555 0123"])
def test_normalize_refuses_short_invalid_unparseable_and_regionless_numbers(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize(raw)


def test_masking_keeps_only_last_four_digits() -> None:
    assert mask("+14155550123") == "+*******0123"
    assert mask_phone("dialing +14155550123 from +1 (212) 555-0100") == "dialing +*******0123 from +* (***) ***-0100"
