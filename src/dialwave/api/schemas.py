"""Request and response shapes (they are also the OpenAPI document)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SkipValidation,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from dialwave.domain.campaign_config import AgentOverrides, CampaignConfig, HttpUrlStr, Webhook
from dialwave.domain.legal import checked_region
from dialwave.domain.resources import AgentConfig, SimulatedSettings
from dialwave.domain.webhooks import FILTERS, event_filters, is_secret

T = TypeVar("T")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Out):
    type: str = Field(examples=["validation_error"])
    message: str = Field(examples=["schedule.windows[1].end: must differ from start"])
    fields: dict[str, str] = Field(
        default_factory=dict, examples=[{"schedule.windows[1].end": "must differ from start"}]
    )
    code: str | None = Field(None, examples=["CAMPAIGN_ACTIVE"])
    request_id: str


class ErrorBody(Out):
    error: ErrorDetail


class Page(Out, Generic[T]):
    data: list[T]
    next_cursor: str | None


class AgentOut(AgentConfig):
    id: str = Field(examples=["agt_01jd3m0f8x9v7k2q4r6t8w0y2a"])
    context_webhook_secret_set: bool = False
    version: int
    created_at: datetime
    updated_at: datetime


class SipOut(Out):
    trunk_uri: str
    username: str | None
    transport: Literal["udp", "tcp"]
    password_set: bool


class TwilioOut(Out):
    account_sid: str
    auth_token_set: bool


class LiveKitOut(Out):
    url: str
    api_key: str
    sip_trunk_id: str
    agent_name: str
    api_secret_set: bool


class TelnyxOut(Out):
    connection_id: str
    public_key: str
    machine_detection: Literal["detect", "premium"]
    api_key_set: bool


class VapiOut(Out):
    assistant_id: str
    phone_number_id: str
    credential_id: str | None
    api_key_set: bool
    webhook_secret_set: bool


class RetellOut(Out):
    agent_id: str
    api_key_set: bool


class PhoneNumberOut(Out):
    id: str = Field(examples=["pn_01jd3m0f8x9v7k2q4r6t8w0y2a"])
    number: str = Field(examples=["+14155550123"])
    provider: Literal["simulated", "sip", "twilio", "livekit", "telnyx", "vapi", "retell"]
    friendly_name: str | None
    active: bool
    max_calls_per_second: float | None
    max_concurrency: int | None
    sip: SipOut | None
    twilio: TwilioOut | None
    vapi: VapiOut | None = None
    retell: RetellOut | None = None
    simulated: SimulatedSettings | None
    livekit: LiveKitOut | None = None
    telnyx: TelnyxOut | None = None
    created_at: datetime
    updated_at: datetime


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


class ConsentOut(Out):
    id: str
    phone_number: str
    scope: str
    source: str
    captured_at: datetime
    evidence: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_channel: str | None = Field(description="how it was revoked: api, opt_out (a call's result), dnc, ...")
    valid: bool = Field(description="captured, not expired and not revoked, now")
    created_at: datetime


class ConsentImportResult(Out):
    accepted: int
    rejected: int
    errors: list[str]


class DncListOut(Out):
    name: str
    source: str | None
    numbers: int
    refreshed_at: datetime | None
    max_age_days: int | None
    stale: bool = Field(description="refreshed longer ago than max_age_days")


class DncListPage(Out):
    data: list[DncListOut]


class DncListImportResult(Out):
    list: DncListOut
    lines: int
    imported: int = Field(description="distinct numbers on the list now")
    rejected: int
    errors: builtins.list[str]


class DncAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numbers: list[str] = Field(min_length=1, max_length=10_000, examples=[["+14155550123"]])
    reason: str | None = Field(None, max_length=256, examples=["asked not to be called"])


class DncAddResult(Out):
    added: int
    already_listed: int


class DncOut(Out):
    phone_number: str
    reason: str | None
    source: str
    created_at: datetime


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, examples=["https://example.com/hooks/dialwave"])
    description: str | None = Field(None, max_length=512)
    event_types: list[str] | None = Field(
        None, max_length=len(FILTERS), description="null or empty: every event; `call.*` takes a family"
    )
    enabled: bool = True
    secret: str | None = Field(None, max_length=128, description="bring your own whsec_ secret (else generated)")

    _types = field_validator("event_types")(event_filters)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not is_secret(value):
            raise ValueError("must be whsec_ followed by base64 of 16 to 64 bytes")
        return value


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, min_length=1, max_length=2048)
    description: str | None = Field(None, max_length=512)
    event_types: list[str] | None = Field(None, max_length=len(FILTERS))
    enabled: bool | None = None

    _types = field_validator("event_types")(event_filters)


class EndpointOut(Out):
    id: str = Field(examples=["whe_01jd3m0f8x9v7k2q4r6t8w0y2a"])
    url: str
    description: str | None
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    campaign_id: str | None = Field(description="set: this is the campaign's own webhook.url endpoint")
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], description="shown once")


class AttemptOut(Out):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(Out):
    id: str = Field(examples=["dlv_01jd3m0f8x9v7k2q4r6t8w0y2a"])
    endpoint_id: str
    event_id: str = Field(description="also the webhook-id header, the same on every attempt")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut]


class ContextAgent(Out):
    id: str | None
    version: int | None
    name: str | None


class ContextCampaign(Out):
    id: str
    name: str
    type: str
    description: str | None


class ContextMachineDetection(Out):
    enabled: bool
    timeout_seconds: int
    on_voicemail: Literal["hangup", "leave_message"]


class CallContext(Out):
    call_id: str
    campaign_id: str
    lead_id: str
    attempt: int
    to_number: str
    from_number: str
    from_name: str | None = Field(description="the caller id's friendly_name: who the agent calls on behalf of")
    campaign: ContextCampaign = Field(description="what the call is for: the campaign's name, type, description")
    agent: ContextAgent
    system_prompt: str
    opening_message: str
    variables: dict[str, JsonValue]
    returning: bool = Field(description="this number was reached by an earlier call of the organization")
    short_term_summaries: list[str]
    language: str
    voice: str | None
    speech_settings: dict[str, JsonValue] | None
    max_call_duration_seconds: int
    campaign_context: str | None
    machine_detection: ContextMachineDetection
    voicemail_message: str | None = Field(
        description="set when a machine's answer is to get this message after the beep (rendered)"
    )


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversion: bool | None = Field(
        None, description="false applies the campaign's no_conversion retry rule; it overrides the carrier's report"
    )
    disposition: str | None = Field(None, max_length=64, examples=["booked"])
    summary: str | None = Field(None, max_length=20_000, description="fed to later calls' short_term_summaries")
    transcript: str | None = Field(None, max_length=2_000_000)
    transcript_url: HttpUrlStr | None = None
    opted_out: bool = Field(False, description="adds the number to the DNC list, cancels its pending attempts")
    voicemail_left: bool | None = Field(
        None, description="a machine answered: whether the runtime left the voicemail message (recorded on the call)"
    )
    callback_at: AwareDatetime | None = Field(
        None, description="the person asked to be called back: one attempt then (moved into legal hours and windows)"
    )
    data: dict[str, JsonValue] | None = Field(None, max_length=200)


class CallResultOut(Out):
    call_id: str
    conversion: bool | None
    disposition: str | None
    summary: str | None
    transcript: str | None
    transcript_url: str | None
    opted_out: bool
    callback_at: datetime | None
    data: dict[str, JsonValue] | None
    created_at: datetime
    updated_at: datetime


class CallDetail(CallOut):
    result: CallResultOut | None = Field(description="what the agent runtime posted (POST /v1/calls/{id}/result)")
