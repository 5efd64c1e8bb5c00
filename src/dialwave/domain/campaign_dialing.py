"""The campaign configuration's dialing parts: when (`Schedule`), how fast (`Pacing`), how often again
(`Retry`, per outcome, and `Cooldowns`). `CampaignConfig` (campaign_config.py) holds them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, Field, model_validator

from dialwave.domain.config_fields import HHMM, Minutes, Strict, TimeZoneName

OUTCOMES_RETRYABLE = (
    "busy",
    "no_answer",
    "failed",
    "voicemail",
    "short_duration",
    "provider_error",
    "internal_error",
    "no_conversion",
)


class Window(Strict):
    start: HHMM = Field(examples=["09:00"])
    end: HHMM = Field(examples=["17:00"], description="end <= start: the range crosses midnight")


class Schedule(Strict):
    start_at: AwareDatetime | None = Field(None, description="first dial not before this instant")
    end_at: AwareDatetime | None = Field(None, description="the campaign completes at this instant")
    timezone: TimeZoneName = "UTC"
    days_of_week: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7, description="1 = Monday"
    )
    windows: list[Window] = Field(
        default_factory=lambda: [Window(start="09:00", end="20:00")], min_length=1, max_length=24
    )
    recipient_local_time: bool = Field(False, description="read windows in each lead's own time zone")


class Pacing(Strict):
    max_concurrency: int = Field(10, ge=1, le=1000)
    attempts_per_second: float = Field(1.0, ge=0.1, le=500)
    initial_delay_seconds: int = Field(0, ge=0, le=86400)


class RetryRule(Strict):
    enabled: bool = True
    max_retries: int = Field(2, ge=0, le=20)
    interval_minutes: list[Minutes] = Field(
        default_factory=lambda: [60], min_length=1, max_length=20, description="n-th retry waits the n-th entry"
    )
    threshold_seconds: int | None = Field(None, ge=1, le=3600, description="short_duration only")


# Each outcome's default rule: (enabled, max_retries, interval_minutes, threshold_seconds). A disabled
# rule still names a useful retry, so `{"enabled": true}` alone turns on something that retries.
RULE_DEFAULTS: dict[str, tuple[bool, int, list[int], int | None]] = {
    "busy": (True, 2, [30], None),
    "no_answer": (True, 2, [60], None),
    "failed": (False, 1, [60], None),
    "voicemail": (True, 1, [120], None),
    "short_duration": (False, 1, [60], 10),
    "provider_error": (True, 3, [5], None),
    "internal_error": (True, 3, [5], None),
    "no_conversion": (False, 1, [1440], None),
}


def default_rule(outcome: str) -> dict[str, Any]:
    enabled, retries, minutes, threshold = RULE_DEFAULTS[outcome]
    return {
        "enabled": enabled,
        "max_retries": retries,
        "interval_minutes": list(minutes),
        "threshold_seconds": threshold,
    }


def _rule(outcome: str) -> Any:
    return lambda: RetryRule.model_validate(default_rule(outcome))


class RetryOn(Strict):
    busy: RetryRule = Field(default_factory=_rule("busy"))
    no_answer: RetryRule = Field(default_factory=_rule("no_answer"))
    failed: RetryRule = Field(default_factory=_rule("failed"))
    voicemail: RetryRule = Field(default_factory=_rule("voicemail"))
    short_duration: RetryRule = Field(default_factory=_rule("short_duration"))
    provider_error: RetryRule = Field(default_factory=_rule("provider_error"))
    internal_error: RetryRule = Field(default_factory=_rule("internal_error"))
    no_conversion: RetryRule = Field(default_factory=_rule("no_conversion"))

    @model_validator(mode="before")
    @classmethod
    def _partial_rules(cls, data: Any) -> Any:
        """A rule given in part takes the rest from its outcome's default rule, as a merge-patch onto a
        stored default does: the same body gives the same rule whether it creates or updates."""
        if not isinstance(data, dict):
            return data
        return {
            name: {**default_rule(name), **given} if isinstance(given, dict) and name in RULE_DEFAULTS else given
            for name, given in data.items()
        }


class Retry(Strict):
    max_attempts: int = Field(3, ge=1, le=20, description="attempts per lead, first dial included")
    on: RetryOn = Field(default_factory=RetryOn)


class Cooldowns(Strict):
    after_success_hours: int | None = Field(None, ge=1, le=8760)
    after_completion_hours: int | None = Field(None, ge=1, le=8760)
