"""/v1/carriers/telnyx: Call Control webhooks (no API key: Telnyx's Ed25519 signature authenticates them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dialwave.api.deps import Db, Engine, Now
from dialwave.api.schemas import ErrorBody
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import telnyx_events as service

router = APIRouter(prefix="/v1/carriers", tags=["carrier-callbacks"], route_class=StrictJSONRoute)
_ERR = {"model": ErrorBody}


@router.post(
    "/telnyx/events/{call_id}",
    name="telnyx_events",
    status_code=204,
    responses={
        403: {**_ERR, "description": "telnyx-signature-ed25519 missing, wrong, or its telnyx-timestamp too old"},
        404: {**_ERR, "description": "no Telnyx call with this id"},
        503: {**_ERR, "description": "no dispatcher in this process"},
    },
)
async def telnyx_events(call_id: str, request: Request, db: Db, engine: Engine, now: Now) -> Response:
    """Telnyx's Call Control webhooks for one of our calls (the dial's webhook_url). Repeated and late
    events are acknowledged and never move the call backwards."""
    body = await request.body()
    if await service.telnyx_event(db, engine.carrier("telnyx"), call_id, body, dict(request.headers), now):
        engine.wake()
    return Response(status_code=204)
