"""The audit trail of a dial: what the claim's checks found when they allowed it, as one JSON object
stored with the call row (`calls.decision`). Built from what the checks already computed; pure.

    {"checked_at": "2026-11-27T14:00:00+00:00",
     "zones": [{"zone": "America/New_York", "local_time": "2026-11-27T09:00:00-05:00"}],
     "rules": ["US-FL"],          # rule ids of data/calling_rules.json that applied ("default": none)
     "cap_per_24h": 3, "attempts_24h": 1,
     "campaign_zone": "America/New_York", "recipient_local_time": true,
     "dnc_lists": ["organization", "registry-us"],
     "consent": {"required": "ai_voice", "id": "cns_..."}}"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialwave.domain.dialable import CampaignTimes
from dialwave.domain.legal import Recipient, recipient


def local_time(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def dnc_lists_checked(organization: bool, custom: bool, named: list[str]) -> list[str]:
    """The do-not-call lists a claim looked the number up in: `organization`, `campaign` (the campaign's
    own numbers), then the named lists."""
    return (["organization"] if organization else []) + (["campaign"] if custom else []) + list(named)


class Decisions:
    """Decisions of one claim: its instant, lists and consent rule are shared, and so is the zone part
    of every recipient seen (the same rule and zones give the same local times), so a lead costs a
    dictionary lookup and a small dict."""

    def __init__(self, times: CampaignTimes, now: datetime, dnc_lists: list[str], require_consent: str) -> None:
        self.times, self.now = times, now
        self.checked_at = now.astimezone(UTC).isoformat(timespec="seconds")
        self.dnc_lists, self.require_consent = dnc_lists, require_consent
        self._places: dict[Recipient, tuple[list[dict[str, str]], list[str]]] = {}

    def _place(self, who: Recipient) -> tuple[list[dict[str, str]], list[str]]:
        found = self._places.get(who)
        if found is None:
            times = self.times
            zones = list(dict.fromkeys(who.zones if times.recipient_local_time else (*who.zones, times.zone)))
            found = [{"zone": zone, "local_time": local_time(self.now, zone)} for zone in zones], [who.rule.key]
            self._places[who] = found
        return found

    def of(
        self, number: str, lead_timezone: str | None, consent_id: str | None, cap: int | None, attempts_24h: int
    ) -> dict[str, Any]:
        zones, rules = self._place(recipient(number, lead_timezone, self.times.zone))
        out: dict[str, Any] = {
            "checked_at": self.checked_at,
            "zones": zones,
            "rules": rules,
            "campaign_zone": self.times.zone,
            "recipient_local_time": self.times.recipient_local_time,
            "dnc_lists": self.dnc_lists,
            "consent": {"required": self.require_consent, "id": consent_id},
        }
        if cap is not None:
            out["cap_per_24h"] = cap
            out["attempts_24h"] = attempts_24h
        return out


def decision(
    times: CampaignTimes,
    number: str,
    lead_timezone: str | None,
    now: datetime,
    *,
    dnc_lists: list[str],
    require_consent: str,
    consent_id: str | None,
    cap: int | None,
    attempts_24h: int,
) -> dict[str, Any]:
    """One decision on its own (Decisions shares the work across a claim's leads)."""
    return Decisions(times, now, dnc_lists, require_consent).of(number, lead_timezone, consent_id, cap, attempts_24h)
