"""Machine detection in the simulated carrier: the campaign's timeout decides whether a machine is
recognised in time, and a voicemail message is left after the beep or not. The call records
`voicemail_left` (API, call.ended). On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dialwave.store.db import Database
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NUMBER = "+12125550201"
# a machine answers after 2 s; recognising it takes 8 s; its greeting ends after 12 s
MACHINE = model(
    outcomes={"voicemail": 1.0},
    ring_seconds=(2, 2),
    talk_seconds=(30, 30),
    machine_detect_seconds=(8, 8),
    greeting_seconds=(12, 12),
)


async def one_call(db_url: str, db: Database, machine_detection: dict[str, Any]) -> dict[str, Any]:
    async with make_rig(db_url, db, START, MACHINE) as rig:
        cid = await rig.campaign([NUMBER], retry={"max_attempts": 1}, machine_detection=machine_detection)
        await rig.until_idle()
        [call] = await rig.calls(cid)
        shown = await rig.api.ok("get", f"/v1/calls/{call['id']}")
        assert shown["voicemail_left"] == call["voicemail_left"]
        return call


async def test_without_detection_the_machine_runs_its_course(db_url: str, db: Database) -> None:
    call = await one_call(db_url, db, {"enabled": False})
    assert (call["outcome"], call["voicemail_left"], call["duration_seconds"]) == ("voicemail", False, 30.0)


async def test_a_machine_recognised_within_the_timeout_is_hung_up_on(db_url: str, db: Database) -> None:
    call = await one_call(db_url, db, {"enabled": True, "timeout_seconds": 10})
    assert (call["outcome"], call["voicemail_left"], call["duration_seconds"]) == ("voicemail", False, 8.0)


async def test_a_timeout_shorter_than_detection_takes_the_machine_for_a_person(db_url: str, db: Database) -> None:
    call = await one_call(db_url, db, {"enabled": True, "timeout_seconds": 5})
    assert (call["outcome"], call["voicemail_left"], call["duration_seconds"]) == ("answered", None, 30.0)


async def test_a_message_is_left_after_the_beep(db_url: str, db: Database) -> None:
    words = "Hi this is Ava from Acme please call us back at your convenience"  # 13 words: 5.2 s
    leave = {"enabled": True, "timeout_seconds": 20, "on_voicemail": "leave_message", "voicemail_message": words}
    call = await one_call(db_url, db, leave)
    assert (call["outcome"], call["voicemail_left"]) == ("voicemail", True)
    assert call["duration_seconds"] == pytest.approx(12 + 5.2)


async def test_a_message_needs_the_greeting_to_end_within_the_timeout(db_url: str, db: Database) -> None:
    leave = {"enabled": True, "timeout_seconds": 10, "on_voicemail": "leave_message", "voicemail_message": "Hi"}
    call = await one_call(db_url, db, leave)  # the beep comes at 12 s: detection gave up at 10
    assert (call["outcome"], call["voicemail_left"]) == ("answered", None)
