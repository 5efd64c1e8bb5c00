"""Which text messages revoke consent (domain/consent.is_opt_out_reply)."""

from __future__ import annotations

import pytest

from dialwave.domain.consent import is_opt_out_reply


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOPALL",
        "quit",
        "End",
        "REVOKE",
        "opt out",
        "Opt-Out",
        "OPTOUT",
        "cancel!",
        "Unsubscribe",
    ],
)
def test_one_of_the_rules_words_alone_is_an_opt_out(text: str) -> None:
    assert is_opt_out_reply(text)


@pytest.mark.parametrize("text", ["", "yes", "stop calling me at work?", "don't stop", "the end is near", "STOP 2"])
def test_a_word_inside_a_longer_message_is_not(text: str) -> None:
    assert not is_opt_out_reply(text)
