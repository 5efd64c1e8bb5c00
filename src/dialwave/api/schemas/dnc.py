"""Consents and do-not-call lists and numbers."""

from __future__ import annotations

import builtins
from datetime import datetime

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from dialwave.api.schemas.common import Out


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
