"""Abandonment at its edges (pure), the audit decision, and the simulated carrier's agent connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialwave.clock import VirtualClock
from dialwave.domain.abandonment import AbandonRate, is_abandoned
from dialwave.domain.audit import decision, dnc_lists_checked
from dialwave.domain.dialable import CampaignTimes
from dialwave.domain.resources import SimulatedSettings
from dialwave.telephony.base import DialRequest
from dialwave.telephony.simulated import SimulatedCarrier

T = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("agent", "ended", "outcome", "machine", "abandoned"),
    [
        (2.0, 60, "answered", False, False),  # exactly at the limit: in time
        (2.001, 60, "answered", False, True),
        (None, 60, "answered", False, True),  # the agent never came while the person waited
        (None, 1.5, "short_duration", False, False),  # the person hung up first
        (None, 2.5, "provider_error", False, True),  # the agent's endpoint refused the call
        (None, 0.5, "provider_error", False, True),  # ... at once: we hung up on the person
        (1.0, 30, "internal_error", False, False),  # the agent was on; our failure came later
        (5.0, 60, "voicemail", False, False),  # a machine is not a live answer
        (5.0, 60, "answered", True, False),
    ],
)
def test_abandoned_at_its_edges(
    agent: float | None, ended: float, outcome: str, machine: bool, abandoned: bool
) -> None:
    connected = at(agent) if agent is not None else None
    assert is_abandoned(T, connected, at(ended), outcome, 2.0, machine=machine) is abandoned


def test_an_unanswered_call_is_never_abandoned() -> None:
    assert is_abandoned(None, None, at(30), "no_answer", 2.0) is False


def test_the_rate_allows_up_to_the_limit_and_pauses_over_it() -> None:
    assert not AbandonRate(3, 100).exceeds(0.03)  # 3 % is within a 3 % limit
    assert AbandonRate(4, 100).exceeds(0.03)
    assert not AbandonRate(0, 0).exceeds(0.0) and not AbandonRate(5, 5).exceeds(None)
    assert "4 of 104" in AbandonRate(4, 104).pause_reason(0.03)


def test_the_decision_names_zones_local_times_rules_lists_and_consent() -> None:
    times = CampaignTimes("America/New_York", (1, 2, 3, 4, 5, 6, 7), (("09:00", "18:00"),), True, None, None)
    lists = dnc_lists_checked(True, True, ["registry"])
    made = decision(
        times,
        "+18505550100",  # 850: Florida panhandle, two zones
        None,
        T,
        dnc_lists=lists,
        require_consent="ai_voice",
        consent_id="cns_1",
        caps=((3, timedelta(hours=24)),),
        recent_attempts=2,
    )
    assert made["rules"] == ["US.hours", "US-FL.hours", "US-FL.cap-24h"]
    assert made["dnc_lists"] == ["organization", "campaign", "registry"]
    assert {z["zone"]: z["local_time"] for z in made["zones"]} == {
        "America/Chicago": "2026-11-27T09:00:00-06:00",
        "America/New_York": "2026-11-27T10:00:00-05:00",
    }
    assert made["consent"] == {"required": "ai_voice", "id": "cns_1"}
    assert (made["caps"], made["recent_attempts"]) == ([{"attempts": 3, "hours": 24.0}], 2)
    assert "unknown_location" not in made and "region" not in made
    assert made["checked_at"] == "2026-11-27T15:00:00+00:00"


def test_the_decision_says_when_a_number_was_timed_in_every_zone_of_its_country() -> None:
    times = CampaignTimes("America/New_York", (1, 2, 3, 4, 5, 6, 7), (("09:00", "18:00"),), True, None, None)
    made = decision(times, "+18885550100", None, T, dnc_lists=[], require_consent="none")  # toll-free
    assert made["unknown_location"] == "all_zones" and len(made["zones"]) > 20
    pinned = decision(times, "+18885550100", None, T, dnc_lists=[], require_consent="none", region="US-TX")
    assert pinned["region"] == "US-TX" and "US-TX.hours" in pinned["rules"]
    assert [z["zone"] for z in pinned["zones"]] == ["America/Chicago", "America/Denver"]


def request(number: str) -> DialRequest:
    return DialRequest(
        call_id=f"call_{number}",
        organization_id="org",
        campaign_id="cmp",
        lead_id="lead",
        attempt=1,
        from_number="+12125550100",
        to_number=number,
        caller_id="pn",
        at=T,
        ring_timeout_seconds=30,
        machine_detection=False,
        system_prompt="",
        opening_message="",
        variables={},
        agent_id=None,
        agent_version=None,
    )


async def test_the_simulated_agent_connects_after_agent_connect_seconds() -> None:
    model = SimulatedSettings(
        outcomes={"answered": 1.0}, ring_seconds=(4, 4), talk_seconds=(30, 30), agent_connect_seconds=(2.5, 2.5)
    )
    carrier = SimulatedCarrier(VirtualClock(T), model)
    await carrier.originate(request("+12125550101"))
    events = carrier.poll(at(3600))
    assert [e.kind for e in events] == ["ringing", "answered", "agent_connected", "ended"]
    assert events[2].at - events[1].at == timedelta(seconds=2.5)


async def test_a_short_call_ends_before_the_simulated_agent_connects() -> None:
    model = SimulatedSettings(outcomes={"answered": 1.0}, talk_seconds=(1, 1), agent_connect_seconds=(2, 3))
    carrier = SimulatedCarrier(VirtualClock(T), model)
    await carrier.originate(request("+12125550102"))
    assert [e.kind for e in carrier.poll(at(3600))] == ["ringing", "answered", "ended"]


def test_agent_connect_seconds_is_a_range() -> None:
    with pytest.raises(ValueError, match="agent_connect_seconds"):
        SimulatedSettings(agent_connect_seconds=(3, 1))
