"""The claim: inside one write transaction, take a batch of a campaign's due leads, check the guards
(do-not-call, consent, windows and legal hours, cooldowns, per-number caps, the pause after a refusal,
a usable caller id), and record the intent to dial (a `pending` call keyed by lead + attempt) for those
that pass. Leads that fail a time guard go back with `next_attempt_at` = when they may be dialed; leads
on a do-not-call list are skipped. No attempt is counted for either. The dispatcher re-checks the
guards again right before each dial (starts.py, _check)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.domain.audit import Decisions, dnc_lists_checked
from dialwave.domain.caller_ids import Choice
from dialwave.domain.dialable import capped_until, earliest_for, longest_window, rule_caps
from dialwave.domain.leads import ClaimedLead
from dialwave.domain.legal import Recipient
from dialwave.engine.settings import EngineSettings
from dialwave.engine.state import CampaignState, Reservation
from dialwave.engine.storage import SQL, Storage
from dialwave.ids import new_ids
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import consents as consent_repo
from dialwave.store.repositories import dnc_lists as dnc_list_repo
from dialwave.store.repositories import leads as lead_repo

CALLER_WAIT = timedelta(seconds=60)
_NO_CONSENT: tuple[None, None] = (None, None)


@dataclass
class ClaimResult:
    reservations: list[Reservation] = field(default_factory=list)
    deltas: dict[str, int] = field(default_factory=dict)
    decided: int = 0


async def claim(
    conn: AsyncConnection,
    camp: CampaignState,
    now: datetime,
    want: int,
    number_cap: int | None,
    store: Storage = SQL,
) -> ClaimResult:
    """`store`: where the leads, calls and counters are (engine/storage.py: a forecast's are in memory)."""
    out = ClaimResult()
    config = camp.config
    custom_dnc = config.dnc.custom_list()
    check_org_dnc = config.dnc.uses_organization_list
    named_lists = config.dnc.named_lists()
    compliance = config.compliance
    needs_consent = compliance.require_consent != "none"
    usable = {c.phone_number_id for c in camp.callers if camp.numbers[c.phone_number_id]["active"]}
    callers = Choice(config.caller_id_strategy, camp.callers, usable)
    times = camp.times
    decisions = Decisions(
        times, now, dnc_lists_checked(check_org_dnc, bool(custom_dnc), named_lists), compliance.require_consent
    )
    in_batch: dict[str, list[datetime]] = {}
    camp_id, org_id = camp.id, camp.org_id
    for _ in range(8):  # rounds: leads that fail a guard make room for more
        if len(out.reservations) >= want:
            break
        rows = await store.claim_due(conn, camp.id, now, want - len(out.reservations))
        if not rows:
            break
        left: dict[str, dict[str, Any]] = {}
        numbers = [r.phone_number for r in rows]
        on_dnc = custom_dnc.intersection(numbers)
        if check_org_dnc:
            on_dnc |= await store.dnc_contains(conn, camp.org_id, numbers)
        if named_lists:
            on_dnc |= await dnc_list_repo.listed_in(conn, camp.org_id, named_lists, numbers)
        consented = (
            await consent_repo.consented_until(conn, camp.org_id, numbers, compliance.consent_scopes(), now)
            if needs_consent
            else {}
        )
        # each lead placed once (its zones and rules) for every check below; its rule, hence its caps
        # and refusal pause, depends on the number and region only (caps_for, refusal_pause)
        places = [times.recipient(r.phone_number, r.timezone, r.region) for r in rows]
        caps = {r.phone_number: rule_caps(who.rule, number_cap) for r, who in zip(rows, places, strict=True)}
        capped = [n for n, cap in caps.items() if cap]
        recent = {}
        if capped:
            since = now - max(longest_window(caps[n]) for n in capped)
            recent = await store.attempts_since(conn, camp.org_id, capped, since)
        waits = await _cooldowns(conn, camp, rows, places, now, store)
        fresh: list[Reservation] = []
        for row, who in zip(rows, places, strict=True):
            out.decided += 1
            number = row.phone_number
            if number in on_dnc:
                _leave(left, row, ls.SKIPPED, None, "on a do-not-call list", now, out.deltas)
                continue
            if needs_consent and number not in consented:
                why = f"no valid consent ({compliance.require_consent})"
                _leave(left, row, ls.SKIPPED, None, why, now, out.deltas)
                continue
            when = earliest_for(times, who, max(now, waits.get(number, now)) if waits else now)
            cap = caps[number]
            if when is not None and cap:
                capped_at = capped_until(recent.get(number, []) + in_batch.get(number, []), cap, when)
                if capped_at != when:
                    when = earliest_for(times, who, capped_at)
            if when is None:
                _leave(left, row, ls.SKIPPED, None, "no dialable time in its zone within 14 days", now, out.deltas)
                continue
            if when > now:
                _leave(left, row, row.status, when, "waiting for a dialable time", now, out.deltas)
                continue
            attempt = row.attempts + 1
            caller = callers.pick(row.id, attempt, number, camp.turn)
            if caller is None:
                _leave(left, row, row.status, now + CALLER_WAIT, "no active caller id", now, out.deltas)
                continue
            camp.turn += 1
            done = len(recent.get(number, ())) + len(in_batch.get(number, ())) if cap else 0
            in_batch.setdefault(number, []).append(now)
            consent_id, consent_expires = consented[number] if needs_consent else _NO_CONSENT
            fresh.append(
                Reservation(
                    now,
                    "",
                    camp_id,
                    org_id,
                    row,
                    attempt,
                    caller,
                    row.status,
                    now,
                    recent.get(number) or [],
                    None,
                    consent_id,
                    consent_expires,
                    decisions.of_place(who, row.region, consent_id, cap, done),
                )
            )
        for reservation, call_id in zip(fresh, new_ids("call", len(fresh)), strict=True):
            reservation.call_id = call_id  # ids for the leads taken only (random: nothing decided depends on them)
        if left:
            await store.update_leads(conn, left)
        await _record(conn, store, camp, fresh, now, out.deltas)
        out.reservations.extend(fresh)
    return out


async def _cooldowns(
    conn: AsyncConnection,
    camp: CampaignState,
    rows: list[ClaimedLead],
    places: list[Recipient],
    now: datetime,
    store: Storage,
) -> dict[str, datetime]:
    """Numbers answered or completed recently in any campaign of the organization, or that refused
    within their rules' pause (France: 60 days): when they may be dialed. `places`: each row's
    recipient, whose rule gives its pause (dialable.refusal_pause)."""
    waits: dict[str, datetime] = {}
    numbers = [r.phone_number for r in rows]
    pauses = {
        r.phone_number: p for r, who in zip(rows, places, strict=True) if (p := who.rule.refusal_pause) is not None
    }
    cool, redial = camp.config.cooldowns, camp.config.compliance.abandon_redial_hours
    if pauses or cool.after_success_hours or cool.after_completion_hours or redial:
        await store.sync(conn)  # the past calls and leads below are read from the database
    if pauses:
        since = now - max(pauses.values())
        for number, at in (await call_repo.last_refused(conn, camp.org_id, list(pauses), since)).items():
            if at + pauses[number] > now:
                waits[number] = at + pauses[number]
    if cool.after_success_hours:
        hours = timedelta(hours=cool.after_success_hours)
        for number, at in (await call_repo.last_answered(conn, camp.org_id, numbers, now - hours)).items():
            waits[number] = max(waits.get(number, at), at + hours)
    if cool.after_completion_hours:
        hours = timedelta(hours=cool.after_completion_hours)
        for number, at in (await lead_repo.last_completed(conn, camp.org_id, numbers, now - hours)).items():
            waits[number] = max(waits.get(number, at), at + hours)
    if redial:  # no repeat within this long of an abandoned call (Ofcom: 72 h)
        hours = timedelta(hours=redial)
        for number, at in (await call_repo.last_abandoned(conn, camp.org_id, numbers, now - hours)).items():
            waits[number] = max(waits.get(number, at), at + hours)
    return waits


def _leave(
    left: dict[str, dict[str, Any]],
    row: ClaimedLead,
    status: str,
    when: datetime | None,
    reason: str,
    now: datetime,
    deltas: dict[str, int],
) -> None:
    """A lead that is not dialed now: back to the queue at `when`, or to a final status."""
    values: dict[str, Any] = {"status": status, "next_attempt_at": when, "reason": reason, "updated_at": now}
    if status in ls.FINAL:
        values["finished_at"] = now
        deltas[row.status] = deltas.get(row.status, 0) - 1
        deltas[status] = deltas.get(status, 0) + 1
    left[row.id] = values


async def _record(
    conn: AsyncConnection,
    store: Storage,
    camp: CampaignState,
    pending: list[Reservation],
    now: datetime,
    deltas: dict[str, int],
) -> None:
    """The intent to dial, before any carrier hears of it: pending call rows and dialing leads."""
    if not pending:
        return
    agent_version = camp.agent_version
    calls: list[dict[str, Any]] = []
    leads: dict[str, dict[str, Any]] = {}
    for r in pending:  # one pass: a forecast takes ~92,000 leads
        lead, caller = r.lead, r.caller
        calls.append(
            {
                "id": r.call_id,
                "organization_id": r.org_id,
                "campaign_id": r.campaign_id,
                "lead_id": lead.id,
                "attempt": r.attempt,
                "from_number": caller.number,
                "to_number": lead.phone_number,
                "caller_id": caller.phone_number_id,
                "agent_version": agent_version,
                "status": "pending",
                "decision": r.decision,
                "created_at": now,
            }
        )
        leads[lead.id] = {"status": ls.DIALING, "attempts": r.attempt, "reason": None, "updated_at": now}
        deltas[r.prior_status] = deltas.get(r.prior_status, 0) - 1
    await store.insert_calls(conn, calls)
    await store.update_leads(conn, leads)
    deltas["in_progress"] = deltas.get("in_progress", 0) + len(pending)


# -- when to claim ------------------------------------------------------------------------------------
CLAIM_FAILURES_TO_PAUSE = 5


def target(camp: CampaignState, settings: EngineSettings) -> int:
    """How many leads a campaign holds claimed (waiting or slotted) at most (asked twice a tick:
    remembered per campaign state and settings; a changed config comes as a new state)."""
    known = camp.target_of
    if known is not None and known[0] is settings:
        return known[1]
    wanted = math.ceil(camp.config.pacing.attempts_per_second * settings.batch.total_seconds())
    found = max(1, min(settings.max_batch, wanted))
    camp.target_of = (settings, found)
    return found


def needs_leads(camp: CampaignState, settings: EngineSettings, now: datetime) -> bool:
    """An active campaign holding at most half its target claims when its next lead is due."""
    if camp.status != "active" or camp.stale or camp.held > target(camp, settings) // 2:
        return False
    return not camp.due_known or (camp.next_due is not None and claim_at(camp, settings) <= now)


def claim_at(camp: CampaignState, settings: EngineSettings) -> datetime:
    assert camp.next_due is not None
    if camp.backlog or (camp.held == 0 and camp.in_flight == 0):
        return camp.next_due  # a backlog is claimed at once; an idle campaign has nothing to batch with
    return camp.next_due + settings.claim_delay


def back_off(camp: CampaignState, now: datetime) -> str | None:
    """A claim of ours failed: the campaign waits (longer each time); returns why to pause it after five
    in a row."""
    camp.claim_failures += 1
    camp.due_known, camp.next_due = True, now + timedelta(seconds=min(300, 15 * 2**camp.claim_failures))
    if camp.claim_failures < CLAIM_FAILURES_TO_PAUSE:
        return None
    return f"paused: {camp.claim_failures} claims in a row failed with an internal error; resume to try again"
