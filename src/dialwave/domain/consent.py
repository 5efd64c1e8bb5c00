"""A consent record as it is given (API body, CSV row). Pure."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from dialwave.domain.campaign_config import Strict


class ConsentIn(Strict):
    phone_number: str = Field(max_length=64, examples=["+14155550123"])
    scope: Literal["marketing", "informational", "ai_voice"] = Field(
        description="what the person agreed to: marketing calls, informational calls, or calls by an AI voice"
    )
    source: str = Field(min_length=1, max_length=256, examples=["web form /signup"])
    captured_at: AwareDatetime = Field(examples=["2026-11-20T14:03:00Z"])
    evidence: str | None = Field(None, max_length=4_000, description="text, or a URL to the record")
    expires_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _expiry_after_capture(self) -> ConsentIn:
        if self.expires_at is not None and self.expires_at <= self.captured_at:
            raise ValueError("expires_at must be after captured_at")
        return self
