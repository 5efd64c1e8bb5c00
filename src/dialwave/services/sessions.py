"""The dashboard's sessions. Signing in with an API key gives a cookie signed with a server secret
(HMAC-SHA256) that names the key and its organization, never the key itself. Every request re-reads the
key by its id, so a revoked key ends its sessions at once, and a key's scopes apply as they are now.
Each session has its own CSRF token, derived from the session (nothing is stored)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from dialwave.services.auth import Principal, authenticate
from dialwave.store.db import Database
from dialwave.store.repositories import api_keys
from dialwave.store.repositories.server_secrets import session_key

SESSION_SECONDS = 12 * 3600  # a session ends this long after sign-in

_keys: WeakKeyDictionary[Database, bytes] = WeakKeyDictionary()


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str  # put in every form of the session; checked on every POST
    expires_at: int  # epoch seconds

    @property
    def can_write(self) -> bool:
        return "write" in self.principal.scopes

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf_token)


async def _key(db: Database, now: datetime) -> bytes:
    """The signing key, read (or created) once per database handle: it never changes once created."""
    key = _keys.get(db)
    if key is None:
        async with db.write() as conn:
            key = _keys[db] = await session_key(conn, now)
    return key


def _mac(key: bytes, text: str) -> str:
    digest = hmac.new(key, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _session(key: bytes, who: Principal, expires: int, nonce: str) -> Session:
    return Session(who, _mac(key, f"csrf.{who.key_id}.{nonce}"), expires)


async def sign_in(db: Database, api_key: str | None, now: datetime) -> tuple[str, Session]:
    """The cookie value and the session of a valid API key (401 Unauthorized otherwise)."""
    who = await authenticate(db, (api_key or "").strip() or None)
    key = await _key(db, now)
    expires = int(now.timestamp()) + SESSION_SECONDS
    body = f"{who.key_id}.{who.organization_id}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_mac(key, body)}", _session(key, who, expires, body.rsplit(".", 1)[1])


async def session_of(db: Database, cookie: str | None, now: datetime) -> Session | None:
    """The session of a cookie: None when it is absent, forged, expired, or its key was revoked."""
    if not cookie or len(cookie) > 400:
        return None
    try:
        key_id, org_id, expires_text, nonce, mac = cookie.split(".")
        expires = int(expires_text)
    except ValueError:
        return None
    key = await _key(db, now)
    if not hmac.compare_digest(mac, _mac(key, f"{key_id}.{org_id}.{expires_text}.{nonce}")):
        return None
    if now.timestamp() >= expires:
        return None
    async with db.read() as conn:
        row = await api_keys.find_active_key_by_id(conn, key_id)
    if row is None or row["organization_id"] != org_id:
        return None
    return _session(key, Principal(org_id, key_id, frozenset(row["scopes"])), expires, nonce)
