"""Webhook rules: the event catalogue and the retry schedule of a failed delivery (pure, takes `now`)."""

from __future__ import annotations

import base64
import binascii
import random
from datetime import datetime, timedelta

EVENT_TYPES = (
    "campaign.status_changed",
    "campaign.completed",
    "call.started",
    "call.answered",
    "call.ended",
    "call.result",
    "lead.completed",
    "lead.failed",
    "lead.dnc_added",
    "import.completed",
)

# Waits after the 1st, 2nd, ... failed send: seconds up to a day, 12 retries, about 3.3 days in all.
BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=16),
    timedelta(hours=24),
    timedelta(hours=24),
)
JITTER = 0.2  # each wait is drawn from [w * 0.8, w * 1.2]


def retry_at(failures: int, now: datetime, rng: random.Random | None = None) -> datetime | None:
    """When to send again after `failures` failed sends in a row; None: give up (the delivery failed)."""
    if failures < 1 or failures > len(BACKOFF):
        return None
    wait = BACKOFF[failures - 1].total_seconds()
    draw = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return now + timedelta(seconds=wait * draw)


def total_span() -> timedelta:
    return sum(BACKOFF, timedelta())


def matches(event_types: list[str] | None, event_type: str) -> bool:
    """An endpoint's filter: null or empty takes every event; `call.*` takes a whole family."""
    if not event_types:
        return True
    family = event_type.split(".", 1)[0] + ".*"
    return event_type in event_types or family in event_types


SECRET_PREFIX = "whsec_"


def is_secret(value: str) -> bool:
    """A Standard Webhooks secret: `whsec_` + base64 of 16 to 64 bytes."""
    if not value.startswith(SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (ValueError, binascii.Error):
        return False
    return 16 <= len(key) <= 64


FILTERS = (*EVENT_TYPES, "campaign.*", "call.*", "lead.*", "import.*")  # what an endpoint may subscribe to


def event_filters(value: list[str] | None) -> list[str] | None:
    """An endpoint's `event_types`, checked and deduplicated (ValueError names an unknown one)."""
    if value is None:
        return None
    unknown = [t for t in value if t not in FILTERS]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; one of: {', '.join(FILTERS)}")
    return list(dict.fromkeys(value))
