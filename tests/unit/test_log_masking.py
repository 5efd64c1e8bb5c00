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
    await app.state.context.db.dispose()


def test_rendered_lines_mask_numbers_but_keep_timestamps(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import re

    from dialwave.logging import configure_logging

    configure_logging("info", json=True)
    try:
        structlog.get_logger("dialwave.engine").info(
            "originate failed", to="+14155550123", error="no route to +442071234567"
        )
        line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    finally:
        structlog.reset_defaults()
    assert line["to"] == "+*******0123" and "+442071234567" not in line["error"] and "4567" in line["error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])
