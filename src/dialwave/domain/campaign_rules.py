"""Campaign status machine, edit matrix and JSON merge-patch (RFC 7396)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

DRAFT, SCHEDULED, ACTIVE, PAUSED, COMPLETED, CANCELLED = (
    "draft",
    "scheduled",
    "active",
    "paused",
    "completed",
    "cancelled",
)
STATUSES = (DRAFT, SCHEDULED, ACTIVE, PAUSED, COMPLETED, CANCELLED)
FINAL = frozenset({COMPLETED, CANCELLED})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, `null` removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def changed_paths(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Top-level fields that differ; `schedule` is compared per sub-field (schedule.windows...)."""
    paths: set[str] = set()
    for key in set(old) | set(new):
        if old.get(key) == new.get(key):
            continue
        if key == "schedule" and isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            for sub in set(old[key]) | set(new[key]):
                if old[key].get(sub) != new[key].get(sub):
                    paths.add(f"schedule.{sub}")
        else:
            paths.add(key)
    return paths


ALWAYS_EDITABLE = frozenset({"name", "description"})
# Applied to attempts not yet started while the campaign runs.
LIVE_EDITABLE = ALWAYS_EDITABLE | {
    "type",
    "pacing",
    "schedule.windows",
    "schedule.days_of_week",
    "schedule.end_at",
    "retry",
    "dnc",
    "webhook",
    "pre_dial_hook",
    "caller_ids",
    "caller_id_strategy",
    "cooldowns",
    "ring_timeout_seconds",
    "machine_detection",
    "auto_complete",
}


@dataclass(frozen=True)
class EditRefusal:
    code: str
    message: str
    fields: dict[str, str]


def check_edit(status: str, paths: set[str]) -> EditRefusal | None:
    """The edit matrix: which fields a PATCH may change in which status. Draft, scheduled and paused
    take every field; active takes LIVE_EDITABLE (the agent, its overrides, dynamic variables, the time
    zone and recipient_local_time need a pause first); completed and cancelled only name and description."""
    if status in (DRAFT, SCHEDULED, PAUSED):
        return None
    if status == ACTIVE:
        blocked = sorted(paths - LIVE_EDITABLE)
        if blocked:
            return EditRefusal(
                "CAMPAIGN_ACTIVE",
                f"{', '.join(blocked)} cannot change while the campaign is active: pause the campaign first "
                "(POST /v1/campaigns/{id}/pause), edit, then resume",
                {p: "cannot change while active; pause the campaign first" for p in blocked},
            )
        return None
    blocked = sorted(paths - ALWAYS_EDITABLE)
    if blocked:
        return EditRefusal(
            "CAMPAIGN_FINISHED",
            f"the campaign is {status}: only name and description can change; create a new campaign "
            f"(refused: {', '.join(blocked)})",
            {p: f"cannot change once {status}" for p in blocked},
        )
    return None


@dataclass(frozen=True)
class Transition:
    target: str | None
    refusal: str | None = None


def transition(status: str, action: str, *, start_in_future: bool) -> Transition:
    """Where a status action leads from `status`, or why it can't."""
    if action == "start":
        if status == DRAFT:
            return Transition(SCHEDULED if start_in_future else ACTIVE)
        hint = {
            SCHEDULED: "it is already scheduled; it starts by itself at schedule.start_at",
            ACTIVE: "it is already active",
            PAUSED: "it is paused: use /resume",
        }.get(status, f"it is {status}; create a new campaign")
        return Transition(None, f"cannot start: {hint}")
    if action == "pause":
        if status in (ACTIVE, SCHEDULED):
            return Transition(PAUSED)
        hint = "start it first" if status == DRAFT else f"it is {status}"
        return Transition(None, f"cannot pause: {hint}")
    if action == "resume":
        if status == PAUSED:
            return Transition(SCHEDULED if start_in_future else ACTIVE)
        hint = "use /start" if status == DRAFT else f"it is {status}, not paused"
        return Transition(None, f"cannot resume: {hint}")
    if action == "cancel":
        if status not in FINAL:
            return Transition(CANCELLED)
        return Transition(None, f"cannot cancel: it is already {status}")
    return Transition(None, f"unknown action '{action}'")


WEEK = 7 * 1440


def _open_minutes(schedule: dict[str, Any]) -> set[int]:
    """The minutes of the week (Monday 00:00 = 0) the windows open, in the schedule's own zone."""
    opened: set[int] = set()
    for day in schedule.get("days_of_week") or []:
        for window in schedule.get("windows") or []:
            start, end = _minutes(window["start"]), _minutes(window["end"])
            length = end - start if end > start else 1440 - start + end
            base = (int(day) - 1) * 1440 + start
            opened.update((base + m) % WEEK for m in range(length))
    return opened


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _delay(config: dict[str, Any]) -> int:
    return int((config.get("pacing") or {}).get("initial_delay_seconds") or 0)


def _hours(config: dict[str, Any], key: str) -> int:
    return int((config.get("cooldowns") or {}).get(key) or 0)


def opens_earlier(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Can the new configuration make a waiting lead dialable earlier than the old one did? (A wider
    or moved window, another zone or recipient_local_time, an earlier or removed start_at, a shorter
    initial delay, a shorter or removed cooldown.) Such an edit re-plans the campaign's waiting leads."""
    before, after = old.get("schedule") or {}, new.get("schedule") or {}
    if before.get("timezone") != after.get("timezone"):
        return True
    if before.get("recipient_local_time") != after.get("recipient_local_time"):
        return True
    start_before, start_after = before.get("start_at"), after.get("start_at")
    if start_before is not None and (start_after is None or _instant(start_after) < _instant(start_before)):
        return True
    if _delay(new) < _delay(old):
        return True
    if any(_hours(new, k) < _hours(old, k) for k in ("after_success_hours", "after_completion_hours")):
        return True
    return bool(_open_minutes(after) - _open_minutes(before))
