"""A recipient's time zones and legal calling rule follow from the number, unless the lead names its own zone."""

from __future__ import annotations

from dialwave.domain.legal import recipient


def test_a_recipient_gets_the_zones_and_rule_of_its_number_and_the_leads_own_zone_wins() -> None:
    panhandle = recipient("+18505550123", None, "UTC")
    assert set(panhandle.zones) == {"America/Chicago", "America/New_York"}
    assert panhandle.rule.key == "US-FL" and panhandle.rule.max_attempts_per_24h == 3
    assert recipient("+14055550100", None, "UTC").rule.key == "US-OK"
    assert recipient("+12125550100", None, "UTC").rule.key == "US"
    toll_free = recipient("+18005550199", None, "Europe/Berlin")  # unknown location: every zone of NANP
    assert len(toll_free.zones) == 42 and not toll_free.located
    assert recipient("+18005550199", None, "Europe/Berlin", unknown="campaign_zone").zones == ("Europe/Berlin",)
    assert recipient("+12125550100", "Asia/Tokyo", "UTC").zones == ("Asia/Tokyo",)  # the lead's own zone wins
    assert recipient("+33612345678", None, "UTC").rule.days == (1, 2, 3, 4, 5)
