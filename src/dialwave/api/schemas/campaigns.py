"""Campaigns: the campaign as shown, its counts, its per-minute activity and its forecast."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

from dialwave.api.schemas.common import Out
from dialwave.domain.campaign_config import CampaignConfig, Webhook


class Counts(Out):
    total: int
    queued: int
    in_progress: int
    completed: int
    failed: int
    skipped: int
    retry_pending: int
    cancelled: int


class WebhookOut(Webhook):
    endpoint_id: str | None = Field(
        None,
        description="the endpoint delivering to webhook.url (see /v1/webhook-endpoints/{id}/deliveries)",
    )
    secret: str | None = Field(None, description="the endpoint's signing secret: only in the answer that created it")


class Abandonment(Out):
    """The campaign's abandoned calls over the last 30 days (compliance.max_abandon_rate pauses it above)."""

    window_days: int = Field(examples=[30])
    abandoned: int = Field(description="live answers whose agent connected later than abandon_after_seconds")
    live_answers: int = Field(description="ended calls answered by a person (not a machine)")
    rate: float = Field(description="abandoned / live_answers (0 without live answers)", examples=[0.012])


class CampaignOut(CampaignConfig):
    id: str = Field(examples=["cmp_01jd3m0f8x9v7k2q4r6t8w0y2a"])
    webhook: WebhookOut
    status: Literal["draft", "scheduled", "active", "paused", "completed", "cancelled"]
    status_reason: str | None
    agent_version_used: int | None
    counts: Counts
    next_dial_at: datetime | None = Field(
        description="active with nothing in flight: when the first waiting lead is due; scheduled: the start"
    )
    waiting_reason: str | None = Field(
        examples=["legal hours: next opening Tue 08:00 America/New_York"],
        description="why the campaign dials nothing before next_dial_at",
    )
    warnings: list[str] = Field(
        default_factory=list, description="what the operator should fix: a named do-not-call list missing or stale"
    )
    abandonment: Abandonment
    version: int
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MinuteOut(Out):
    minute: datetime
    attempts: int
    answered: int = Field(description="attempts a person answered (answered, short_duration, no_conversion, opted_out)")
    outcomes: dict[str, int] = Field(description="attempts by outcome; `in_flight` for calls not ended yet")


class ActivityOut(Out):
    data: list[MinuteOut]


class ForecastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: dict[str, JsonValue] | None = Field(
        None,
        description="a campaign PATCH body (merge-patch) to forecast with: what if the pacing, windows or"
        " retries were different; refused as the PATCH would refuse it",
        examples=[{"pacing": {"max_concurrency": 40}}],
    )


class ForecastHour(Out):
    hour: datetime
    attempts: int
    answered: int = Field(description="attempts a person answered")


class ForecastOut(Out):
    completes_at: datetime | None = Field(description="when the campaign completes; null: not within the horizon")
    attempts: int = Field(description="attempts still to come")
    outcomes: dict[str, int] = Field(description="those attempts by outcome")
    hourly: list[ForecastHour]
    basis: dict[str, JsonValue] = Field(
        description="what the forecast assumed: `outcome_mix` (observed, model or defaults), `observed_calls`,"
        " `leads` (remaining), `sampled_leads`, `as_if`, `changes`, `model`, `assumes`, `horizon_days`,"
        " `finished_within_horizon`"
    )
