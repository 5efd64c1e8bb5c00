"""What a stored result of the agent runtime changes at once, for the result route and the hosted
platforms' webhooks alike (a hosted platform's analysis is the runtime's result)."""

from __future__ import annotations

from datetime import datetime

from dialwave.engine.handle import EngineHandle
from dialwave.services import carrier_events
from dialwave.services.calls import Posted
from dialwave.store.db import Database


async def apply_result(
    db: Database,
    engine: EngineHandle,
    org_id: str,
    call_id: str,
    posted: Posted,
    now: datetime,
    *,
    opted_out: bool,
    conversion: bool | None,
    callback_at: datetime | None,
    noticed: bool = False,
) -> None:
    """An opt-out: claimed attempts of the number are not dialed. A result for a call that had ended:
    its lead waits for the attempt decided again. A result for a call still up: the engine holding it
    applies the conversion and the callback at its end; when that engine is another process's, it is
    told (unless the result's notice already went with the webhook: `noticed`)."""
    if opted_out:
        engine.signal(org_id, None)
    elif posted.redecided is not None:
        engine.signal(org_id, posted.redecided)
    elif (
        posted.decides_live_end(conversion, callback_at)
        and not noticed
        and not engine.note_result(call_id, conversion, callback_at)
    ):
        await carrier_events.forward_result(db, call_id, now)
