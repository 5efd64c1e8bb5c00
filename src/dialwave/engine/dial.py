"""Right before a dial: the guards again (the claim may be a while ago), and the request to the carrier."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from dialwave.domain import call_tokens
from dialwave.domain.dialable import Caps, capped_until, earliest_for, rule_caps
from dialwave.domain.handoff import handoff
from dialwave.domain.resources import twilio_credentials
from dialwave.engine.state import CampaignState, Reservation
from dialwave.telephony.base import DialRequest


class Memory:
    """What this engine saw since its claims read the database: attempts started, answers and
    completions per (organization, number), refusals under a rule that pauses after one, and numbers an
    outcome put on the DNC list. Lets the dial-time guards include them."""

    def __init__(self) -> None:
        self.starts: dict[tuple[str, str], list[datetime]] = {}  # only numbers under a per-number cap
        self.refused: dict[tuple[str, str], datetime] = {}  # only numbers whose rules pause after a refusal
        self.answered: dict[tuple[str, str], datetime] = {}  # only organizations using cooldowns
        self.completed: dict[tuple[str, str], datetime] = {}
        self.cooldown_orgs: set[str] = set()
        self.blocked: set[tuple[str, str]] = set()  # put on the DNC list by an outcome (opt-out, auto-add)
        self.abandoned: dict[tuple[str, str], datetime] = {}  # when a call to the number was last abandoned

    def abandon(self, key: tuple[str, str], at: datetime) -> None:
        """A call to the number was abandoned at `at` (abandon_redial_hours holds it at dial time). Entries
        past the longest redial wait (31 days) are dropped when the memory grows large."""
        self.abandoned[key] = at
        if len(self.abandoned) > 100_000:
            horizon = at - timedelta(days=31)
            self.abandoned = {k: t for k, t in self.abandoned.items() if t > horizon}

    def started(self, key: tuple[str, str], at: datetime, window: timedelta) -> None:
        kept = [t for t in self.starts.get(key, []) if t > at - window]
        kept.append(at)
        self.starts[key] = kept


def recheck(
    camp: CampaignState, r: Reservation, memory: Memory, number_cap: int | None
) -> tuple[datetime | None, Caps]:
    """`r.slot` when the lead may still be dialed then, else when it may be (None: not within 14 days);
    and the caps on attempts to its number (`caps_for`), which the dial then counts its start under.
    The lead's recipient is placed once for its pause, hours and caps (its rule depends on the number
    and region only, so it is the rule `refusal_pause` and `caps_for` look up)."""
    lead = r.lead
    number = lead.phone_number
    key = (r.org_id, number)
    at = r.slot
    config = camp.config
    cool = config.cooldowns
    if cool.after_success_hours and key in memory.answered:
        at = max(at, memory.answered[key] + timedelta(hours=cool.after_success_hours))
    if cool.after_completion_hours and key in memory.completed:
        at = max(at, memory.completed[key] + timedelta(hours=cool.after_completion_hours))
    redial = config.compliance.abandon_redial_hours
    if redial and key in memory.abandoned:
        at = max(at, memory.abandoned[key] + timedelta(hours=redial))
    times = camp.times
    who = times.recipient(number, lead.timezone, lead.region)
    if key in memory.refused:
        pause = who.rule.refusal_pause
        if pause is not None:
            at = max(at, memory.refused[key] + pause)
    when = earliest_for(times, who, at)
    caps = rule_caps(who.rule, number_cap)
    if when is not None and caps:
        since = r.claimed_at or r.slot
        later = [t for t in memory.starts.get(key, []) if t >= since]
        when = capped_until(r.recent + later, caps, when)
        if when != r.slot:  # a cap or a pause moved it: dialable again only within legal hours
            when = earliest_for(times, who, when)
    return when, caps


def dial_request(
    camp: CampaignState, r: Reservation, token_key: bytes | None = None, *, prompts: bool = True
) -> DialRequest:
    """`prompts=False`: a forecast's request (see handoff)."""
    config, lead, caller, agent = camp.config, r.lead, r.caller, camp.agent
    number = camp.numbers.get(caller.phone_number_id)
    given = handoff(agent, config, lead.variables, lead.agent_overrides, prompts=prompts)
    token = None
    if token_key:  # a forecast's has no key: no token, no expiry to compute
        token = call_tokens.mint(token_key, r.call_id, call_tokens.expiry(r.slot, camp.max_call_seconds))
    machine = config.machine_detection
    return DialRequest(
        call_id=r.call_id,
        organization_id=r.org_id,
        campaign_id=r.campaign_id,
        lead_id=lead.id,
        attempt=r.attempt,
        from_number=caller.number,
        to_number=lead.phone_number,
        caller_id=caller.phone_number_id,
        at=r.slot,
        ring_timeout_seconds=config.ring_timeout_seconds,
        machine_detection=machine.enabled,
        machine_detection_timeout_seconds=machine.timeout_seconds,
        voicemail_message=given.voicemail_message,
        system_prompt=given.system_prompt,
        opening_message=given.opening_message,
        variables=given.variables,
        agent_id=config.agent_id,
        agent_version=camp.agent_version,
        carrier_settings=carrier_settings(camp, number),
        agent_sip_uri=agent.get("sip_uri"),
        agent_stream_url=agent.get("media_stream_url"),
        call_token=token,
    )


def carrier_settings(camp: CampaignState, number: RowMapping | None) -> dict[str, Any]:
    """The phone number's provider settings; a Twilio number without credentials of its own uses its
    organization's."""
    if number is None:
        return {}
    settings = dict(number["config"])
    if number["provider"] == "twilio":
        credentials = twilio_credentials(settings, camp.org_twilio)
        if credentials is not None:
            settings["twilio"] = credentials
    return settings
