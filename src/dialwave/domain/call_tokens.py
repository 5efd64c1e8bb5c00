"""Per-call tokens: what the carrier hands the agent runtime so it can read this call's context and post
its result, and nothing else. Stateless: `dwct_<call_id>.<expiry>.<HMAC-SHA256>`, keyed by a server
secret. Pure (the secret and `now` are passed in)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

PREFIX = "dwct_"
GRACE = timedelta(hours=1)  # a token outlives the call's longest allowed duration by this much


def expiry(started_at: datetime, max_call_seconds: int) -> datetime:
    return started_at + timedelta(seconds=max_call_seconds) + GRACE


def _mac(secret: bytes, call_id: str, expires: int) -> str:
    digest = hmac.new(secret, f"{call_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def mint(secret: bytes, call_id: str, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{PREFIX}{call_id}.{expires}.{_mac(secret, call_id, expires)}"


def is_call_token(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PREFIX)


def check(secret: bytes, token: str, call_id: str, now: datetime) -> str | None:
    """None when `token` lets its bearer act on `call_id` at `now`; else why not."""
    try:
        body = token.removeprefix(PREFIX)
        token_call, expires_text, mac = body.rsplit(".", 2)
        expires = int(expires_text)
    except ValueError:
        return "not a call token"
    if not hmac.compare_digest(mac, _mac(secret, token_call, expires)):
        return "not a call token"
    if token_call != call_id:
        return "this token is for another call"
    if now.timestamp() >= expires:
        return "this call token has expired"
    return None
