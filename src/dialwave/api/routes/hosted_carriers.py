"""/v1/carriers/{vapi,retell}/events/{call_id}: the hosted voice-agent platforms' webhooks for one of our
calls (no API key: the number's Vapi server secret, or Retell's signature, authenticates them)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from dialwave.api.deps import Db, Engine, Now
from dialwave.api.result_effects import apply_result
from dialwave.api.schemas import ErrorBody
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.engine.handle import EngineHandle
from dialwave.services import hosted_callbacks as service
from dialwave.store.db import Database

router = APIRouter(prefix="/v1/carriers", tags=["carrier-callbacks"], route_class=StrictJSONRoute)
_ERR = {"model": ErrorBody}


def _errors(what: str) -> dict[int | str, dict[str, object]]:
    return {
        422: {**_ERR, "description": "the body is not JSON (after the sender was authenticated)"},
        403: {**_ERR, "description": f"{what} missing or wrong (BAD_SIGNATURE): nothing changes"},
        404: {**_ERR, "description": "no call with this id placed through this platform"},
        503: {**_ERR, "description": "no dispatcher in this process"},
    }


async def _apply(db: Database, engine: EngineHandle, handled: service.Handled, now: datetime) -> None:
    """What the result route does after a result, then wake the dispatcher for the call's events."""
    posted = handled.posted
    if posted is not None:
        result = posted.result
        await apply_result(
            db,
            engine,
            handled.org_id,
            result["call_id"],
            posted,
            now,
            opted_out=bool(result["opted_out"]),
            conversion=result["conversion"],
            callback_at=None,
            noticed=handled.forwarded,  # its notice went with the webhook
        )
    if handled.events or posted is not None:
        engine.wake()


@router.post("/vapi/events/{call_id}", name="vapi_events", status_code=204, responses=_errors("X-Vapi-Secret"))
async def vapi_events(call_id: str, request: Request, db: Db, engine: Engine, now: Now) -> Response:
    """Vapi's server messages for one of our calls ({"message": {...}}): status-update and
    end-of-call-report (its endedReason is the outcome, its analysis the call's result). Authenticated by
    the number's webhook_secret, sent by Vapi as X-Vapi-Secret or Authorization: Bearer."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    handled = await service.vapi_message(db, engine.carrier("vapi"), call_id, headers, request.json, now)
    await _apply(db, engine, handled, now)
    return Response(status_code=204)


@router.post("/retell/events/{call_id}", name="retell_events", status_code=204, responses=_errors("x-retell-signature"))
async def retell_events(
    call_id: str,
    request: Request,
    db: Db,
    engine: Engine,
    now: Now,
    x_retell_signature: str | None = Header(None, max_length=200),
) -> Response:
    """Retell's call_started, call_ended and call_analyzed for one of our calls ({"event", "call"}), signed
    with the number's API key (x-retell-signature, checked with the SDK's verify over the raw body)."""
    raw = await request.body()
    carrier = engine.carrier("retell")
    handled = await service.retell_event(db, carrier, call_id, raw, x_retell_signature, request.json, now)
    await _apply(db, engine, handled, now)
    return Response(status_code=204)
