"""/healthz: the process answers and its database does."""

from __future__ import annotations

from fastapi import APIRouter

from dialwave.api.deps import Db
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import health

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


@router.get("/healthz", name="check")
async def healthz(db: Db) -> dict[str, str]:
    await health.check(db)
    return {"status": "ok"}
