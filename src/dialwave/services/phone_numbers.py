"""Phone numbers (caller ids): create, merge-patch update (write-only secrets kept), delete, read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.campaign_rules import merge_patch
from dialwave.domain.resources import PhoneNumberConfig, check_number, missing_secrets, twilio_credentials
from dialwave.errors import Conflict, NotFound, ValidationFailed
from dialwave.ids import new_id
from dialwave.services.validation import phone_field, raise_fields, refuse_read_only, validate
from dialwave.store.db import Database
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import orgs as orgs_repo
from dialwave.store.repositories import phone_numbers as repo

READ_ONLY = ("id", "version", "created_at", "updated_at", "organization_id")
SECRETS = (
    ("sip", "password"),
    ("twilio", "auth_token"),
    ("livekit", "api_secret"),
    ("telnyx", "api_key"),
    ("vapi", "api_key"),
    ("vapi", "webhook_secret"),
    ("retell", "api_key"),
)


def _keep_secrets(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Write-only secrets survive an update that does not resend them."""
    for section, key in SECRETS:
        if isinstance(new.get(section), dict) and new[section].get(key) is None:
            previous = (old.get(section) or {}).get(key)
            if previous is not None:
                new[section][key] = previous
    return new


async def _check_twilio(conn: AsyncConnection, org_id: str, config: dict[str, Any]) -> None:
    """A Twilio number needs credentials: its own, or the organization's (`dialwave orgs twilio`)."""
    if config["provider"] != "twilio":
        return
    if twilio_credentials(config, None) is not None or org_id in await orgs_repo.org_twilio(conn, [org_id]):
        return
    own = config.get("twilio")
    message = "give account_sid and auth_token, or set the organization's (dialwave orgs twilio)"
    raise ValidationFailed(f"twilio: {message}", fields={"twilio.auth_token" if own else "twilio": message})


async def create_number(db: Database, org_id: str, body: PhoneNumberConfig, now: datetime) -> RowMapping:
    raise_fields(check_number(body))
    config = body.model_dump(mode="json")
    raise_fields(missing_secrets(config))
    number_id = new_id("pn")
    async with db.write() as conn:
        await _check_twilio(conn, org_id, config)
        if await repo.number_taken(conn, org_id, config["number"]):
            raise Conflict(f"{config['number']} is already registered in this organization", code="NUMBER_EXISTS")
        await repo.insert_number(conn, number_id, org_id, config, now)
        row = await repo.get_number(conn, org_id, number_id)
    assert row is not None
    return row


async def get_number(db: Database, org_id: str, number_id: str) -> RowMapping:
    async with db.read() as conn:
        row = await repo.get_number(conn, org_id, number_id)
    if row is None:
        raise NotFound(f"no phone number '{number_id}'")
    return row


async def list_numbers(
    db: Database, org_id: str, number: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    """The organization's numbers, or the one registered as `number` (any spelling, read as E.164)."""
    filters = {"number": phone_field(number, "number")} if number else {}
    async with db.read() as conn:
        return await repo.list_numbers(conn, org_id, filters, limit, cursor)


async def update_number(db: Database, org_id: str, number_id: str, patch: Any, now: datetime) -> RowMapping:
    refuse_read_only(patch, READ_ONLY)
    async with db.write() as conn:
        row = await repo.get_number(conn, org_id, number_id)
        if row is None:
            raise NotFound(f"no phone number '{number_id}'")
        config = validate(PhoneNumberConfig, merge_patch(row["config"], patch))
        raise_fields(check_number(config))
        new = _keep_secrets(row["config"], config.model_dump(mode="json"))
        raise_fields(missing_secrets(new))
        await _check_twilio(conn, org_id, new)
        if new["number"] != row["number"] and await repo.number_taken(conn, org_id, new["number"], number_id):
            raise Conflict(f"{new['number']} is already registered in this organization", code="NUMBER_EXISTS")
        await repo.update_number(conn, number_id, new, now)
        updated = await repo.get_number(conn, org_id, number_id)
    assert updated is not None
    return updated


async def delete_number(db: Database, org_id: str, number_id: str) -> None:
    async with db.write() as conn:
        if await repo.get_number(conn, org_id, number_id) is None:
            raise NotFound(f"no phone number '{number_id}'")
        users = [
            r["id"]
            for r in await campaign_repo.open_campaign_configs(conn, org_id)
            if any(c["phone_number_id"] == number_id for c in r["config"].get("caller_ids", []))
        ]
        if users:
            raise Conflict(
                f"the number is a caller id of {len(users)} open campaign(s) ({', '.join(users[:5])}): "
                "remove it from their caller_ids first, or set active to false",
                code="NUMBER_IN_USE",
            )
        await repo.delete_number(conn, number_id)


async def providers_in_use(db: Database) -> set[str]:
    """Carriers the phone numbers of every organization use."""
    async with db.read() as conn:
        return await repo.providers_in_use(conn)
