"""A consent record as it is given (API body, CSV row). Pure."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from dialwave.domain.config_fields import Strict


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


# A reply made of one of these words revokes consent: 47 CFR 64.1200(a)(10) (FCC 24-24, in force 11 April
# 2025) names "stop", "quit", "end", "revoke", "opt out", "cancel" and "unsubscribe"; Twilio's own
# messaging opt-out keywords add "stopall" and "optout".
OPT_OUT_WORDS = frozenset({"stop", "stopall", "quit", "end", "revoke", "opt out", "optout", "cancel", "unsubscribe"})


def is_opt_out_reply(text: str) -> bool:
    """Whether a text message is an opt-out: one of OPT_OUT_WORDS alone, whatever its case, spacing or
    punctuation ("Stop.", " STOP ", "opt-out")."""
    words = " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())
    return words in OPT_OUT_WORDS
