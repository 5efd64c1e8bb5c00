"""Phone numbers: normalisation to E.164 and masking."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber, PhoneNumberFormat

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_STRIP = str.maketrans("", "", " -().\u00a0\t")


class InvalidPhoneNumber(ValueError):
    pass


def _fast_e164(text: str) -> str | None:
    """Validate an input that is already E.164 without the general parser (about 2x faster)."""
    for size in (1, 2, 3):
        cc = int(text[1 : 1 + size])
        if cc in COUNTRY_CODE_TO_REGION_CODE:
            national = text[1 + size :]
            if national.startswith("0"):
                return None  # leading-zero countries (e.g. Italy): take the general path
            number = PhoneNumber(country_code=cc, national_number=int(national))
            if not phonenumbers.is_valid_number(number):
                raise InvalidPhoneNumber(text)
            return text
    raise InvalidPhoneNumber(text)


def normalize(raw: str, default_region: str | None = None) -> str:
    """Return the E.164 form of `raw`, or raise InvalidPhoneNumber.

    Numbers without a leading `+` are read in `default_region` (ISO 3166 alpha-2)."""
    text = raw.strip().translate(_STRIP)
    if text.startswith("00"):
        text = "+" + text[2:]
    if _E164.match(text):
        fast = _fast_e164(text)
        if fast is not None:
            return fast
    try:
        number = phonenumbers.parse(text, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(raw)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """ISO region of an E.164 number ('US'), or None."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def is_valid_region(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def mask(e164: str) -> str:
    """All but the last four digits hidden: '+14155550123' -> '+*******0123'."""
    if len(e164) <= 4:
        return "*" * len(e164)
    head = e164[:-4]
    return "".join("*" if ch.isdigit() else ch for ch in head) + e164[-4:]
