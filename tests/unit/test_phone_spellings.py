"""Every Unicode spelling of a number (other decimal digits, full-width signs, separators) normalises
to the one ASCII E.164 number, and anything else non-ASCII is refused."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain.phone import normalize
from dialwave.errors import InvalidPhoneNumber

NUMBERS = ["+12125550123", "+442071234567", "+33142685300", "+919876543210", "+81312345678"]
# every Unicode decimal digit, by value
DIGITS: dict[int, list[str]] = {}
for cp in range(sys.maxunicode + 1):
    ch = chr(cp)
    if unicodedata.category(ch) == "Nd":
        DIGITS.setdefault(unicodedata.decimal(ch), []).append(ch)
PLUSES = ["+", "\uff0b", "\ufe62"]  # plus, full-width plus, small plus
SEPARATORS = ["", " ", "-", "\u2011", "\u00a0", "\u200b", "\u3000", "."]


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    e164 = draw(st.sampled_from(NUMBERS))
    out = draw(st.sampled_from(PLUSES))
    for digit in e164[1:]:
        out += draw(st.sampled_from(DIGITS[int(digit)])) + draw(st.sampled_from(SEPARATORS))
    return e164, out


@settings(max_examples=400, deadline=None)
@given(spellings())
def test_any_unicode_spelling_normalises_to_the_ascii_number(case: tuple[str, str]) -> None:
    e164, spelled = case
    assert normalize(spelled) == e164
    assert normalize(spelled).isascii()


@pytest.mark.parametrize("raw", ["+1212555012\u2163", "+1212555012x", "+1212555\u00bd123", "+1212555012\u00e9"])
def test_other_non_ascii_characters_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize(raw)
