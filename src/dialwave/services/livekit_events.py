"""LiveKit webhooks: find our call by the event's room (`dialwave-{call_id}`), check the signed JWT in
Authorization with the API key and secret of the number that placed it (the SDK's WebhookReceiver:
HS256 signature, issuer = the API key, not expired, its sha256 claim = the body's SHA-256), then hand
the event to the carrier object that tracks the call (in this process, or on PostgreSQL in the process
that holds the call: services/carrier_events.py). Events about other rooms of the project are
acknowledged and ignored."""

from __future__ import annotations

import json
from datetime import datetime

from dialwave.errors import Forbidden, NotFound, ValidationFailed
from dialwave.services import carrier_events
from dialwave.store.db import Database
from dialwave.store.repositories.phone_numbers import number_of_call
from dialwave.telephony.base import Carrier
from dialwave.telephony.livekit import LiveKitCarrier, call_of_room


async def livekit_event(
    db: Database, carrier: Carrier | None, body: bytes, authorization: str | None, now: datetime
) -> int:
    """Returns how many call events the webhook added here (0 for a repeat, another room, an event that
    ends nothing, or one stored for the engine of another process, which holds the call)."""
    try:
        unverified = json.loads(body)
    except ValueError as exc:
        raise ValidationFailed("body: not JSON", fields={"body": "not JSON"}) from exc
    room = unverified.get("room") if isinstance(unverified, dict) else None
    call_id = call_of_room(room.get("name") if isinstance(room, dict) else None)
    if call_id is None:
        return 0  # not one of our rooms: nothing to change
    async with db.read() as conn:
        number = await number_of_call(conn, call_id)
    settings = (number["config"].get("livekit") or {}) if number is not None else {}
    if number is None or number["provider"] != "livekit" or not settings.get("api_secret"):
        raise NotFound(f"no LiveKit call '{call_id}'")
    carrier_events.require_receiver(db, carrier, LiveKitCarrier)
    from google.protobuf.json_format import MessageToDict  # the SDK: loaded by the first LiveKit webhook
    from livekit.api import TokenVerifier, WebhookReceiver

    token = (authorization or "").removeprefix("Bearer ").strip()
    receiver = WebhookReceiver(TokenVerifier(settings["api_key"], settings["api_secret"]))
    try:
        event = receiver.receive(body.decode("utf-8", "replace"), token)
    except Exception as exc:  # the SDK raises bare Exceptions (hash mismatch) and PyJWT's errors
        raise Forbidden("Authorization does not sign this body", code="BAD_SIGNATURE") from exc
    if call_of_room(event.room.name) != call_id:
        raise Forbidden("Authorization does not sign this body", code="BAD_SIGNATURE")
    here = carrier_events.local_carrier(db, carrier, LiveKitCarrier, call_id)
    if here is None:
        await carrier_events.forward(db, "livekit", call_id, MessageToDict(event), now)  # for the call's holder
        return 0
    return len(here.on_webhook(call_id, event))
