"""Carrier webhooks for calls another process holds. With several processes on PostgreSQL, a carrier's
webhook lands on whichever API process the load balancer picks, while the call is held by the engine
(a `dialwave worker`) that placed it. The receiving process verifies the webhook as always; if its own
engine does not hold the call, it stores the event and notifies (`forward`). Every engine on
PostgreSQL listens (engine/carrier_relay.py), takes the events of the calls it holds (`take`) and
applies them to its carrier as the route would have (`apply`). On SQLite one process holds every call:
the event goes to its carrier directly, as before.

The agent runtime's result for a call still up goes the same way (`forward_result`, `take_results`):
the process that stored it tells the engine holding the call, which applies its conversion and
callback at once, as its own API would have (engine/calls.py `note_result`). That also serves an
API-only process beside the one engine on SQLite (no NOTIFY there: the engine polls)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import RowMapping

from dialwave.errors import Unavailable
from dialwave.store.db import Database
from dialwave.store.repositories import carrier_events as repo
from dialwave.store.repositories import results as results_repo
from dialwave.telephony.base import Carrier, PushedEvents
from dialwave.telephony.livekit import LiveKitCarrier
from dialwave.telephony.retell import RetellCarrier
from dialwave.telephony.telnyx import TelnyxCarrier
from dialwave.telephony.twilio import TwilioCarrier
from dialwave.telephony.vapi import VapiCarrier

RELAYED = ("twilio", "telnyx", "livekit", "vapi", "retell")  # carriers whose webhooks can be handed over


C = TypeVar("C", bound=Carrier)


def require_receiver(db: Database, carrier: Carrier | None, kind: type[Carrier]) -> None:
    """503 before anything is verified when this process can neither apply the webhook (no engine with
    this carrier here) nor store it for the engine that holds the call (no shared database)."""
    if not isinstance(carrier, kind) and db.dialect != "postgresql":
        raise Unavailable("no dispatcher runs in this process: send carrier webhooks to `dialwave serve`")


def local_carrier(db: Database, carrier: Carrier | None, kind: type[C], call_id: str) -> C | None:
    """The carrier of this process to hand a verified webhook to, or None: store it (`forward`) for the
    engine that holds the call."""
    return carrier if isinstance(carrier, kind) and deliver_here(db, carrier, call_id) else None


def held_here(carrier: Carrier | None, call_id: str) -> bool:
    """This process's engine holds the call (placed it, or adopted it after a restart or a takeover)."""
    return isinstance(carrier, PushedEvents) and call_id in carrier.tracks


def deliver_here(db: Database, carrier: Carrier | None, call_id: str) -> bool:
    """Hand the webhook to this process's carrier (True), or store it for the engine that holds the
    call (False: PostgreSQL, and this process's engine does not hold it, or there is none)."""
    return db.dialect != "postgresql" or held_here(carrier, call_id)


async def forward(
    db: Database, provider: str, call_id: str, payload: Any, now: datetime, *, result: bool = False
) -> None:
    """`result`: the webhook also changed the call's stored result (a hosted platform's analysis): its
    notice goes first, so that an end in the same webhook decides with it."""
    async with db.write() as conn:
        if result:
            await repo.add_event(conn, repo.RESULT, call_id, {}, now)
        await repo.add_event(conn, provider, call_id, payload, now)


async def forward_result(db: Database, call_id: str, now: datetime) -> None:
    """The result of `call_id` (stored, committed) changed while the call is up, and no engine in this
    process holds the call: a notice for the engine that does (it reads the stored result)."""
    async with db.write() as conn:
        await repo.add_event(conn, repo.RESULT, call_id, {}, now)


async def pending(db: Database, carried: Sequence[str], resulted: Sequence[str]) -> bool:
    """Anything stored for these calls (a read: no write lock on SQLite while nothing is)."""
    async with db.read() as conn:
        return await repo.any_events(conn, carried, resulted)


async def take(db: Database, call_ids: Sequence[str]) -> list[RowMapping]:
    async with db.write() as conn:
        return await repo.take_events(conn, call_ids)


async def take_results(db: Database, call_ids: Sequence[str]) -> list[RowMapping]:
    """The stored results (call_id, conversion, callback_at) of the calls among `call_ids` with a
    notice, the notices taken: the result as it is now, whatever number of posts it took."""
    async with db.write() as conn:
        taken = await repo.take_events(conn, call_ids, results=True)
        return await results_repo.results_of(conn, sorted({r["call_id"] for r in taken})) if taken else []


async def drop_older(db: Database, before: datetime) -> int:
    async with db.write() as conn:
        return await repo.delete_older(conn, before)


async def apply(carrier: Carrier, provider: str, call_id: str, payload: Any) -> int:
    """A webhook handed to the carrier holding the call, by its route or, stored, by the relay: the events
    it adds."""
    if provider == "twilio" and isinstance(carrier, TwilioCarrier):
        added = len(carrier.on_callback(call_id, payload))
        await carrier.leave_voicemail(call_id)  # when this callback said a machine's greeting ended
        return added
    if provider == "telnyx" and isinstance(carrier, TelnyxCarrier):
        added = len(carrier.on_webhook(call_id, payload))
        await carrier.bridge(call_id)  # when it said the call was answered and the agent has a sip_uri
        return added
    if provider == "livekit" and isinstance(carrier, LiveKitCarrier):  # stored as the protobuf's JSON
        from google.protobuf.json_format import ParseDict  # the carrier made here loaded the SDK
        from livekit.protocol.webhook import WebhookEvent

        return len(carrier.on_webhook(call_id, ParseDict(payload, WebhookEvent(), ignore_unknown_fields=True)))
    if provider == "vapi" and isinstance(carrier, VapiCarrier):
        return len(carrier.on_message(call_id, payload))
    if provider == "retell" and isinstance(carrier, RetellCarrier):
        return len(carrier.on_webhook(call_id, str(payload["event"]), payload["call"]))
    return 0
