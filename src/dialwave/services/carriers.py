"""Carrier callbacks: check that a request really comes from the carrier, then hand it to the carrier
object that tracks the call (in this process, beside the engine)."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from dialwave.domain.resources import twilio_credentials
from dialwave.errors import Forbidden, NotFound, Unavailable
from dialwave.store.db import Database
from dialwave.store.repositories.orgs import org_twilio
from dialwave.store.repositories.phone_numbers import number_of_call
from dialwave.telephony.base import Carrier
from dialwave.telephony.twilio import TwilioCarrier


async def twilio_status(
    db: Database, carrier: Carrier | None, call_id: str, form: dict[str, str], signature: str | None
) -> int:
    """Verify X-Twilio-Signature with the auth token of the number that placed the call, over the URL
    Twilio was given; returns how many call events the callback added (0 for a repeat or a late one)."""
    async with db.read() as conn:
        number = await number_of_call(conn, call_id)
        org = await org_twilio(conn, [number["organization_id"]]) if number is not None else {}
    token = None
    if number is not None:
        credentials = twilio_credentials(number["config"], org.get(number["organization_id"]))
        token = credentials["auth_token"] if credentials else None
    if number is None or number["provider"] != "twilio" or not token:
        raise NotFound(f"no Twilio call '{call_id}'")
    if not isinstance(carrier, TwilioCarrier):
        raise Unavailable("no dispatcher runs in this process: send carrier callbacks to `dialwave serve`")
    url = carrier.callback_url(call_id)
    if not signature or not RequestValidator(token).validate(url, form, signature):
        raise Forbidden("X-Twilio-Signature does not match this request", code="BAD_SIGNATURE")
    added = len(carrier.on_callback(call_id, form))
    await carrier.leave_voicemail(call_id)  # when this callback said a machine's greeting ended
    return added
