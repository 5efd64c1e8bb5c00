"""Validated field types of the configuration models (campaigns, phone numbers, agents, consents), and
their base model `Strict`."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dialwave.domain.phone import normalize
from dialwave.domain.templates import VARIABLE_NAME
from dialwave.domain.webhooks import is_secret
from dialwave.errors import InvalidPhoneNumber

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError("must be a 24-hour time HH:MM (00:00-23:59, or 24:00 for an end)")
    return value


@lru_cache(maxsize=1024)
def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zone(value: str) -> str:
    if not is_time_zone(value):
        raise ValueError(f"unknown IANA time zone '{value}'")
    return value


def _e164(value: str) -> str:
    try:
        return normalize(value)
    except InvalidPhoneNumber as exc:
        raise ValueError(f"invalid phone number '{value}' (E.164 expected, e.g. +14155550123)") from exc


def _var_name(value: str) -> str:
    if not VARIABLE_NAME.match(value):
        raise ValueError("variable names are letters, digits and _, not starting with a digit, at most 64 chars")
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/?#]+[^\s]*$", value):
        raise ValueError("must be an http(s) URL")
    return value


HHMM = Annotated[str, AfterValidator(_hhmm)]
TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_zone)]
E164 = Annotated[str, Field(max_length=32), AfterValidator(_e164)]
VarName = Annotated[str, AfterValidator(_var_name)]
HttpUrlStr = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]


def _whsec(value: str) -> str:
    if not is_secret(value):
        raise ValueError("must be whsec_ followed by base64 of 16 to 64 bytes")
    return value


SigningSecret = Annotated[str, Field(max_length=128), AfterValidator(_whsec)]  # Standard Webhooks whsec_
Minutes = Annotated[int, Field(ge=1, le=10080)]


class Strict(BaseModel):
    """Every configuration model: unknown fields refused, and no NaN or Infinity in any number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
