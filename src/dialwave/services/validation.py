"""Turn pydantic errors into our field paths: ('schedule', 'windows', 1, 'end') -> schedule.windows[1].end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dialwave.domain.phone import normalize
from dialwave.errors import InvalidPhoneNumber, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def field_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def error_message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return msg


def fields_of(exc: ValidationError, prefix: Sequence[Any] = ()) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors():
        path = field_path([*prefix, *err["loc"]])
        fields.setdefault(path, error_message(dict(err)))
    return fields


def raise_fields(fields: dict[str, str]) -> None:
    if fields:
        first = next(iter(fields.items()))
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        raise ValidationFailed(f"{first[0]}: {first[1]}{more}", fields=fields)


def validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ValidationFailed("body: must be a JSON object", fields={"body": "must be a JSON object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise_fields(fields_of(exc))
        raise  # pragma: no cover - raise_fields always raises here


def refuse_read_only(patch: Any, read_only: tuple[str, ...], hints: dict[str, str] | None = None) -> None:
    """422 when a patch names a server-managed field; `hints` replace "is read-only" for some fields."""
    if not isinstance(patch, dict):
        return
    bad = [k for k in read_only if k in patch]
    if bad:
        fields = {k: (hints or {}).get(k, "is read-only") for k in bad}
        raise ValidationFailed(f"{bad[0]}: {fields[bad[0]]}", fields=fields)


def phone_field(raw: str, path: str) -> str:
    """A phone number given in a field, as E.164, or a 422 naming the field."""
    try:
        return normalize(raw)
    except InvalidPhoneNumber as exc:
        message = f"invalid phone number '{raw[:40]}' (E.164 expected)"
        raise ValidationFailed(f"{path}: {message}", fields={path: message}) from exc


def phone_fields(numbers: list[str], path: str = "numbers") -> list[str]:
    out: list[str] = []
    errors: dict[str, str] = {}
    for i, raw in enumerate(numbers):
        try:
            out.append(normalize(raw))
        except InvalidPhoneNumber:
            errors[f"{path}[{i}]"] = f"invalid phone number '{raw[:40]}' (E.164 expected)"
    if errors:
        first = next(iter(errors.items()))
        raise ValidationFailed(f"{first[0]}: {first[1]}", fields=errors)
    return out
