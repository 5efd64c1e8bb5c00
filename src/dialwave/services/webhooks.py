"""Webhook endpoints (organization-wide, and each campaign's own `webhook.url`), secret rotation, the
delivery log and manual re-sends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.errors import Conflict, NotFound, UnsafeUrl, ValidationFailed
from dialwave.ids import new_id
from dialwave.store.db import Database
from dialwave.store.repositories import webhooks as repo
from dialwave.webhooks import signing
from dialwave.webhooks.events import iso
from dialwave.webhooks.ssrf import Resolver, SystemResolver, check_url


@dataclass(frozen=True)
class UrlGuard:
    """The SSRF policy for URLs saved through the API (the delivery worker checks again at send time)."""

    allow_loopback: bool = False
    resolver: Resolver = field(default_factory=SystemResolver)

    async def check(self, url: str, path: str) -> None:
        try:
            await check_url(url, self.resolver, self.allow_loopback, must_resolve=False)
        except UnsafeUrl as exc:
            raise ValidationFailed(f"{path}: {exc.message}", fields={path: exc.message}) from exc


async def _get(conn: AsyncConnection, org_id: str, endpoint_id: str) -> RowMapping:
    row = await repo.get_endpoint(conn, org_id, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint '{endpoint_id}'")
    return row


async def create_endpoint(
    db: Database,
    guard: UrlGuard,
    org_id: str,
    now: datetime,
    *,
    url: str,
    description: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool = True,
    secret: str | None = None,
) -> tuple[RowMapping, str]:
    """A new endpoint; returns it and its secret (`secret`, or a new one), shown this once."""
    await guard.check(url, "url")
    secret = secret or signing.new_secret()
    endpoint_id = new_id("whe")
    async with db.write() as conn:
        await repo.insert_endpoint(
            conn,
            {
                "id": endpoint_id,
                "organization_id": org_id,
                "url": url,
                "description": description,
                "event_types": event_types or None,
                "secrets": [{"secret": secret, "expires_at": None}],
                "enabled": enabled,
                "created_at": now,
                "updated_at": now,
            },
        )
        row = await _get(conn, org_id, endpoint_id)
    return row, secret


async def get_endpoint(db: Database, org_id: str, endpoint_id: str) -> RowMapping:
    async with db.read() as conn:
        return await _get(conn, org_id, endpoint_id)


async def update_endpoint(
    db: Database, guard: UrlGuard, org_id: str, endpoint_id: str, patch: dict[str, Any], now: datetime
) -> RowMapping:
    if patch.get("url") is not None:
        await guard.check(patch["url"], "url")
    async with db.write() as conn:
        row = await _get(conn, org_id, endpoint_id)
        if row["campaign_id"] is not None and set(patch) - {"enabled"}:
            raise Conflict(
                f"this endpoint is campaign {row['campaign_id']}'s webhook: change its url in the campaign "
                "(PATCH /v1/campaigns/{id} webhook.url); here only `enabled` may change",
                code="CAMPAIGN_ENDPOINT",
            )
        values: dict[str, Any] = {"updated_at": now}
        for key in ("url", "description", "event_types", "enabled"):
            if key in patch:
                if patch[key] is None and key in ("url", "enabled"):
                    raise ValidationFailed(f"{key}: may not be null", fields={key: "may not be null"})
                values[key] = (patch[key] or None) if key == "event_types" else patch[key]
        if values.get("enabled"):
            values["disabled_reason"] = None
        elif values.get("enabled") is False:
            values["disabled_reason"] = "disabled through the API"
        await repo.update_endpoint(conn, endpoint_id, values)
        return await _get(conn, org_id, endpoint_id)


async def delete_endpoint(db: Database, org_id: str, endpoint_id: str) -> None:
    async with db.write() as conn:
        row = await _get(conn, org_id, endpoint_id)
        if row["campaign_id"] is not None:
            raise Conflict(
                f"this endpoint is campaign {row['campaign_id']}'s webhook: clear webhook.url in the campaign",
                code="CAMPAIGN_ENDPOINT",
            )
        await repo.delete_endpoint(conn, endpoint_id)


async def rotate_secret(
    db: Database, org_id: str, endpoint_id: str, keep_old_seconds: int, now: datetime
) -> tuple[RowMapping, str]:
    """A new secret signs from now on; the previous ones keep signing too (several `v1,` signatures)
    until `keep_old_seconds` have passed, so receivers can switch without losing an event."""
    secret = signing.new_secret()
    until = iso(now + timedelta(seconds=keep_old_seconds))
    async with db.write() as conn:
        row = await _get(conn, org_id, endpoint_id)
        old = [
            {"secret": s, "expires_at": until}
            for s in signing.live_secrets(row["secrets"], now)
            if keep_old_seconds > 0
        ]
        await repo.update_endpoint(
            conn, endpoint_id, {"secrets": [{"secret": secret, "expires_at": None}, *old][:5], "updated_at": now}
        )
        return await _get(conn, org_id, endpoint_id), secret


async def sync_campaign_endpoint(
    conn: AsyncConnection, org_id: str, campaign_id: str, url: str | None, now: datetime
) -> tuple[str | None, str | None]:
    """Keep the campaign's own endpoint in step with its `webhook.url`: (endpoint id, new secret when
    the endpoint was just created; shown once)."""
    row = await repo.campaign_endpoint(conn, campaign_id)
    if url is None:
        if row is not None:
            await repo.delete_endpoint(conn, row["id"])
        return None, None
    if row is None:
        secret = signing.new_secret()
        endpoint_id = new_id("whe")
        await repo.insert_endpoint(
            conn,
            {
                "id": endpoint_id,
                "organization_id": org_id,
                "campaign_id": campaign_id,
                "url": url,
                "description": f"campaign {campaign_id}",
                "event_types": None,
                "secrets": [{"secret": secret, "expires_at": None}],
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            },
        )
        return endpoint_id, secret
    if row["url"] != url:
        await repo.update_endpoint(conn, row["id"], {"url": url, "enabled": True, "disabled_reason": None})
    return str(row["id"]), None


async def list_deliveries(
    db: Database, org_id: str, endpoint_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[tuple[RowMapping, list[RowMapping]]], str | None]:
    """Deliveries to the endpoint, oldest first, each with its attempts."""
    async with db.read() as conn:
        await _get(conn, org_id, endpoint_id)
        rows, nxt = await repo.list_deliveries(conn, endpoint_id, status, limit, cursor)
        logs = await repo.attempts_of(conn, [r["id"] for r in rows])
    return [(r, logs[r["id"]]) for r in rows], nxt


async def list_endpoints(
    db: Database, org_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    async with db.read() as conn:
        return await repo.list_endpoints(conn, org_id, limit, cursor)


async def retry_delivery(
    db: Database, org_id: str, endpoint_id: str, delivery_id: str, now: datetime
) -> tuple[RowMapping, list[RowMapping]]:
    async with db.write() as conn:
        endpoint = await _get(conn, org_id, endpoint_id)
        row = await repo.get_delivery(conn, endpoint_id, delivery_id)
        if row is None:
            raise NotFound(f"no delivery '{delivery_id}' for endpoint '{endpoint_id}'")
        if not endpoint["enabled"]:
            raise Conflict(
                "the endpoint is disabled: enable it first (PATCH with enabled: true)", code="ENDPOINT_DISABLED"
            )
        await repo.requeue_delivery(conn, delivery_id, now)
        fresh = await repo.get_delivery(conn, endpoint_id, delivery_id)
        assert fresh is not None
        logs = await repo.attempts_of(conn, [delivery_id])
    return fresh, logs[delivery_id]
