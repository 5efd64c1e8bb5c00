"""Webhook endpoints, their deliveries and the attempts of each delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from dialwave.api.schemas.common import Out
from dialwave.domain.webhooks import FILTERS, event_filters, is_secret


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
