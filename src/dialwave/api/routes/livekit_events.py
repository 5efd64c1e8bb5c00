"""/v1/carriers/livekit: the LiveKit project's webhooks (no API key: the JWT LiveKit signs with the
project's API secret authenticates them)."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from dialwave.api.deps import Db, Engine, Now
from dialwave.api.schemas import ErrorBody
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import livekit_events as service

router = APIRouter(prefix="/v1/carriers", tags=["carrier-callbacks"], route_class=StrictJSONRoute)
_ERR = {"model": ErrorBody}


@router.post(
    "/livekit/events",
    name="livekit_events",
    status_code=204,
    responses={
        403: {
            **_ERR,
            "description": "Authorization missing, not signed with the number's API secret, or not this body",
        },
        404: {**_ERR, "description": "the room names a call that is not a LiveKit call here"},
        503: {**_ERR, "description": "no dispatcher in this process"},
    },
)
async def livekit_events(
    request: Request, db: Db, engine: Engine, now: Now, authorization: str | None = Header(None, max_length=4096)
) -> Response:
    """LiveKit's webhooks (room_finished, participant_left...; application/webhook+json). Events about
    rooms dialwave did not create are acknowledged and ignored; repeats change nothing."""
    body = await request.body()
    if await service.livekit_event(db, engine.carrier("livekit"), body, authorization, now):
        engine.wake()
    return Response(status_code=204)
