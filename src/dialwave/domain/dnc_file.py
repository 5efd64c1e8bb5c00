"""Lines of a do-not-call file as E.164 numbers: one number a line, or the first cell of a CSV row, in
E.164 (`+...`, `00...`) or in the national format of a default country (a national registry lists
`2125550123`). Only the form is made canonical (ASCII digits, country code): an entry that is no real
number never equals a lead's (validated) number, so it blocks nothing, and the import stays fast (the
full validator reads about 130,000 numbers a second here; this about ten times as many). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import phonenumbers

from dialwave.domain.phone import ascii_digits
from dialwave.errors import InvalidPhoneNumber

_CELL = re.compile(r"[,;\t|]")
_NOISE = str.maketrans("", "", " -.()/")
_DIGITS = re.compile(r"\+?[0-9]{4,18}")


def country_code(region: str) -> int:
    code = phonenumbers.country_code_for_region(region.upper())
    if not code:
        raise ValueError(f"unknown region '{region}'")
    return int(code)


def canonical(raw: str, cc: int | None) -> str | None:
    """The E.164 form of one entry, or None when it cannot be one (or is a header or a comment)."""
    text = raw.strip()
    if text.isascii() and text.isdigit():  # the registry's own form first: national digits only
        if cc == 1 and len(text) == 10:
            return "+1" + text
    elif text[:1] == "+" and text[1:].isascii() and text[1:].isdigit() and 8 <= len(text) - 1 <= 15:
        return text
    text = _CELL.split(raw.strip(), 1)[0].strip().strip('"').translate(_NOISE)
    if not text.isascii():
        try:
            text = ascii_digits(text)
        except InvalidPhoneNumber:
            return None
    if not _DIGITS.fullmatch(text):
        return None
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif cc == 1:
        digits = "1" + text if len(text) == 10 else text if len(text) == 11 and text[0] == "1" else ""
    elif cc is not None:
        digits = f"{cc}{text[1:] if text.startswith('0') else text}"
    else:
        return None
    return f"+{digits}" if 8 <= len(digits) <= 15 else None


def read_numbers(
    lines: Iterable[str], cc: int | None, first_row: int, errors: list[str], max_errors: int
) -> tuple[list[str], int]:
    """The numbers of `lines` (rows counted from `first_row`), and how many lines were none (blank lines,
    `#` comments and a first line that is a header aside); the first `max_errors` of those are reported
    in `errors`."""
    out = []
    rejected = 0
    for row, line in enumerate(lines, start=first_row):
        number = canonical(line, cc)
        if number is not None:
            out.append(number)
        elif line.strip() and not line.lstrip().startswith("#") and row > 1:
            rejected += 1
            if len(errors) < max_errors:
                errors.append(f"Row {row}: '{line.strip()[:40]}' is not a phone number")
    return out, rejected


def stale(lists: Mapping[str, Any], names: Sequence[str], now: datetime) -> list[str]:
    """Warnings for the named lists: missing, or older than their max_age_days."""
    out = []
    for name in names:
        row = lists.get(name)
        if row is None:
            out.append(f"do-not-call list '{name}' does not exist (import it: POST /v1/dnc/import?list={name})")
            continue
        limit, at = row["max_age_days"], row["refreshed_at"]
        if limit is not None and at is not None and now - at > timedelta(days=limit):
            age = (now - at).days
            out.append(f"do-not-call list '{name}' was refreshed {age} days ago (its max_age_days is {limit})")
    return out
