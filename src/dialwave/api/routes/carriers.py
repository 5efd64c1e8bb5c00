"""/v1/carriers: carrier callbacks (no API key: each carrier's own signature authenticates them)."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from dialwave.api.deps import Db, Engine
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
        503: {**_ERR, "description": "no dispatcher in this process"},
    },
)
async def twilio_status(
    call_id: str,
    request: Request,
    db: Db,
    engine: Engine,
    x_twilio_signature: str | None = Header(None, max_length=200),
) -> Response:
    """Twilio's status and async-AMD callbacks for one of our calls (form-encoded, signed by Twilio).
    Repeated and out-of-order callbacks are acknowledged and never move the call backwards."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if await service.twilio_status(db, engine.carrier("twilio"), call_id, form, x_twilio_signature):
        engine.wake()
    return Response(status_code=204)
