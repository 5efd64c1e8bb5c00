"""The audit export's pages, as CSV cells made by the database: times as ISO 8601 UTC text, the
decision's fields pulled out of its JSON, booleans as true/false, and a free-text reason that a
spreadsheet would run as a formula (= + - @) prefixed with '. Python only writes the rows out, so an
export of a million rows costs the database's work and the CSV writer's, little more.

Both queries page by id (keyset) over their index: `ix_calls_campaign_id`, `ix_leads_skipped`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

REASON = "CASE WHEN substr({col}, 1, 1) IN ('=', '+', '-', '@') THEN '''' || {col} ELSE {col} END"

_SQLITE_TIME = "strftime('%Y-%m-%dT%H:%M:%fZ', {col})"
_PG_TIME = """to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""

_SQLITE_CALLS = f"""
SELECT 'attempt', lead_id, id, attempt, to_number, from_number,
  {_SQLITE_TIME.format(col="coalesce(started_at, created_at)")}, status, outcome,
  {_SQLITE_TIME.format(col="answered_at")}, {_SQLITE_TIME.format(col="agent_connected_at")},
  {_SQLITE_TIME.format(col="ended_at")},
  CASE WHEN abandoned THEN 'true' ELSE 'false' END,
  json_extract(decision, '$.checked_at'),
  (SELECT group_concat(json_extract(value, '$.zone') || '=' || json_extract(value, '$.local_time'), '; ')
     FROM json_each(decision, '$.zones')),
  (SELECT group_concat(value, ';') FROM json_each(decision, '$.rules')),
  (SELECT group_concat(value, ';') FROM json_each(decision, '$.dnc_lists')),
  json_extract(decision, '$.consent.required'), json_extract(decision, '$.consent.id'),
  {REASON.format(col="reason")}
FROM calls WHERE campaign_id = :campaign_id {{after}} ORDER BY id LIMIT :limit
"""

_PG_CALLS = f"""
SELECT 'attempt', lead_id, id, attempt, to_number, from_number,
  {_PG_TIME.format(col="coalesce(started_at, created_at)")}, status, outcome,
  {_PG_TIME.format(col="answered_at")}, {_PG_TIME.format(col="agent_connected_at")},
  {_PG_TIME.format(col="ended_at")},
  CASE WHEN abandoned THEN 'true' ELSE 'false' END,
  decision->>'checked_at',
  (SELECT string_agg((z->>'zone') || '=' || (z->>'local_time'), '; ' ORDER BY n)
     FROM jsonb_array_elements(decision->'zones') WITH ORDINALITY AS t(z, n)),
  (SELECT string_agg(r, ';' ORDER BY n) FROM jsonb_array_elements_text(decision->'rules') WITH ORDINALITY AS t(r, n)),
  (SELECT string_agg(d, ';' ORDER BY n)
     FROM jsonb_array_elements_text(decision->'dnc_lists') WITH ORDINALITY AS t(d, n)),
  decision->'consent'->>'required', decision->'consent'->>'id',
  {REASON.format(col="reason")}
FROM calls WHERE campaign_id = :campaign_id {{after}} ORDER BY id LIMIT :limit
"""

_SKIPPED = """
SELECT 'skipped', id, NULL, attempts, phone_number, NULL, {time}, 'skipped',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {reason}
FROM leads WHERE campaign_id = :campaign_id AND status = 'skipped' {after} ORDER BY id LIMIT :limit
"""


def _page(template: str, after: str | None) -> sa.TextClause:
    return sa.text(template.format(after="AND id > :after" if after is not None else ""))


async def attempt_rows(conn: AsyncConnection, campaign_id: str, after: str | None, limit: int) -> Sequence[Any]:
    """A page of the campaign's calls after the call id `after`, as CSV cells (the call id is the third)."""
    template = _SQLITE_CALLS if conn.dialect.name == "sqlite" else _PG_CALLS
    params = {"campaign_id": campaign_id, "after": after, "limit": limit}
    return (await conn.execute(_page(template, after), params)).all()


async def skipped_rows(conn: AsyncConnection, campaign_id: str, after: str | None, limit: int) -> Sequence[Any]:
    """A page of the campaign's skipped leads after the lead id `after`, as CSV cells (the lead id second)."""
    time = (_SQLITE_TIME if conn.dialect.name == "sqlite" else _PG_TIME).format(col="finished_at")
    template = _SKIPPED.format(time=time, reason=REASON.format(col="reason"), after="{after}")
    params = {"campaign_id": campaign_id, "after": after, "limit": limit}
    return (await conn.execute(_page(template, after), params)).all()
