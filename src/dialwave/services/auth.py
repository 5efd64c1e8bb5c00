"""API keys: `dw_live_<random>`, 190 bits of randomness, only a SHA-256 hash stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from dialwave.errors import Forbidden, Unauthorized
from dialwave.store.db import Database
from dialwave.store.repositories import api_keys, orgs

KEY_PREFIX = "dw_live_"
SCOPES = ("read", "write")


@dataclass(frozen=True)
class Principal:
    organization_id: str
    key_id: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


async def authenticate(db: Database, key: str | None) -> Principal:
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer dw_live_...' or 'X-API-Key'")
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        raise Unauthorized("invalid API key")
    async with db.read() as conn:
        row = await api_keys.find_active_key(conn, hash_key(key))
    if row is None:
        raise Unauthorized("invalid or revoked API key")
    return Principal(row["organization_id"], row["id"], frozenset(row["scopes"]))


@dataclass(frozen=True)
class CreatedKey:
    key: str
    key_id: str
    organization_id: str
    scopes: list[str]


async def create_key(
    db: Database, org_name: str, scopes: list[str], now: datetime, name: str | None = None
) -> CreatedKey:
    bad = sorted(set(scopes) - set(SCOPES))
    if bad or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(bad) or 'none'})")
    key = KEY_PREFIX + secrets.token_urlsafe(24)  # 24 bytes = 192 bits
    async with db.write() as conn:
        org_id = await orgs.get_or_create_org(conn, org_name, now)
        key_id = await api_keys.insert_key(conn, org_id, key[:14], hash_key(key), sorted(scopes), name, now)
    return CreatedKey(key, key_id, org_id, sorted(scopes))


async def list_keys(db: Database, org_name: str | None) -> list[dict[str, object]]:
    """Every key (of one organization), without the keys themselves."""
    async with db.read() as conn:
        return await api_keys.list_keys(conn, org_name)


async def revoke_key(db: Database, key_id: str, now: datetime) -> bool:
    """False when no active key has this id."""
    async with db.write() as conn:
        return await api_keys.revoke_key(conn, key_id, now)
