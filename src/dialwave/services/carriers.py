"""Carrier callbacks: check that a request really comes from the carrier, then hand it to the carrier
object that tracks the call (in this process, beside the engine; or, on PostgreSQL, in the process
that holds the call: services/carrier_events.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.consent import is_opt_out_reply
from dialwave.domain.resources import twilio_credentials
from dialwave.errors import Forbidden, NotFound
from dialwave.services import carrier_events
from dialwave.services import dnc as dnc_service
from dialwave.services.validation import phone_field
from dialwave.store.db import Database
from dialwave.store.repositories.orgs import org_twilio
from dialwave.store.repositories.phone_numbers import number_by_id, number_of_call
from dialwave.telephony.base import Carrier
from dialwave.telephony.twilio import TwilioCarrier


def twilio_public_url(carrier: Carrier | None, configured: str) -> str:
    """The base of the URLs Twilio signs its requests to us over (`public_url` of `twilio_status` and
    `twilio_sms`): the Twilio carrier's, when this process runs one (it gave Twilio its calls' callback
    URLs), else the configured DIALWAVE_PUBLIC_URL; without a trailing slash either way."""
    if isinstance(carrier, TwilioCarrier):
        return carrier.public_url
    return configured.rstrip("/")


def _signed(token: str, url: str, form: dict[str, str], signature: str | None) -> bool:
    """X-Twilio-Signature checks out (the SDK's validator, imported here: an API process that never
    hears from Twilio, and `dialwave simulate`, do not load the SDK)."""
    from twilio.request_validator import RequestValidator

    return bool(signature) and bool(RequestValidator(token).validate(url, form, signature))


async def twilio_status(
    db: Database,
    carrier: Carrier | None,
    call_id: str,
    form: dict[str, str],
    signature: str | None,
    public_url: str,
    now: datetime,
) -> int:
    """Verify X-Twilio-Signature with the auth token of the number that placed the call, over the URL
    Twilio was given (`public_url`: `twilio_public_url`); returns how many call events the callback added
    here (0 for a repeat or a late one, and for a callback stored for the engine of another process,
    which holds the call)."""
    async with db.read() as conn:
        number = await number_of_call(conn, call_id)
        token = await _auth_token(conn, number)
    if number is None or not token:
        raise NotFound(f"no Twilio call '{call_id}'")
    carrier_events.require_receiver(db, carrier, TwilioCarrier)
    url = f"{public_url}/v1/carriers/twilio/status/{call_id}"
    if not _signed(token, url, form, signature):
        raise Forbidden("X-Twilio-Signature does not match this request", code="BAD_SIGNATURE")
    here = carrier_events.local_carrier(db, carrier, TwilioCarrier, call_id)
    if here is None:
        await carrier_events.forward(db, "twilio", call_id, form, now)  # the engine holding the call applies it
        return 0
    return await carrier_events.apply(here, "twilio", call_id, form)  # as the relay applies a stored one


async def twilio_sms(
    db: Database, public_url: str, number_id: str, form: dict[str, str], signature: str | None, now: datetime
) -> str | None:
    """A text message Twilio forwards to one of our Twilio numbers (its Messaging webhook set to
    `{public_url}/v1/carriers/twilio/sms/{number_id}`), signed with that number's auth token. A STOP
    reply (`is_opt_out_reply`) opts its sender out at once, recorded with the channel `sms`. Returns the
    organization whose engine must hear of it, or None when the message was not an opt-out."""
    async with db.read() as conn:
        number = await number_by_id(conn, number_id)
        token = await _auth_token(conn, number)
    if number is None or not token:
        raise NotFound(f"no Twilio phone number '{number_id}'")
    url = f"{public_url}/v1/carriers/twilio/sms/{number_id}"
    if not _signed(token, url, form, signature):
        raise Forbidden("X-Twilio-Signature does not match this request", code="BAD_SIGNATURE")
    if not is_opt_out_reply(form.get("Body", "")):
        return None
    sender = phone_field(form.get("From", ""), "From")
    org_id = str(number["organization_id"])
    async with db.write() as conn:
        await dnc_service.opt_out(conn, org_id, sender, "replied STOP by text message", "sms", None, now)
    return org_id


async def _auth_token(conn: AsyncConnection, number: RowMapping | None) -> str | None:
    """The auth token Twilio signs a Twilio number's requests with (the number's own, or its organization's)."""
    if number is None or number["provider"] != "twilio":
        return None
    org = await org_twilio(conn, [number["organization_id"]])
    credentials = twilio_credentials(number["config"], org.get(number["organization_id"]))
    return str(credentials["auth_token"]) if credentials else None
