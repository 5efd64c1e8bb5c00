"""Agents and phone numbers: their shapes and rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from dialwave.domain.campaign_config import SpeechSettings
from dialwave.domain.config_fields import E164, HttpUrlStr, SigningSecret, Strict, VarName
from dialwave.domain.templates import variables_in


def _sip_uri(value: str) -> str:
    if not re.match(r"^(sips?:)?[A-Za-z0-9._+\-@:;=\[\]]+$", value):
        raise ValueError("must be a SIP URI or host[:port], e.g. sip:trunk.example.com:5060")
    return value


SipUri = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_sip_uri)]


class AgentConfig(Strict):
    name: str = Field(min_length=1, max_length=128)
    system_prompt: str = Field("", max_length=50_000)
    opening_message: str = Field("", max_length=5_000)
    voice: str | None = Field(None, max_length=128)
    language: str = Field("en-US", max_length=35)
    required_variables: list[VarName] = Field(default_factory=list, max_length=100)
    status: Literal["live", "testing", "disabled"] = "live"
    speech_settings: SpeechSettings | None = None
    max_call_duration_seconds: int = Field(600, ge=10, le=14_400)
    sip_uri: SipUri | None = Field(None, description="the voice runtime's SIP endpoint (agent bridge)")
    media_stream_url: Annotated[str, Field(max_length=2048)] | None = Field(
        None, description="wss:// URL of the runtime's media stream (Twilio <Connect><Stream>)"
    )
    context_webhook_url: HttpUrlStr | None = Field(
        None, description="the call's context is also POSTed here when the call is answered (signed, with its token)"
    )
    context_webhook_secret: SigningSecret | None = Field(
        None,
        description="whsec_ secret signing the context push (Standard Webhooks); required with "
        "context_webhook_url; write-only: null when read",
    )

    def template_variables(self) -> set[str]:
        return variables_in(self.system_prompt, self.opening_message)


class SipSettings(Strict):
    trunk_uri: SipUri
    username: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=256, description="write-only")
    transport: Literal["udp", "tcp"] = "udp"


class TwilioSettings(Strict):
    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: str | None = Field(None, min_length=1, max_length=128, description="write-only")


class LiveKitSettings(Strict):
    """A LiveKit project (Cloud or self-hosted) with an outbound SIP trunk and a dispatchable agent."""

    url: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^(https?|wss?)://[^\s]+$")]
    api_key: str = Field(min_length=1, max_length=128)
    api_secret: str | None = Field(None, min_length=1, max_length=256, description="write-only")
    sip_trunk_id: str = Field(min_length=1, max_length=128, description="the outbound trunk (ST_...)")
    agent_name: str = Field(min_length=1, max_length=128, description="the agent dispatched into each call's room")


class TelnyxSettings(Strict):
    """A Telnyx Call Control application (connection_id) and the account's key for webhook signatures."""

    api_key: str | None = Field(None, min_length=1, max_length=256, description="write-only")
    connection_id: str = Field(min_length=1, max_length=128)
    public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")] = Field(
        description="the account's Ed25519 public key (base64), which checks the webhooks' signatures"
    )
    machine_detection: Literal["detect", "premium"] = Field(
        "detect", description="answering_machine_detection sent when the campaign asks for machine detection"
    )


class VapiSettings(Strict):
    api_key: str | None = Field(None, min_length=1, max_length=256, description="Vapi private API key; write-only")
    assistant_id: str = Field(min_length=1, max_length=128)
    phone_number_id: str = Field(min_length=1, max_length=128, description="the Vapi phone number that dials")
    webhook_secret: str | None = Field(
        None,
        min_length=16,
        max_length=256,
        description="Vapi sends it with every server message to dialwave (X-Vapi-Secret, or Authorization: "
        "Bearer with credential_id); write-only",
    )
    credential_id: str | None = Field(
        None,
        max_length=128,
        description="a Vapi Bearer Token custom credential whose token is webhook_secret: Vapi authenticates "
        "with it instead of dialwave sending the X-Vapi-Secret header",
    )


class RetellSettings(Strict):
    api_key: str | None = Field(
        None, min_length=1, max_length=256, description="Retell API key with the webhook badge; write-only"
    )
    agent_id: str = Field(min_length=1, max_length=128)


SimOutcome = Literal["answered", "busy", "no_answer", "voicemail", "failed"]


def _default_outcomes() -> dict[SimOutcome, float]:
    return {"answered": 0.4, "busy": 0.2, "no_answer": 0.3, "voicemail": 0.05, "failed": 0.05}


Rate = Annotated[float, Field(ge=0, le=1)]
RingSeconds = Annotated[float, Field(ge=0, le=600)]
TalkSeconds = Annotated[float, Field(ge=0, le=14_400)]
CallbackHours = Annotated[float, Field(ge=0, le=24 * 366)]
MachineSeconds = Annotated[float, Field(ge=0, le=120)]
SPANS = (
    "ring_seconds",
    "talk_seconds",
    "callback_after_hours",
    "machine_detect_seconds",
    "greeting_seconds",
    "agent_connect_seconds",
)


class SimulatedSettings(Strict):
    """The simulated carrier's model. Every duration is a [min, max] range bounded to what a call can
    last: the engine's clock arithmetic never meets an absurd value."""

    seed: int = Field(1, ge=0, le=2**31 - 1)
    outcomes: dict[SimOutcome, Rate] = Field(default_factory=_default_outcomes)
    ring_seconds: tuple[RingSeconds, RingSeconds] = (2, 20)
    talk_seconds: tuple[TalkSeconds, TalkSeconds] = (5, 240)
    conversion_rate: float = Field(0.3, ge=0, le=1)
    # The simulated carrier plays the agent runtime too: of the answered calls, these shares report an
    # opt-out, or ask for a callback some hours later (docs/agent-side.md).
    opt_out_rate: float = Field(0.0, ge=0, le=1)
    callback_rate: float = Field(0.0, ge=0, le=1)
    callback_after_hours: tuple[CallbackHours, CallbackHours] = (1.0, 48.0)
    # Answering machines: how long detection takes to recognise one after the answer, and how long its
    # greeting lasts before the beep (detection that needs longer than the campaign's timeout gives up,
    # and the call goes on as if a person had answered).
    machine_detect_seconds: tuple[MachineSeconds, MachineSeconds] = (2.0, 6.0)
    greeting_seconds: tuple[MachineSeconds, MachineSeconds] = (4.0, 14.0)
    # How long after a person answers the agent's media connects (a value above the campaign's
    # compliance.abandon_after_seconds makes the call abandoned).
    agent_connect_seconds: tuple[MachineSeconds, MachineSeconds] = (0.2, 1.0)
    scripted: dict[E164, list[SimOutcome]] | None = Field(
        None, max_length=10_000, description="per called number: the n-th attempt's outcome (the last repeats)"
    )

    @model_validator(mode="after")
    def _ranges(self) -> SimulatedSettings:
        for name in SPANS:
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: the minimum {low:g} is above the maximum {high:g}")
        if self.outcomes and sum(self.outcomes.values()) <= 0:
            raise ValueError("outcomes: at least one rate must be above 0")
        return self


class PhoneNumberConfig(Strict):
    number: E164
    provider: Literal["simulated", "sip", "twilio", "livekit", "telnyx", "vapi", "retell"] = "simulated"
    friendly_name: str | None = Field(None, max_length=128)
    active: bool = True
    max_calls_per_second: float | None = Field(
        None, ge=0.1, le=500, description="attempts per second this caller id may start (null: no limit of its own)"
    )
    max_concurrency: int | None = Field(None, ge=1, le=10_000)
    sip: SipSettings | None = None
    twilio: TwilioSettings | None = None
    vapi: VapiSettings | None = None
    retell: RetellSettings | None = None
    simulated: SimulatedSettings | None = None
    livekit: LiveKitSettings | None = None
    telnyx: TelnyxSettings | None = None


def check_agent(config: AgentConfig) -> dict[str, str]:
    if not config.name.strip():
        return {"name": "must not be blank"}
    errors: dict[str, str] = {}
    dupes = {v for v in config.required_variables if config.required_variables.count(v) > 1}
    if dupes:
        errors["required_variables"] = f"listed twice: {', '.join(sorted(dupes))}"
    if config.context_webhook_url and not config.context_webhook_secret:
        errors["context_webhook_secret"] = (
            "is required with context_webhook_url (whsec_...): the push carries the call's token, and your "
            "runtime must be able to verify that dialwave sent it"
        )
    return errors


def check_number(config: PhoneNumberConfig) -> dict[str, str]:
    errors: dict[str, str] = {}
    if config.provider == "sip" and config.sip is None:
        errors["sip"] = "required when provider is sip (trunk_uri at least)"
    for hosted in ("livekit", "telnyx", "vapi", "retell"):
        if config.provider == hosted and getattr(config, hosted) is None:
            errors[hosted] = f"required when provider is {hosted}"
    # Twilio credentials may also come from the organization (services/agents checks that).
    if config.simulated is not None:
        total = sum(config.simulated.outcomes.values())
        if any(v < 0 for v in config.simulated.outcomes.values()) or abs(total - 1.0) > 1e-6:
            errors["simulated.outcomes"] = f"rates must be >= 0 and add up to 1 (they add up to {total:g})"
        for key in ("ring_seconds", "talk_seconds"):
            low, high = getattr(config.simulated, key)
            if low < 0 or high < low:
                errors[f"simulated.{key}"] = "must be [min, max] with 0 <= min <= max"
    for other in ("sip", "twilio", "simulated", "livekit", "telnyx", "vapi", "retell"):
        if other != config.provider and getattr(config, other) is not None and other != "simulated":
            errors[other] = f"only allowed when provider is {other}"
    return errors


HOSTED_SECRETS = (
    ("livekit", "api_secret"),
    ("telnyx", "api_key"),
    ("vapi", "api_key"),
    ("vapi", "webhook_secret"),
    ("retell", "api_key"),
)


def missing_secrets(config: Mapping[str, Any]) -> dict[str, str]:
    """A hosted platform's secret is required (after an update kept the stored one, when it left it out)."""
    return {
        f"{section}.{key}": "required (write-only: an update that leaves it out keeps the stored one)"
        for section, key in HOSTED_SECRETS
        if isinstance(config.get(section), Mapping) and not config[section].get(key)
    }


def twilio_credentials(config: Mapping[str, Any], org: Mapping[str, str] | None) -> dict[str, str] | None:
    """A Twilio number's credentials: its own account_sid and auth_token, else its organization's."""
    own = config.get("twilio") or {}
    if own.get("account_sid") and own.get("auth_token"):
        return {"account_sid": own["account_sid"], "auth_token": own["auth_token"]}
    return dict(org) if org else None
