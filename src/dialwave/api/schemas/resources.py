"""Agents and phone numbers, with each carrier's settings as they are shown."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    Field,
)

from dialwave.api.schemas.common import Out
from dialwave.domain.resources import AgentConfig, SimulatedSettings


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
