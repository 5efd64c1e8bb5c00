"""No phone number reaches a log line in plain text."""

from __future__ import annotations

import httpx
import pytest
import structlog

from dialwave.api.app import create_app
from dialwave.config import Settings


async def test_access_log_masks_numbers_in_paths(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/x.db"))
    # a fresh proxy: the module's logger caches its processors on first use (an earlier test's request),
    # and a cached logger writes past capture_logs
    monkeypatch.setattr("dialwave.api.middleware.access_log", structlog.get_logger("dialwave.access"))
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
        configure_logging("info")  # back to the session's plain logs
    assert line["to"] == "+*******0123" and "+442071234567" not in line["error"] and "4567" in line["error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_an_exception_is_logged_in_a_few_bounded_lines_without_locals(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    import json

    from dialwave.logging import TRACEBACK_CHARS, configure_logging

    def deep(n: int) -> None:
        big_local = ["secret-local-value"] * 50_000  # noqa: F841 - what a locals-rendering traceback would print
        if n:
            deep(n - 1)
        raise RuntimeError("call +14155550123 failed")

    configure_logging("info", json=as_json)
    try:
        try:
            deep(60)
        except RuntimeError:
            structlog.get_logger("dialwave.api").exception("unhandled error", path="/v1/x")
        out = capsys.readouterr().out
    finally:
        configure_logging("info")  # back to the session's plain logs
    assert "secret-local-value" not in out and "+14155550123" not in out
    assert len(out) < 4 * TRACEBACK_CHARS  # bounded: 61 frames of 50,000-item locals would be megabytes
    if as_json:
        line = json.loads(out.strip().splitlines()[-1])
        assert (line["exc_type"], line["exc_message"]) == ("RuntimeError", "call +*******0123 failed")
        assert "Traceback" in line["traceback"] or "deep" in line["traceback"]
        assert len(line["traceback"]) <= TRACEBACK_CHARS
    else:
        assert len(out.splitlines()) < 120
