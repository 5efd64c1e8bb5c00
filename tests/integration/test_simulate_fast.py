"""A simulation decides the same with its fast options on and off: a throwaway database without fsync,
and the engine as a forecast's (no prompts rendered, no call tokens, no results looked up). Same seed:
the same attempts, outcomes, times and completion. SQLite only (a simulation always runs on it)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from dialwave.simulate import Scenario, run_scenario

pytestmark = pytest.mark.asyncio
AREAS = ["212", "312", "415", "713", "305", "206"]


def scenario(leads: int) -> Scenario:
    return Scenario.model_validate(
        {
            "start_at": "2026-03-02T13:00:00Z",
            "campaign": {
                "name": "Fast and slow",
                "schedule": {
                    "timezone": "America/New_York",
                    "days_of_week": [1, 2, 3, 4, 5],
                    "windows": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "19:00"}],
                    "recipient_local_time": True,
                },
                "pacing": {"max_concurrency": 8, "attempts_per_second": 2},
                "retry": {
                    "max_attempts": 3,
                    "on": {
                        "busy": {"max_retries": 2, "interval_minutes": [15, 60]},
                        "no_answer": {"max_retries": 2, "interval_minutes": [120]},
                        "voicemail": {"max_retries": 1, "interval_minutes": [240]},
                    },
                },
                "machine_detection": {
                    "enabled": True,
                    "on_voicemail": "leave_message",
                    "voicemail_message": "Hi {{name}}, this is the clinic about {{date}}. Please call us back.",
                },
            },
            "caller_numbers": ["+12125550100", "+13125550100"],
            "agent": {
                "name": "Agent",
                "system_prompt": "You remind {{name}} of {{date}}.",
                "opening_message": "Hi {{name}}",
                "required_variables": ["name", "date"],
            },
            "leads": [
                {
                    "phone_number": f"+1{AREAS[i % len(AREAS)]}555{2000 + i:04d}",
                    "variables": {"name": f"P{i}", "date": f"March {1 + i % 28}"},
                }
                for i in range(leads)
            ],
            "dnc": [f"+1{AREAS[0]}5552000"],
            "carrier": {
                "seed": 5,
                "outcomes": {"answered": 0.35, "busy": 0.2, "no_answer": 0.25, "voicemail": 0.15, "failed": 0.05},
                "callback_rate": 0.1,
                "opt_out_rate": 0.05,
            },
        }
    )


def attempts(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    per: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for line in (out / "calls.jsonl").read_text("utf-8").splitlines():
        c = json.loads(line)
        per[c["phone_number"]].append(
            (
                c["attempt"],
                c["outcome"],
                c["sip_code"],
                c["duration_seconds"],
                c["started_at"],
                c["answered_at"],
                c["ended_at"],
                c["voicemail_left"],
                c["conversion"],
            )
        )
    return {number: sorted(calls) for number, calls in per.items()}


async def test_fast_options_change_no_decision(tmp_path: Path) -> None:
    sc = scenario(160)
    (tmp_path / "slow").mkdir()
    (tmp_path / "fast").mkdir()
    slow = await run_scenario(sc, tmp_path, tmp_path / "slow", fast=False)
    fast = await run_scenario(sc, tmp_path, tmp_path / "fast", fast=True)
    assert slow["completed_at"] is not None and slow["attempts"] > 160
    assert {k: v for k, v in fast.items() if k != "wall_seconds"} == {
        k: v for k, v in slow.items() if k != "wall_seconds"
    }
    mine, theirs = attempts(tmp_path / "fast"), attempts(tmp_path / "slow")
    assert mine == theirs
    outcomes = {call[1] for calls in mine.values() for call in calls}
    assert {"answered", "busy", "no_answer", "voicemail"} <= outcomes
    assert any(call[7] is True for calls in mine.values() for call in calls)  # a voicemail message was left


AREAS_ANYWHERE = ["212", "305", "305", "415", "713", "617"]  # 305: Florida's cap (3 attempts a day)


def random_scenario(seed: int, leads: int) -> Scenario:
    """A seeded random campaign: windows (recipient-local or not), pace, retries, machine detection,
    callbacks, opt-outs, numbers listed before and added on outcomes, cooldowns, duplicates of one number."""
    rng = random.Random(seed)
    start = rng.choice(["08:00", "09:00", "10:30"])
    windows = [{"start": start, "end": rng.choice(["12:00", "13:00"])}]
    if rng.random() < 0.7:
        windows.append({"start": "14:00", "end": rng.choice(["17:00", "20:00"])})
    retry_on = {
        outcome: {"max_retries": rng.randint(1, 4), "interval_minutes": [rng.choice([5, 10, 30, 240])]}
        for outcome in ("busy", "no_answer", "voicemail", "failed")
    }
    campaign: dict[str, Any] = {
        "name": f"Random {seed}",
        "schedule": {
            "timezone": rng.choice(["America/New_York", "America/Chicago", "UTC"]),
            "days_of_week": sorted(rng.sample([1, 2, 3, 4, 5, 6, 7], rng.randint(3, 7))),
            "windows": windows,
            "recipient_local_time": rng.random() < 0.6,
        },
        "pacing": {"max_concurrency": rng.randint(2, 12), "attempts_per_second": rng.choice([0.5, 1, 3])},
        "retry": {"max_attempts": rng.randint(2, 6), "on": retry_on},
        "machine_detection": {
            "enabled": rng.random() < 0.7,
            "on_voicemail": rng.choice(["hangup", "leave_message"]),
            "voicemail_message": "Hi {{name}}, please call us back.",
        },
        "dnc": {"auto_add_on": rng.sample(["opted_out", "busy", "no_answer", "completed"], rng.randint(0, 2))},
    }
    if rng.random() < 0.4:
        campaign["cooldowns"] = {"after_success_hours": rng.choice([1, 24])}
    numbers = [f"+1{rng.choice(AREAS_ANYWHERE)}555{rng.randrange(3000, 3400):04d}" for _ in range(leads)]
    weights = [rng.randint(1, 20) for _ in range(5)]
    rates = [w / sum(weights) for w in weights[:4]]
    rates.append(1 - sum(rates))
    return Scenario.model_validate(
        {
            "start_at": f"2026-03-0{rng.randint(2, 6)}T{rng.randint(0, 23):02d}:00:00Z",
            "campaign": campaign,
            "caller_numbers": ["+12125550100", "+13125550100"],
            "agent": {"name": "Agent", "system_prompt": "You remind {{name}}.", "required_variables": ["name"]},
            "leads": [{"phone_number": n, "variables": {"name": f"P{i}"}} for i, n in enumerate(numbers)],
            "dnc": rng.sample(numbers, 3),
            "max_days": 20,
            "carrier": {
                "seed": seed,
                "outcomes": dict(zip(["answered", "busy", "no_answer", "voicemail", "failed"], rates, strict=True)),
                "callback_rate": rng.choice([0.0, 0.2]),
                "opt_out_rate": rng.choice([0.0, 0.1]),
            },
        }
    )


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_random_scenarios_decide_the_same_in_memory(tmp_path: Path, seed: int) -> None:
    """The forecast's in-memory store of leads and calls (engine/storage.py) against the database."""
    sc = random_scenario(seed, 50)
    (tmp_path / "slow").mkdir()
    (tmp_path / "fast").mkdir()
    slow = await run_scenario(sc, tmp_path, tmp_path / "slow", fast=False)
    fast = await run_scenario(sc, tmp_path, tmp_path / "fast", fast=True)
    assert slow["attempts"] > 0
    assert {k: v for k, v in fast.items() if k != "wall_seconds"} == {
        k: v for k, v in slow.items() if k != "wall_seconds"
    }
    assert attempts(tmp_path / "fast") == attempts(tmp_path / "slow")
