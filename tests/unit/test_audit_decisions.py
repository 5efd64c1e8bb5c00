"""Decisions shares a decision between the leads of a claim made of the same parts: each lead's is the
dict `decision` makes for it alone."""

from datetime import UTC, datetime

from dialwave.domain.audit import Decisions, decision
from dialwave.domain.dialable import CampaignTimes, rule_caps

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NUMBERS = ["+12125550100", "+12125550101", "+13125550100", "+33612345678", "+447700900123", "+12125550100"]


def test_each_lead_gets_the_decision_made_for_it_alone() -> None:
    times = CampaignTimes("America/New_York", (1, 2, 3, 4, 5), (("09:00", "18:00"),), True, None, None)
    made = Decisions(times, NOW, ["organization"], "none")
    for number in NUMBERS * 2:
        for region in (None, "US-NY"):
            for consent_id in (None, "cns_1"):
                for cap in (None, 3):
                    for recent in (0, 1):
                        who = times.recipient(number, None, region)
                        caps = rule_caps(who.rule, cap)
                        got = made.of_place(who, region, consent_id, caps, recent)
                        alone = decision(
                            times,
                            number,
                            None,
                            NOW,
                            dnc_lists=["organization"],
                            require_consent="none",
                            consent_id=consent_id,
                            region=region,
                            caps=caps,
                            recent_attempts=recent,
                        )
                        assert got == alone
                        assert made.of_place(who, region, consent_id, caps, recent) is got  # shared
