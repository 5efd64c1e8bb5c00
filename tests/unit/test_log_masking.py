"""No phone number reaches a log line in plain text."""

from __future__ import annotations

import httpx
import pytest
import structlog

from dialwave.api.app import create_app
from dialwave.config import Settings


async def test_access_log_masks_numbers_in_paths(tmp_path: pytest.TempPathFactory) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/x.db"))
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await client.get("/v1/dnc", params={"phone_number": "+14155550123"})
    lines = [entry for entry in logs if entry.get("event") == "request"]
    assert lines and lines[0]["status"] == 401
    assert "+14155550123" not in str(lines) and "0123" in lines[0]["path"]
    await app.state.db.dispose()
