"""The audit trail of a dial: what the claim's checks found when they allowed it, as one JSON object
stored with the call row (`calls.decision`). Built from what the checks already computed; pure.

    {"checked_at": "2026-11-27T14:00:00+00:00",
     "zones": [{"zone": "America/New_York", "local_time": "2026-11-27T09:00:00-05:00"}],
     "rules": [...],              # rule ids of data/calling_rules.json (their `id`s) that applied
     "caps": [{"attempts": 3, "hours": 24.0}], "recent_attempts": 1,  # numbers under a cap
     "campaign_zone": "America/New_York", "recipient_local_time": true,
     "dnc_lists": ["organization", "registry-us"],
     "consent": {"required": "ai_voice", "id": "cns_..."}}"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialwave.domain.dialable import CampaignTimes, Caps
from dialwave.domain.legal import Recipient


def local_time(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def dnc_lists_checked(organization: bool, custom: bool, named: list[str]) -> list[str]:
    """The do-not-call lists a claim looked the number up in: `organization`, `campaign` (the campaign's
    own numbers), then the named lists."""
    return (["organization"] if organization else []) + (["campaign"] if custom else []) + list(named)


class Decisions:
    """Decisions of one claim: its instant, lists and consent rule are shared, and so is the place part
    of every recipient seen (the same rules and zones give the same local times), so a lead costs a
    dictionary lookup and a small dict."""

    def __init__(self, times: CampaignTimes, now: datetime, dnc_lists: list[str], require_consent: str) -> None:
        self.times, self.now = times, now
        self.checked_at = now.astimezone(UTC).isoformat(timespec="seconds")
        self.dnc_lists, self.require_consent = dnc_lists, require_consent
        # by the identity of the recipient and of the caps tuple (shared per place and per rule; held
        # here, so no other object takes their identity): hashing them would cost more than the lookup
        self._places: dict[int, tuple[Recipient, list[dict[str, str]], list[str]]] = {}
        self._caps: dict[int, tuple[Caps, list[dict[str, float]]]] = {}
        # the decisions made, by what they are made of: the leads of one claim share their places, caps
        # and consent, so most get the dict of an earlier lead (nothing writes to a decision once made)
        self._made: dict[tuple[int, str | None, str | None, int, int], tuple[Recipient, Caps, dict[str, Any]]] = {}

    def _place(self, who: Recipient) -> tuple[list[dict[str, str]], list[str]]:
        found = self._places.get(id(who))
        if found is None or found[0] is not who:
            times = self.times
            zones = list(dict.fromkeys(who.zones if times.recipient_local_time else (*who.zones, times.zone)))
            rules = list(who.rule.rule_ids) or [who.rule.key]
            found = who, [{"zone": zone, "local_time": local_time(self.now, zone)} for zone in zones], rules
            self._places[id(who)] = found
        return found[1], found[2]

    def of(
        self,
        number: str,
        lead_timezone: str | None,
        region: str | None,
        consent_id: str | None,
        caps: Caps,
        recent_attempts: int,
    ) -> dict[str, Any]:
        who = self.times.recipient(number, lead_timezone, region)
        return self.of_place(who, region, consent_id, caps, recent_attempts)

    def of_place(
        self, who: Recipient, region: str | None, consent_id: str | None, caps: Caps, recent_attempts: int
    ) -> dict[str, Any]:
        """`of` for a recipient already placed (`times.recipient(number, lead_timezone, region)`)."""
        key = (id(who), region, consent_id, id(caps), recent_attempts)
        made = self._made.get(key)
        if made is not None and made[0] is who and made[1] is caps:
            return made[2]
        out = self._decide(who, region, consent_id, caps, recent_attempts)
        self._made[key] = who, caps, out  # held: no other object takes their identities
        return out

    def _decide(
        self, who: Recipient, region: str | None, consent_id: str | None, caps: Caps, recent_attempts: int
    ) -> dict[str, Any]:
        zones, rules = self._place(who)
        out: dict[str, Any] = {
            "checked_at": self.checked_at,
            "zones": zones,
            "rules": rules,
            "campaign_zone": self.times.zone,
            "recipient_local_time": self.times.recipient_local_time,
            "dnc_lists": self.dnc_lists,
            "consent": {"required": self.require_consent, "id": consent_id},
        }
        if not who.located:  # timed in every zone of its country (or the campaign's): compliance.unknown_location
            out["unknown_location"] = self.times.unknown
        if region:
            out["region"] = region
        if caps:
            known = self._caps.get(id(caps))
            if known is None or known[0] is not caps:
                listed = [{"attempts": n, "hours": w.total_seconds() / 3600} for n, w in caps]
                known = self._caps[id(caps)] = caps, listed
            out["caps"] = known[1]
            out["recent_attempts"] = recent_attempts
        return out


def decision(
    times: CampaignTimes,
    number: str,
    lead_timezone: str | None,
    now: datetime,
    *,
    dnc_lists: list[str],
    require_consent: str,
    consent_id: str | None = None,
    region: str | None = None,
    caps: Caps = (),
    recent_attempts: int = 0,
) -> dict[str, Any]:
    """One decision on its own (Decisions shares the work across a claim's leads)."""
    made = Decisions(times, now, dnc_lists, require_consent)
    return made.of(number, lead_timezone, region, consent_id, caps, recent_attempts)
