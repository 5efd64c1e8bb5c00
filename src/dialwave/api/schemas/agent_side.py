"""What a voice agent reads and writes about its call: the call context and the call's result."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

from dialwave.api.schemas.common import Out
from dialwave.api.schemas.leads import CallOut
from dialwave.domain.config_fields import HttpUrlStr


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
