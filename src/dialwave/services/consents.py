"""Consent records: who agreed to be called, for what (scope), where it was captured, its evidence, until
when. A campaign with `compliance.require_consent` dials only numbers holding a valid one; an opt-out or
a do-not-call listing revokes a number's consents at once (store/repositories/dnc.py, services/dnc.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy.engine import RowMapping

from dialwave.domain.consent import ConsentIn
from dialwave.errors import NotFound, ValidationFailed
from dialwave.ids import new_id, new_ids
from dialwave.services.validation import phone_field
from dialwave.store.db import Database
from dialwave.store.repositories import consents as repo

FUTURE_SLACK = timedelta(minutes=5)  # a capture time this far ahead of our clock is still accepted
COLUMNS = ("phone_number", "scope", "source", "captured_at", "evidence", "expires_at")


def _row(org_id: str, consent_id: str, body: ConsentIn, number: str, now: datetime) -> dict[str, Any]:
    if body.captured_at > now + FUTURE_SLACK:
        raise ValidationFailed("captured_at: is in the future", fields={"captured_at": "in the future"})
    return {
        "id": consent_id,
        "organization_id": org_id,
        "phone_number": number,
        "scope": body.scope,
        "source": body.source,
        "captured_at": body.captured_at,
        "evidence": body.evidence,
        "expires_at": body.expires_at,
        "created_at": now,
    }


async def create(db: Database, org_id: str, body: ConsentIn, now: datetime) -> RowMapping:
    row = _row(org_id, new_id("cns"), body, phone_field(body.phone_number, "phone_number"), now)
    async with db.write() as conn:
        await repo.insert_consents(conn, [row])
        created = await repo.get_consent(conn, org_id, row["id"])
    assert created is not None
    return created


async def get(db: Database, org_id: str, consent_id: str) -> RowMapping:
    async with db.read() as conn:
        row = await repo.get_consent(conn, org_id, consent_id)
    if row is None:
        raise NotFound(f"no consent '{consent_id}'")
    return row


async def list_consents(
    db: Database, org_id: str, raw: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    number = phone_field(raw, "phone_number") if raw else None
    async with db.read() as conn:
        return await repo.list_consents(conn, org_id, number, limit, cursor)


async def revoke(db: Database, org_id: str, consent_id: str, now: datetime) -> RowMapping:
    """Revoked now through the API (a consent revoked already stays as it was)."""
    async with db.write() as conn:
        if await repo.get_consent(conn, org_id, consent_id) is None:
            raise NotFound(f"no consent '{consent_id}'")
        await repo.revoke(conn, org_id, consent_id, "api", now)
        row = await repo.get_consent(conn, org_id, consent_id)
    assert row is not None
    return row


def parse_csv(binary: IO[bytes], org_id: str, now: datetime, max_rows: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of a consent CSV (header: phone_number, scope, source, captured_at, and optionally evidence,
    expires_at), validated: (rows to insert, errors "Row N: ..." counted from 1)."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
    try:
        reader = csv.DictReader(text)
        header = [h.strip() for h in reader.fieldnames or []]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed(f"file: cannot be read as UTF-8 CSV ({exc})", fields={"file": "not a CSV"}) from exc
    missing = [c for c in COLUMNS[:4] if c not in header]
    if missing:
        message = f"the header lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})"
        raise ValidationFailed(f"file: {message}", fields={"file": message})
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    records: list[tuple[int, dict[str, Any]]] = []
    try:
        for i, record in enumerate(reader, start=1):
            if i > max_rows:
                raise ValidationFailed(f"file: more than {max_rows} rows; split it", fields={"file": "too many rows"})
            records.append((i, {k.strip(): (v or "").strip() or None for k, v in record.items() if k}))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed(f"file: row {len(records) + 1}: {exc}", fields={"file": str(exc)}) from exc
    ids = new_ids("cns", len(records))
    for (i, record), consent_id in zip(records, ids, strict=True):
        try:
            body = ConsentIn.model_validate({k: record.get(k) for k in COLUMNS if record.get(k) is not None})
            rows.append(_row(org_id, consent_id, body, phone_field(body.phone_number, "phone_number"), now))
        except ValidationError as exc:
            first = exc.errors()[0]
            errors.append(f"Row {i}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
        except ValidationFailed as exc:
            errors.append(f"Row {i}: {exc.message}")
    return rows, errors


async def import_rows(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.write() as conn:
        for start in range(0, len(rows), 5_000):
            await repo.insert_consents(conn, rows[start : start + 5_000])
