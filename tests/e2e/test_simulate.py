"""`dialwave simulate`: a scenario in, calls.jsonl and summary.json out (field names fixed by the issue)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

CALL_FIELDS = {
    "id",
    "campaign_id",
    "lead_id",
    "phone_number",
    "from_number",
    "attempt",
    "started_at",
    "answered_at",
    "ended_at",
    "outcome",
    "sip_code",
}
SUMMARY_FIELDS = {"outcomes", "completed_at", "attempts_per_lead", "peak_concurrency", "achieved_attempts_per_second"}


def scenario(tmp_path: Path, **over: object) -> Path:
    (tmp_path / "leads.csv").write_text(
        "phone,first_name\n" + "".join(f"+1212555{1000 + i:04d},P{i}\n" for i in range(120)), "utf-8"
    )
    body = {
        "start_at": "2026-03-02T13:00:00Z",
        "campaign": {
            "name": "Forecast",
            "schedule": {"timezone": "America/New_York", "windows": [{"start": "09:00", "end": "17:00"}]},
            "pacing": {"max_concurrency": 6, "attempts_per_second": 1},
            "retry": {"max_attempts": 3, "on": {"busy": {"max_retries": 2, "interval_minutes": [30]}}},
        },
        "caller_numbers": ["+12125550100", "+12125550101"],
        "agent": {"name": "Agent", "opening_message": "Hi {{first_name}}", "required_variables": ["first_name"]},
        "leads": "leads.csv",
        "dnc": ["+12125551000", "+12125551001"],
        "carrier": {
            "seed": 1,
            "outcomes": {"answered": 0.4, "busy": 0.2, "no_answer": 0.3, "voicemail": 0.05, "failed": 0.05},
            "ring_seconds": [2, 20],
            "talk_seconds": [5, 240],
            "conversion_rate": 0.3,
        },
        **over,
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(body), "utf-8")
    return path


def run(path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dialwave.cli", "simulate", "--scenario", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DIALWAVE_DATABASE_URL": "sqlite:////nonexistent/never-used.db"},
    )


def test_simulate_writes_calls_and_summary(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    done = run(path, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "calls.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) >= SUMMARY_FIELDS
    assert lines and all(set(line) >= CALL_FIELDS for line in lines)
    assert sum(summary["outcomes"].values()) == len(lines)
    assert {line["phone_number"] for line in lines}.isdisjoint({"+12125551000", "+12125551001"})  # DNC
    assert summary["attempts_per_lead"] == round(len(lines) / 120, 4)
    assert 1 <= summary["peak_concurrency"] <= 6
    assert 0 < summary["achieved_attempts_per_second"] <= 1.0 + 1e-9
    assert summary["completed_at"] is not None and summary["completed_at"].endswith("Z")
    assert {line["from_number"] for line in lines} == {"+12125550100", "+12125550101"}
    for line in lines:
        started = datetime.fromisoformat(line["started_at"]).astimezone(ZoneInfo("America/New_York"))
        assert 9 <= started.hour < 17
        assert line["ended_at"] >= line["started_at"]
        if line["outcome"] != "voicemail":
            assert line["voicemail_left"] is None  # no machine answered
    voicemails = [line for line in lines if line["outcome"] == "voicemail"]
    assert voicemails and all(line["voicemail_left"] is False for line in voicemails)  # no message to leave
    again = tmp_path / "again"
    assert run(path, again).returncode == 0
    assert json.loads((again / "summary.json").read_text())["outcomes"] == summary["outcomes"]  # seeded


def test_inline_leads_and_a_clear_error_for_a_bad_scenario(tmp_path: Path) -> None:
    leads = [{"phone_number": "+12125550111", "variables": {"first_name": "Ada"}}]
    done = run(scenario(tmp_path, leads=leads), tmp_path / "inline")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "inline" / "summary.json").read_text())["leads"] == 1
    bad = run(scenario(tmp_path, start_at="2026-03-02T13:00:00"), tmp_path / "bad")  # no offset
    assert bad.returncode == 2 and "start_at" in bad.stderr
