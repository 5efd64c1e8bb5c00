"""/healthz (the process answers) and /readyz (it can serve: database reachable, migrations current)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from dialwave.api.deps import Db
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import health

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


@router.get("/healthz", name="check")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process runs, whatever its database does (never waits for it)."""
    return {"status": "ok"}


@router.get("/readyz", name="ready", responses={503: {"description": "not ready: `problems` says why"}})
async def readyz(db: Db) -> JSONResponse:
    """Readiness: the database answers and is at the schema this code needs; else 503 with the problems."""
    problems = await health.readiness(db)
    if problems:
        return JSONResponse(
            {"status": "not ready", "problems": problems}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ready", "problems": []})
