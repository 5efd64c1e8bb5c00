"""Phone numbers: normalisation to E.164 and masking."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberFormat

from dialwave.errors import InvalidPhoneNumber

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_STRIP = str.maketrans("", "", " -().\u00a0\t")


# -- validity of an E.164 number, from phonenumbers' own metadata --------------------------------------
# `phonenumbers.is_valid_number` spends most of its ~9 us per number in per-call overhead (a regex-cache
# lookup and a length check per number type, per candidate region). `_valid` runs the same algorithm
# on patterns compiled once per country code: the same answer (tests/unit/test_phone.py compares them
# on every calling code), about 5x faster, which the CSV import needs.
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_Desc = tuple[frozenset[int], "re.Pattern[str]"]


@dataclass(frozen=True)
class _Region:
    leading: re.Pattern[str] | None  # leading_digits: picks this region among those of one calling code
    general: _Desc | None
    types: tuple[_Desc, ...]
    own_code: bool  # the region's calling code is the one it is listed under (a valid number needs it)

    def has_type(self, national: str) -> bool:
        """phonenumbers' `_number_type_helper(national, metadata) != UNKNOWN`."""
        return _matches(self.general, national) and any(_matches(desc, national) for desc in self.types)


def _matches(desc: _Desc | None, national: str) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    return (not lengths or len(national) in lengths) and pattern.fullmatch(national) is not None


def _desc(desc: object) -> _Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if desc is None or not pattern:
        return None
    return frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(pattern)


def _region(metadata: object, own_code: bool) -> _Region:
    leading = getattr(metadata, "leading_digits", None)
    types = tuple(d for d in (_desc(getattr(metadata, name, None)) for name in _TYPES) if d is not None)
    general = _desc(getattr(metadata, "general_desc", None))
    return _Region(re.compile(leading) if leading is not None else None, general, types, own_code)


_CALLING_CODES: dict[int, tuple[_Region | None, ...]] = {}


def _regions(cc: int) -> tuple[_Region | None, ...]:
    """The regions of a calling code, in phonenumbers' order, as it looks them up: a sole region by
    region or calling code (non-geographic +800 etc.), several by region code only."""
    known = _CALLING_CODES.get(cc)
    if known is None:
        codes = COUNTRY_CODE_TO_REGION_CODE[cc]
        out: list[_Region | None] = []
        for code in codes:
            if len(codes) == 1:
                metadata = PhoneMetadata.metadata_for_region_or_calling_code(cc, code.upper())
            else:
                metadata = PhoneMetadata.metadata_for_region(code.upper(), None)
            own = code == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY or (
                phonenumbers.country_code_for_valid_region(code) == cc
            )
            out.append(_region(metadata, own) if metadata is not None else None)
        known = _CALLING_CODES[cc] = tuple(out)
    return known


def _valid(cc: int, national: str) -> bool:
    """phonenumbers.is_valid_number for +<cc><national> (national without a leading zero)."""
    regions = _regions(cc)
    if len(regions) == 1:
        region = regions[0]
        return region is not None and region.own_code and region.has_type(national)
    for region in regions:  # phonenumbers' region_code_for_number, then validity for that region
        if region is None:
            continue
        if region.leading is not None:
            if region.leading.match(national):
                return region.own_code and region.has_type(national)
        elif region.has_type(national):
            return region.own_code
    return False


def _fast_e164(text: str) -> str | None:
    """Validate an input that is already E.164 without the general parser."""
    for size in (1, 2, 3):
        cc = int(text[1 : 1 + size])
        if cc in COUNTRY_CODE_TO_REGION_CODE:
            national = text[1 + size :]
            if national.startswith("0"):
                return None  # leading-zero countries (e.g. Italy): take the general path
            if not _valid(cc, national):
                raise InvalidPhoneNumber(text)
            return text
    raise InvalidPhoneNumber(text)


def ascii_digits(text: str) -> str:
    """`text` with every Unicode spelling of a digit or a plus as ASCII (full-width, Arabic-Indic,
    Devanagari ...); raises InvalidPhoneNumber when anything else non-ASCII is left. A number is only
    ever stored, compared and dialed in ASCII, so no spelling gets past the DNC list or deduplication."""
    if text.isascii():
        return text
    folded = unicodedata.normalize("NFKC", text)
    out = []
    for ch in folded:
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif ch.isspace() or unicodedata.category(ch) in ("Pd", "Zs", "Cf"):
            continue  # dashes, spaces and invisible format characters, as separators
        else:
            raise InvalidPhoneNumber(text)
    return "".join(out)


def normalize(raw: str, default_region: str | None = None) -> str:
    """Return the E.164 form of `raw` (ASCII), or raise InvalidPhoneNumber.

    Numbers without a leading `+` are read in `default_region` (ISO 3166 alpha-2)."""
    text = ascii_digits(raw.strip()).translate(_STRIP)
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
