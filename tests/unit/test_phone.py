"""The import's fast validity check gives phonenumbers' own answer, on every calling code."""

from __future__ import annotations

import random

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber, PhoneNumberType

from dialwave.domain.phone import _valid, normalize
from dialwave.errors import InvalidPhoneNumber

TYPES = [getattr(PhoneNumberType, name) for name in ("FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "VOIP")]


def reference(cc: int, national: str) -> bool:
    return bool(phonenumbers.is_valid_number(PhoneNumber(country_code=cc, national_number=int(national))))


def near_valid_numbers(cc: int, rng: random.Random) -> list[str]:
    """Example numbers of each region of `cc`, and numbers one edit away from them."""
    out: list[str] = []
    for region in COUNTRY_CODE_TO_REGION_CODE[cc]:
        for kind in TYPES:
            if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
                example = phonenumbers.example_number_for_non_geo_entity(cc)
            else:
                example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = str(example.national_number)
            out.append(national)
            for _ in range(6):
                i = rng.randrange(len(national))
                out.append(national[:i] + str(rng.randrange(10)) + national[i + 1 :])
            out += [national[:-1], national + str(rng.randrange(10))]
    return [n for n in out if n and not n.startswith("0")]


def test_the_fast_check_agrees_with_phonenumbers_on_every_calling_code() -> None:
    rng = random.Random(7)
    compared = valid = 0
    for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
        numbers = near_valid_numbers(cc, rng)
        numbers += [str(rng.randrange(10 ** (n - 1), 10**n)) for n in range(4, 15) for _ in range(8)]
        for national in numbers:
            expected = reference(cc, national)
            assert _valid(cc, national) == expected, (cc, national, expected)
            compared += 1
            valid += expected
    assert compared > 25_000 and valid > 5_000  # the comparison covered both answers, widely


@settings(max_examples=3000, deadline=None)
@given(
    cc=st.sampled_from(sorted(COUNTRY_CODE_TO_REGION_CODE)),
    national=st.from_regex(r"[1-9][0-9]{3,13}", fullmatch=True),
)
def test_the_fast_check_agrees_with_phonenumbers_on_any_number(cc: int, national: str) -> None:
    assert _valid(cc, national) == reference(cc, national)


def test_normalize_takes_e164_and_national_forms() -> None:
    assert normalize("+1 (415) 555-0123") == "+14155550123"
    assert normalize("415 555 0123", "US") == "+14155550123"
    assert normalize("0044 20 7946 0958") == "+442079460958"
    assert normalize("+39 06 6982 1234") == "+390669821234"  # a leading zero: the general parser
    for bad in ("+1415555012", "+999123456789", "12345"):
        try:
            normalize(bad)
        except InvalidPhoneNumber:
            continue
        raise AssertionError(f"{bad} was accepted")
