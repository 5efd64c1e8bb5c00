"""GET /metrics: this process's metrics in the Prometheus text format. Unauthenticated like /healthz
(scrapers rarely carry API keys; it names campaign ids and counts, no phone number or content), and
absent when DIALWAVE_METRICS_ENABLED=false. Not in the OpenAPI document: it is for Prometheus, not
for SDKs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dialwave.api.deps import context_of
from dialwave.metrics import CONTENT_TYPE
from dialwave.services.metrics import scrape

router = APIRouter(tags=["metrics"])


@router.get("/metrics", name="scrape", include_in_schema=False)
async def metrics(request: Request) -> Response:
    context = context_of(request.app)
    return Response(await scrape(context.db, context.metrics), media_type=CONTENT_TYPE)
