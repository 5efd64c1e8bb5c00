"""Rows of a lead import: what makes one valid (a dialable number, the variables its templates need,
a known time zone, an ISO 3166-2 region) and the import's report (counts and row errors). Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dialwave.domain.config_fields import is_time_zone
from dialwave.domain.legal import region_problem
from dialwave.domain.phone import normalize
from dialwave.errors import InvalidPhoneNumber

MAX_VARIABLES_CHARS = 32_768  # a lead's variables (names and values) take at most this many characters


def variables_size(variables: dict[str, Any]) -> int:
    """Characters a lead's variables take: names and values (a value that is not text, as JSON)."""
    return sum(len(k) + (len(v) if isinstance(v, str) else len(json.dumps(v))) for k, v in variables.items())


# -- what every row is checked against, and the report ----------------------------------------------
def _row_number(error: str) -> int:
    head = error.split(":", 1)[0]
    return int(head[4:]) if head.startswith("Row ") and head[4:].isdigit() else 0


@dataclass
class ImportReport:
    max_errors: int
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    dnc: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    errors_truncated: bool = False

    def error(self, row: int, message: str) -> None:
        if len(self.errors) < self.max_errors:
            self.errors.append(f"Row {row}: {message}")
        else:
            self.errors_truncated = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "dnc": self.dnc,
            "rows": self.rows,
            "errors": sorted(self.errors, key=_row_number),
            "errors_truncated": self.errors_truncated,
        }


@dataclass
class ImportContext:
    """What every row is checked against, read once per import."""

    org_id: str
    campaign_id: str
    region: str | None
    required: frozenset[str]
    defaults: frozenset[str]
    check_org_dnc: bool
    custom_dnc: frozenset[str]
    metadata: dict[str, Any] = field(default_factory=dict)  # the campaign's webhook.metadata (echoed in events)


@dataclass
class Candidate:
    row: int
    phone: str
    variables: dict[str, Any]
    timezone: str | None
    agent_overrides: dict[str, Any] | None
    region: str | None = None


def check_row(
    ctx: ImportContext,
    report: ImportReport,
    row: int,
    raw_phone: Any,
    variables: dict[str, Any],
    timezone: str | None,
    overrides: dict[str, Any] | None,
    region: str | None = None,
) -> Candidate | None:
    """Validate one row; report and drop it when it is wrong."""
    report.rows += 1
    if raw_phone is None or str(raw_phone).strip() == "":
        report.rejected += 1
        report.error(row, "missing phone number")
        return None
    try:
        phone = normalize(str(raw_phone), ctx.region)
    except InvalidPhoneNumber:
        report.rejected += 1
        report.error(row, f"invalid phone number '{str(raw_phone)[:40]}'")
        return None
    missing = sorted(ctx.required - ctx.defaults - variables.keys())
    if missing:
        report.rejected += 1
        names = ", ".join(f"'{m}'" for m in missing)
        report.error(row, f"missing required variable{'s' if len(missing) > 1 else ''} {names}")
        return None
    size = variables_size(variables)
    if size > MAX_VARIABLES_CHARS:
        report.rejected += 1
        report.error(row, f"its variables take {size} characters; at most {MAX_VARIABLES_CHARS}")
        return None
    if timezone and not is_time_zone(timezone):
        report.rejected += 1
        report.error(row, f"unknown time zone '{timezone[:64]}'")
        return None
    if region:
        if not isinstance(region, str):
            region = str(region)
        region = region.strip().upper()
        problem = region_problem(region)
        if problem is not None:
            report.rejected += 1
            report.error(row, f"region: {problem}")
            return None
    return Candidate(row, phone, variables, timezone or None, overrides, region or None)


def common_keys(batch: list[Candidate]) -> set[str]:
    """The variable names every lead of the batch has (CSV rows mostly share one set of keys)."""
    keys: set[str] | None = None
    last: Any = None
    for cand in batch:
        names = cand.variables.keys()
        if names == last:
            continue
        keys = set(names) if keys is None else keys & names
        last = names
    return keys or set()
