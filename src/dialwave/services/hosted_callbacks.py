"""Webhooks of the hosted voice-agent platforms (Vapi server messages, Retell call events): check that
the request really comes from the platform with the secret of the number that placed the call, store
the platform's analysis as the call's result, and hand the call's progress to the carrier object (in
this process, beside the engine; or, on PostgreSQL, in the process that holds the call:
services/carrier_events.py)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NamedTuple

from dialwave.errors import Forbidden, NotFound
from dialwave.services import calls as call_service
from dialwave.services import carrier_events
from dialwave.store.db import Database
from dialwave.store.repositories.phone_numbers import number_of_call
from dialwave.telephony.base import Carrier
from dialwave.telephony.retell import RetellCarrier, signature_ok
from dialwave.telephony.retell import result_of as retell_result
from dialwave.telephony.vapi import VapiCarrier
from dialwave.telephony.vapi import result_of as vapi_result


class Handled(NamedTuple):
    org_id: str
    events: int  # call events the webhook added (0 for a repeat, a late one, or a message that changes nothing)
    posted: call_service.Posted | None  # the result stored from the platform's analysis
    forwarded: bool = False  # stored for the engine holding the call (with the result's notice)


async def _settings(db: Database, call_id: str, provider: str, secret_key: str) -> tuple[str, dict[str, Any], str]:
    """The organization, the provider settings and the secret of the number that placed `call_id`."""
    async with db.read() as conn:
        number = await number_of_call(conn, call_id)
    section = (number["config"].get(provider) or {}) if number is not None else {}
    secret = section.get(secret_key)
    if number is None or number["provider"] != provider or not secret:
        raise NotFound(f"no {provider.title()} call '{call_id}'")
    return str(number["organization_id"]), section, str(secret)


def _vapi_secret_given(headers: dict[str, str]) -> str | None:
    """Vapi's documented ways to send the secret: the X-Vapi-Secret header (the inline secret, or a Bearer
    Token credential named so without its prefix) or Authorization: Bearer (a Bearer Token credential)."""
    if headers.get("x-vapi-secret"):
        return headers["x-vapi-secret"]
    auth = headers.get("authorization") or ""
    return auth[7:] if auth[:7].lower() == "bearer " else None


Body = Callable[[], Awaitable[Any]]  # the request's JSON body, parsed only once the sender is known


async def vapi_message(
    db: Database, carrier: Carrier | None, call_id: str, headers: dict[str, str], load: Body, now: datetime
) -> Handled:
    """One Vapi server message for our call `call_id`: 404 for a call not placed through Vapi, 403 when
    the secret is missing or wrong (nothing changes, the body is not even parsed), 503 without a
    dispatcher here."""
    org_id, _, secret = await _settings(db, call_id, "vapi", "webhook_secret")
    carrier_events.require_receiver(db, carrier, VapiCarrier)
    given = _vapi_secret_given(headers)
    if given is None or not hmac.compare_digest(given.encode(), secret.encode()):
        raise Forbidden("the Vapi server secret does not match this call's number", code="BAD_SIGNATURE")
    body = await load()
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return Handled(org_id, 0, None)
    known = carrier.known_id(call_id) if isinstance(carrier, VapiCarrier) else None
    _same_call(known, (message.get("call") or {}).get("id"), call_id, "Vapi")
    posted = None
    if message.get("type") == "end-of-call-report":  # a replay stores the same result again: no effect twice
        result = vapi_result(message)
        if result is not None:
            posted = await call_service.post_result(db, org_id, call_id, result, now)
    here = carrier_events.local_carrier(db, carrier, VapiCarrier, call_id)
    if here is None:
        await carrier_events.forward(db, "vapi", call_id, message, now, result=_noted(posted))  # the holder applies it
        return Handled(org_id, 0, posted, forwarded=True)
    return Handled(org_id, await carrier_events.apply(here, "vapi", call_id, message), posted)


async def retell_event(
    db: Database, carrier: Carrier | None, call_id: str, raw: bytes, signature: str | None, load: Body, now: datetime
) -> Handled:
    """One Retell webhook for our call: the x-retell-signature is checked with the SDK's verify over the
    raw body and the number's API key (403 and nothing changes when it does not match)."""
    org_id, _, api_key = await _settings(db, call_id, "retell", "api_key")
    carrier_events.require_receiver(db, carrier, RetellCarrier)
    if not signature or not signature_ok(raw.decode("utf-8", "replace"), api_key, signature):
        raise Forbidden("x-retell-signature does not match this request", code="BAD_SIGNATURE")
    body = await load()
    if not isinstance(body, dict) or not isinstance(body.get("call"), dict):
        return Handled(org_id, 0, None)
    event, call = str(body.get("event") or body.get("event_type") or ""), body["call"]
    known = carrier.known_id(call_id) if isinstance(carrier, RetellCarrier) else None
    _same_call(known, call.get("call_id"), call_id, "Retell")
    posted = None
    if event == "call_analyzed":
        result = retell_result(call)
        if result is not None:
            posted = await call_service.post_result(db, org_id, call_id, result, now)
    payload = {"event": event, "call": call}
    here = carrier_events.local_carrier(db, carrier, RetellCarrier, call_id)
    if here is None:
        await carrier_events.forward(db, "retell", call_id, payload, now, result=_noted(posted))
        return Handled(org_id, 0, posted, forwarded=True)
    return Handled(org_id, await carrier_events.apply(here, "retell", call_id, payload), posted)


def _noted(posted: call_service.Posted | None) -> bool:
    """The result changes what the end of a call still up decides (routes/hosted_carriers.py `_apply`)."""
    return posted is not None and posted.decides_live_end(posted.result["conversion"], None)


def _same_call(known: str | None, said: Any, call_id: str, platform: str) -> None:
    """A webhook for our call must name the platform's call we placed (when this process placed it)."""
    if known and said and str(said) != known:
        raise NotFound(f"{platform} call '{said}' is not the one placed for '{call_id}'")
