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
from dialwave.domain.legal import recipient


def local_time(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def dnc_lists_checked(organization: bool, custom: bool, named: list[str]) -> list[str]:
    """The do-not-call lists a claim looked the number up in: `organization`, `campaign` (the campaign's
    own numbers), then the named lists."""
    return (["organization"] if organization else []) + (["campaign"] if custom else []) + list(named)


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
    who = recipient(number, lead_timezone, times.zone)
    zones = list(dict.fromkeys(who.zones if times.recipient_local_time else (*who.zones, times.zone)))
    out: dict[str, Any] = {
        "checked_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "zones": [{"zone": zone, "local_time": local_time(now, zone)} for zone in zones],
        "rules": [who.rule.key],
        "campaign_zone": times.zone,
        "recipient_local_time": times.recipient_local_time,
        "dnc_lists": dnc_lists,
        "consent": {"required": require_consent, "id": consent_id},
    }
    if cap is not None:
        out["cap_per_24h"] = cap
        out["attempts_24h"] = attempts_24h
    return out
