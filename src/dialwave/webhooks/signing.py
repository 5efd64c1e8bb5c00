"""Standard Webhooks signatures: `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC-SHA256 over
`{id}.{timestamp}.{body}` with the base64-decoded `whsec_` secret; one `v1,<sig>` per live secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dialwave.domain.webhooks import SECRET_PREFIX as PREFIX
from dialwave.domain.webhooks import is_secret

__all__ = ["headers", "is_secret", "live_secrets", "new_secret", "signature"]


def new_secret() -> str:
    return PREFIX + base64.b64encode(_secrets.token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers; several secrets (a rotation in progress) give several space-separated signatures."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
        "user-agent": "dialwave-webhooks/1",
    }


def live_secrets(stored: list[dict[str, Any]], now: datetime) -> list[str]:
    """The secrets still valid at `now` (the newest first): a rotated-out secret signs until it expires."""
    out = []
    for item in stored:
        expires = item.get("expires_at")
        if expires is None or datetime.fromisoformat(expires) > now:
            out.append(str(item["secret"]))
    return out
