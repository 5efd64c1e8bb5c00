"""Shapes shared by every resource: the error body and the page of a list."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

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
