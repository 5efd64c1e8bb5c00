"""/v1/carriers: carrier callbacks (no API key: each carrier's own signature authenticates them)."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from dialwave.api.deps import Db, Engine, Now, get_settings
from dialwave.api.schemas import ErrorBody
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import carriers as service

router = APIRouter(prefix="/v1/carriers", tags=["carrier-callbacks"], route_class=StrictJSONRoute)
_ERR = {"model": ErrorBody}


@router.post(
    "/twilio/status/{call_id}",
    name="twilio_status",
    status_code=204,
    responses={
        403: {**_ERR, "description": "X-Twilio-Signature missing or wrong"},
        404: {**_ERR, "description": "no Twilio call with this id"},
        503: {**_ERR, "description": "no dispatcher in this process (SQLite: send callbacks to `dialwave serve`)"},
    },
)
async def twilio_status(
    call_id: str,
    request: Request,
    db: Db,
    engine: Engine,
    now: Now,
    x_twilio_signature: str | None = Header(None, max_length=200),
) -> Response:
    """Twilio's status and async-AMD callbacks for one of our calls (form-encoded, signed by Twilio).
    Repeated and out-of-order callbacks are acknowledged and never move the call backwards. With several
    processes on PostgreSQL, a callback for a call another process holds is passed on to it."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    carrier = engine.carrier("twilio")
    public_url = service.twilio_public_url(carrier, get_settings(request).public_url)
    if await service.twilio_status(db, carrier, call_id, form, x_twilio_signature, public_url, now):
        engine.wake()
    return Response(status_code=204)


@router.post(
    "/twilio/sms/{number_id}",
    name="twilio_sms",
    response_class=Response,
    responses={
        200: {"content": {"text/xml": {}}, "description": "an empty TwiML answer (no reply is sent)"},
        403: {**_ERR, "description": "X-Twilio-Signature missing or wrong"},
        404: {**_ERR, "description": "no Twilio phone number with this id"},
        422: {**_ERR, "description": "an opt-out whose From is not a phone number"},
    },
)
async def twilio_sms(
    number_id: str,
    request: Request,
    db: Db,
    engine: Engine,
    now: Now,
    x_twilio_signature: str | None = Header(None, max_length=200),
) -> Response:
    """Twilio's Messaging webhook for one of our Twilio numbers (form-encoded, signed by Twilio): a reply
    of STOP (or quit, end, revoke, opt out, cancel, unsubscribe) puts its sender on the organization's
    do-not-call list at once, skips its waiting leads and revokes its consents (channel `sms`)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    carrier = engine.carrier("twilio")
    public_url = service.twilio_public_url(carrier, get_settings(request).public_url)
    org_id = await service.twilio_sms(db, public_url, number_id, form, x_twilio_signature, now)
    if org_id is not None:
        engine.signal(org_id, None)  # claimed leads of this number are not dialed
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="text/xml")
