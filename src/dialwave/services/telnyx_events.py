"""Telnyx webhooks: check the Ed25519 signature with the public key of the number that placed the call
(the SDK's verify_webhook_signature: over `{telnyx-timestamp}|{body}`, the timestamp within 5 minutes),
then hand the event to the carrier object that tracks the call (in this process, or on PostgreSQL in the
process that holds the call: services/carrier_events.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from dialwave.errors import Forbidden, NotFound, ValidationFailed
from dialwave.services import carrier_events
from dialwave.store.db import Database
from dialwave.store.repositories.phone_numbers import number_of_call
from dialwave.telephony.base import Carrier
from dialwave.telephony.telnyx import TelnyxCarrier


async def telnyx_event(
    db: Database, carrier: Carrier | None, call_id: str, body: bytes, headers: Mapping[str, str], now: datetime
) -> int:
    """Returns how many call events the webhook added here (0 for a repeat, a late one or an ignored kind,
    and for one stored for the engine of another process, which holds the call)."""
    async with db.read() as conn:
        number = await number_of_call(conn, call_id)
    key = ((number["config"].get("telnyx") or {}).get("public_key") if number is not None else None) or None
    if number is None or number["provider"] != "telnyx" or not key:
        raise NotFound(f"no Telnyx call '{call_id}'")
    carrier_events.require_receiver(db, carrier, TelnyxCarrier)
    # the SDK loads on the first Telnyx webhook, not at start-up (about 1 s of imports)
    from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

    try:
        verify_webhook_signature(body.decode("utf-8", "replace"), headers, key)
    except WebhookVerificationError as exc:
        raise Forbidden(f"telnyx-signature-ed25519: {exc.message}"[:200], code="BAD_SIGNATURE") from exc
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise ValidationFailed("body: not JSON", fields={"body": "not JSON"}) from exc
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise ValidationFailed("body: a Telnyx webhook has a `data` object", fields={"data": "required"})
    here = carrier_events.local_carrier(db, carrier, TelnyxCarrier, call_id)
    if here is None:
        await carrier_events.forward(db, "telnyx", call_id, event, now)  # the engine holding the call applies it
        return 0
    return await carrier_events.apply(here, "telnyx", call_id, event)  # as the relay applies a stored one
