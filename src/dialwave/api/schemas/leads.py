"""Leads in (a batch, a patch) and out, the import's answer, and the calls placed to them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SkipValidation,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from dialwave.api.schemas.common import Out
from dialwave.domain.campaign_config import AgentOverrides
from dialwave.domain.legal import checked_region


class LeadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone_number: str = Field(max_length=64, examples=["+14155550123"])
    variables: dict[str, JsonValue] = Field(default_factory=dict, max_length=200, examples=[{"name": "Ada"}])
    timezone: str | None = Field(None, max_length=64, examples=["America/New_York"])
    region: str | None = Field(
        None,
        max_length=8,
        examples=["US-TX"],
        description="ISO 3166-2 subdivision where the person is: its calling rules apply, over the area code's"
        " (and, without a `timezone`, its zones)",
    )
    agent_overrides: AgentOverrides | None = None
    _region = field_validator("region")(checked_region)


class LeadPatch(BaseModel):
    """A JSON merge-patch of a waiting lead: `null` clears (a variable set to null is removed)."""

    model_config = ConfigDict(extra="forbid")
    variables: dict[str, JsonValue] | None = Field(None, max_length=200, examples=[{"company": "Globex"}])
    timezone: str | None = Field(None, max_length=64, examples=["America/Chicago"])
    region: str | None = Field(None, max_length=8, examples=["US-IL"])
    agent_overrides: AgentOverrides | None = None
    _region = field_validator("region")(checked_region)


class LeadsBatch(BaseModel):
    # Its `leads` are checked by `lead_rows`, in a worker thread (validating 10,000 leads with their
    # variables took 70-150 ms: on the event loop, every other request would have waited that long).
    model_config = ConfigDict(extra="forbid")
    leads: SkipValidation[list[LeadIn]] = Field(min_length=1, max_length=10_000)
    default_region: str | None = Field(None, min_length=2, max_length=2, examples=["US"])


_LEAD_ROWS: TypeAdapter[list[LeadIn]] = TypeAdapter(Annotated[list[LeadIn], Field(min_length=1, max_length=10_000)])


def lead_rows(leads: Any) -> list[dict[str, Any]]:
    """A batch's leads, validated (422 naming `leads[i]...` otherwise), as plain dicts."""
    try:
        rows = _LEAD_ROWS.validate_python(leads)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", "leads", *e["loc"])} for e in exc.errors()]) from exc
    return [lead.model_dump(mode="json", exclude_none=True) for lead in rows]


class ImportResult(Out):
    accepted: int
    rejected: int
    duplicates: int
    dnc: int = Field(description="rows skipped because the number is on a do-not-call list")
    rows: int = Field(description="data rows read")
    errors: list[str] = Field(examples=[["Row 3: missing required variable 'customer_name'"]])
    errors_truncated: bool


class LeadOut(Out):
    id: str
    campaign_id: str
    phone_number: str
    variables: dict[str, JsonValue]
    timezone: str | None
    region: str | None = Field(description="ISO 3166-2 subdivision whose calling rules apply (US-TX)")
    agent_overrides: dict[str, JsonValue] | None
    status: Literal["queued", "dialing", "in_call", "retry_pending", "completed", "failed", "skipped", "cancelled"]
    attempts: int
    last_outcome: str | None = Field(description="the last attempt's outcome, or no_conversion")
    next_attempt_at: datetime | None
    reason: str | None = Field(description="why it is where it is, e.g. 'on a do-not-call list', 'busy retry 1'")
    retries: dict[str, int] = Field(description="retries used per outcome")
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CallOut(Out):
    id: str
    campaign_id: str
    lead_id: str
    attempt: int
    from_number: str
    to_number: str
    status: Literal["pending", "dialing", "ringing", "in_call", "ended"] = Field(
        description="pending: the intent to dial is recorded; the carrier hears of it at started_at"
    )
    outcome: str | None
    conversion: bool | None
    caller_id: str | None = Field(description="the phone number id that placed the call")
    agent_version: int | None
    reason: str | None = Field(description="the retry decision taken after the call")
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    provider_call_id: str | None
    sip_code: int | None
    voicemail_left: bool | None = Field(
        description="a machine answered: true when the voicemail message was left; null when no machine answered"
    )
    agent_connected_at: datetime | None = Field(
        description="when the person could hear the agent (SIP: the agent leg answered; Twilio: the media stream"
        " started)"
    )
    abandoned: bool = Field(
        description="a person answered and the agent did not connect within compliance.abandon_after_seconds"
    )
    decision: dict[str, Any] | None = Field(
        description="what allowed the dial, as the claim's checks found it: zones and the local time in each,"
        " rule ids, do-not-call lists checked, consent used (docs/compliance.md, audit trail)",
        examples=[
            {
                "checked_at": "2026-11-27T14:00:00+00:00",
                "zones": [{"zone": "America/New_York", "local_time": "2026-11-27T09:00:00-05:00"}],
                "rules": ["US"],
                "campaign_zone": "America/New_York",
                "recipient_local_time": True,
                "dnc_lists": ["organization"],
                "consent": {"required": "none", "id": None},
            }
        ],
    )
    created_at: datetime
