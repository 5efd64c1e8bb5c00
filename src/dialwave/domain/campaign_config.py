"""The campaign's configuration: shape (pydantic) and cross-field rules (`check`).

The API validates a create body, or a stored config with a merge-patch applied, through
`CampaignConfig`; `check` adds the rules that need several fields and reports them by path."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from dialwave.domain.campaign_dialing import OUTCOMES_RETRYABLE, Cooldowns, Pacing, Retry, RetryRule, Schedule
from dialwave.domain.config_fields import E164, HttpUrlStr, SigningSecret, Strict, VarName

AUTO_DNC_TRIGGERS = Literal[
    "opted_out", "answered", "completed", "no_conversion", "voicemail", "busy", "no_answer", "failed"
]


def _org_source() -> list[Literal["organization", "custom"]]:
    return ["organization"]


def _opted_out() -> list[AUTO_DNC_TRIGGERS]:
    return ["opted_out"]


class Dnc(Strict):
    enabled: bool = True
    sources: list[Literal["organization", "custom"]] = Field(default_factory=_org_source, max_length=2)
    custom_numbers: list[E164] = Field(default_factory=list, max_length=100_000)
    lists: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]] = Field(
        default_factory=list,
        max_length=20,
        description="named do-not-call lists (POST /v1/dnc/import) whose numbers are never dialed",
    )
    auto_add_on: list[AUTO_DNC_TRIGGERS] = Field(default_factory=_opted_out, max_length=8)

    @property
    def uses_organization_list(self) -> bool:
        """The organization's do-not-call list applies to this campaign's leads."""
        return self.enabled and "organization" in self.sources

    def custom_list(self) -> frozenset[str]:
        """The campaign's own do-not-call numbers, when they apply (else empty)."""
        return frozenset(self.custom_numbers) if self.enabled and "custom" in self.sources else frozenset()

    def named_lists(self) -> list[str]:
        """The named lists that apply (none when the DNC check is off)."""
        return list(self.lists) if self.enabled else []


class MachineDetection(Strict):
    enabled: bool = False
    timeout_seconds: int = Field(30, ge=3, le=60)
    on_voicemail: Literal["hangup", "leave_message"] = "hangup"
    voicemail_message: str | None = Field(None, max_length=4000)


class SpeechSettings(Strict):
    style: str | None = Field(None, max_length=64, examples=["neutral"])
    responsiveness: str | None = Field(None, max_length=64, examples=["balanced"])
    interruptions: str | None = Field(None, max_length=64, examples=["on"])
    emotions: str | None = Field(None, max_length=64, examples=["natural"])


class AgentOverrides(Strict):
    system_prompt: str | None = Field(None, max_length=50_000)
    opening_message: str | None = Field(None, max_length=5_000)
    voice: str | None = Field(None, max_length=128)
    language: str | None = Field(None, max_length=35)
    speech_settings: SpeechSettings | None = None
    campaign_context: str | None = Field(None, max_length=20_000)
    max_call_duration_seconds: int | None = Field(None, ge=10, le=14_400)
    use_returning_greeting: bool | None = None
    use_short_term_summaries: bool | None = None
    short_term_summaries_limit: int | None = Field(None, ge=1, le=50)


class Compliance(Strict):
    """Rules a campaign must prove it followed (docs/compliance.md)."""

    require_consent: Literal["none", "any", "ai_voice"] = Field(
        "none",
        description="a lead is dialed only with a valid consent of this scope (`any`: any scope;"
        " `ai_voice`: an AI voice, FCC 24-17); checked at claim and again at dial time",
    )
    unknown_location: Literal["all_zones", "campaign_zone"] = Field(
        "all_zones",
        description="a number whose location is unknown (toll-free, other non-geographic numbers) and whose"
        " lead names no `timezone` or `region`: `all_zones` dials it only when legal in every zone of its"
        " country (for NANP, the zones libphonenumber gives); `campaign_zone` times it in the campaign's zone",
    )

    abandon_after_seconds: float = Field(
        2.0,
        ge=0.5,
        le=60,
        description="a call answered by a person whose agent does not connect within this many seconds is"
        " abandoned (47 CFR 64.1200(a)(7): 2 seconds after the greeting)",
    )
    max_abandon_rate: float | None = Field(
        0.03,
        ge=0,
        le=1,
        description="the campaign pauses when its abandoned calls exceed this share of its live answers over"
        " the last 30 days (null: never)",
    )
    abandon_redial_hours: float | None = Field(
        None,
        gt=0,
        le=24 * 31,
        description="a number whose call was abandoned (in any campaign of the organization) is not dialed"
        " again before this many hours after that call ended (Ofcom: 72)",
    )

    def consent_scopes(self) -> tuple[str, ...] | None:
        """The scopes a consent must have (None: any); only when consent is required."""
        return ("ai_voice",) if self.require_consent == "ai_voice" else None


class Webhook(Strict):
    url: HttpUrlStr | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict, max_length=64)


class PreDialHook(Strict):
    """Asked before each dial: answers {"allow": false, "reason": "..."} to skip the lead (an external
    DNC or consent check). Errors and timeouts follow `on_error`."""

    url: HttpUrlStr | None = Field(None, description="required (checked with the other cross-field rules)")
    timeout_ms: int = Field(2000, ge=100, le=10_000)
    on_error: Literal["allow", "deny"] = Field(
        "deny", description="deny (fail closed): the lead waits 5 minutes and is asked again; allow: dial"
    )
    secret: SigningSecret | None = Field(
        None, description="whsec_ secret: requests are signed per Standard Webhooks when set"
    )


class CallerId(Strict):
    phone_number_id: str = Field(min_length=1, max_length=40)
    weight: int = Field(1, ge=1, le=1000)


class CampaignConfig(Strict):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(None, max_length=2000)
    type: Literal["sales", "follow_up", "reminder", "notification", "survey", "collections", "custom"] = "custom"
    agent_id: str | None = Field(None, min_length=1, max_length=40)
    agent_version: int | None = Field(None, ge=1, le=2**31 - 1)
    caller_ids: list[CallerId] = Field(default_factory=list, max_length=100)
    caller_id_strategy: Literal["weighted", "round_robin", "sticky", "local_presence"] = "weighted"
    schedule: Schedule = Field(default_factory=Schedule)
    pacing: Pacing = Field(default_factory=Pacing)
    retry: Retry = Field(default_factory=Retry)
    cooldowns: Cooldowns = Field(default_factory=Cooldowns)
    dnc: Dnc = Field(default_factory=Dnc)
    ring_timeout_seconds: int = Field(30, ge=5, le=120)
    machine_detection: MachineDetection = Field(default_factory=MachineDetection)
    agent_overrides: AgentOverrides = Field(default_factory=AgentOverrides)
    dynamic_variables: dict[VarName, JsonValue] = Field(default_factory=dict, max_length=200)
    webhook: Webhook = Field(default_factory=Webhook)
    pre_dial_hook: PreDialHook | None = None
    compliance: Compliance = Field(default_factory=Compliance)
    auto_complete: bool = True


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def check(config: CampaignConfig) -> dict[str, str]:
    """Rules that span several fields; returns {field path: message}, empty when all hold."""
    errors: dict[str, str] = {}
    name = config.name.strip()
    if not name:
        errors["name"] = "must not be blank"
    if config.pre_dial_hook is not None and not config.pre_dial_hook.url:
        errors["pre_dial_hook.url"] = "required (to remove the hook, set pre_dial_hook to null)"
    sched = config.schedule
    if len(set(sched.days_of_week)) != len(sched.days_of_week):
        errors["schedule.days_of_week"] = "must not repeat a day"
    windows = sched.windows
    for i, window in enumerate(windows):
        start, end = _minutes(window.start), _minutes(window.end)
        if window.start == "24:00":
            errors[f"schedule.windows[{i}].start"] = "24:00 is only valid as an end"
        elif start == end or (start == 0 and end == 1440):
            if start == end:
                errors[f"schedule.windows[{i}].end"] = "must differ from start (end before start crosses midnight)"
        elif end < start and i != len(windows) - 1:
            errors[f"schedule.windows[{i}].end"] = "only the last window may cross midnight"
        if i > 0:
            prev_end = _minutes(windows[i - 1].end)
            prev_start = _minutes(windows[i - 1].start)
            if start < prev_start:
                errors[f"schedule.windows[{i}].start"] = f"windows must be in order: starts before windows[{i - 1}]"
            elif prev_end > prev_start and start < prev_end:
                errors[f"schedule.windows[{i}].start"] = (
                    f"overlaps windows[{i - 1}], which ends at {windows[i - 1].end}"
                )
    if windows:
        last = windows[-1]
        first_start = _minutes(windows[0].start)
        if _minutes(last.end) < _minutes(last.start) and _minutes(last.end) > first_start and len(windows) > 1:
            errors[f"schedule.windows[{len(windows) - 1}].end"] = "crosses midnight into windows[0]"
    if sched.start_at and sched.end_at and sched.end_at <= sched.start_at:
        errors["schedule.end_at"] = "must be after schedule.start_at"
    for outcome in OUTCOMES_RETRYABLE:
        rule: RetryRule = getattr(config.retry.on, outcome)
        if outcome != "short_duration" and rule.threshold_seconds is not None:
            errors[f"retry.on.{outcome}.threshold_seconds"] = "only applies to short_duration"
        if rule.enabled and rule.max_retries == 0:
            errors[f"retry.on.{outcome}.max_retries"] = (
                "retries nothing while enabled: set it to 1 or more, or enabled: false"
            )
    if config.retry.on.short_duration.threshold_seconds is None:
        errors["retry.on.short_duration.threshold_seconds"] = "is required (seconds below which an answer is short)"
    ids = [c.phone_number_id for c in config.caller_ids]
    for i, pid in enumerate(ids):
        if pid in ids[:i]:
            errors[f"caller_ids[{i}].phone_number_id"] = "listed twice"
    if config.dnc.enabled and not config.dnc.sources:
        errors["dnc.sources"] = "name at least one source when dnc.enabled is true"
    if "custom" in config.dnc.sources and not config.dnc.custom_numbers and config.dnc.enabled:
        errors["dnc.custom_numbers"] = "the custom source needs at least one number"
    md = config.machine_detection
    if md.on_voicemail == "leave_message" and not md.voicemail_message:
        errors["machine_detection.voicemail_message"] = "required when on_voicemail is leave_message"
    return errors


def future(start_at: datetime | None, now: datetime) -> bool:
    return start_at is not None and start_at > now


def past_times(schedule: Schedule, changed: set[str], status: str, now: datetime) -> dict[str, str]:
    """A schedule time being set that has already passed: an end_at in the past would complete the
    campaign at once; a start_at in the past means nothing to a campaign that has not started."""
    errors: dict[str, str] = {}
    if "schedule.end_at" in changed and schedule.end_at is not None and schedule.end_at <= now:
        errors["schedule.end_at"] = "is in the past; give a future instant, or null for no end"
    if (
        "schedule.start_at" in changed
        and status in ("draft", "scheduled")
        and schedule.start_at is not None
        and schedule.start_at < now
    ):
        errors["schedule.start_at"] = "is in the past; give a future instant, or null to start at once"
    return errors
