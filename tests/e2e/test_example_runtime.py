"""The example runtime (examples/sip_agent/runtime.py) end to end, in real time: the server's engine
dials sipp (the callee's trunk, echoing RTP), bridges the answered call to the runtime (a separate
process), which fetches the call's context with its token, speaks the opening message (espeak-ng) as RTP
to the callee, posts a result and hangs up. The result shows up in the call and in its webhook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialwave.store.migrate import upgrade
from tests.e2e.server import new_key, receiver, running_server, zone_at_noon
from tests.sipp_peer import IN_CI, free_udp_port, sipp_trunk

RUNTIME = Path(__file__).parents[2] / "examples" / "sip_agent" / "runtime.py"


def need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        message = "espeak-ng is not installed (Debian package espeak-ng; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def example_runtime(api: str, port: int, log: Path, *more: str) -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, str(RUNTIME), "--listen", f"127.0.0.1:{port}", "--api", api, "--listen-seconds", "1"]
    args += more
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + 10
        while b"listening" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the example runtime did not start: {log.read_text()}")
            time.sleep(0.05)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(5)


def wait_for(got: list[dict[str, Any]], kinds: set[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not kinds <= {e["type"] for e in got}:
        time.sleep(0.1)


def test_the_example_runtime_talks_to_the_callee_and_reports_its_result(tmp_path: Path) -> None:
    need_espeak()
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    upgrade(url)
    headers = {"Authorization": f"Bearer {new_key(url, 'acme')}"}
    secret: list[str] = []
    got: list[dict[str, Any]] = []
    runtime_port, callee_media = free_udp_port(), free_udp_port()
    with (
        sipp_trunk(tmp_path, hold_ms=60_000, media=callee_media, extra=("-rtp_echo",)) as trunk,
        receiver(secret, got) as hook_url,
        running_server(url, engine=True, allow_loopback=True, sip_port=free_udp_port()) as base,
        example_runtime(base, runtime_port, tmp_path / "runtime.log"),
        httpx.Client(base_url=base, headers=headers) as http,
    ):
        endpoint = http.post("/v1/webhook-endpoints", json={"url": hook_url, "event_types": ["call.*"]})
        secret.append(endpoint.json()["secret"])
        agent = http.post(
            "/v1/agents",
            json={
                "name": "greeter",
                "opening_message": "Hello {{name}}, this is Dialwave calling about your {{topic}}.",
                "required_variables": ["name"],
                "sip_uri": f"sip:agent@127.0.0.1:{runtime_port}",
            },
        ).json()
        number = {"number": "+12125550100", "provider": "sip", "sip": {"trunk_uri": f"sip:127.0.0.1:{trunk}"}}
        pn = http.post("/v1/phone-numbers", json=number).json()
        camp = http.post(
            "/v1/campaigns",
            json={
                "name": "greet",
                "agent_id": agent["id"],
                "caller_ids": [{"phone_number_id": pn["id"]}],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "dynamic_variables": {"topic": "renewal"},
                "retry": {"on": {"short_duration": {"threshold_seconds": 1}}},  # a greeting is a whole call here
            },
        ).json()
        lead = {"phone_number": "+12125557070", "timezone": zone_at_noon(), "variables": {"name": "Ada"}}
        assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": [lead]}).json()["accepted"] == 1
        assert http.post(f"/v1/campaigns/{camp['id']}/start").status_code == 200
        wait_for(got, {"call.ended", "call.result"}, 30)
        [call] = http.get("/v1/calls", params={"campaign_id": camp["id"]}).json()["data"]
        detail = http.get(f"/v1/calls/{call['id']}").json()
    log = (tmp_path / "runtime.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # The runtime got the context through the bridge's token, rendered for this lead.
    context = next(line for line in lines if line["event"] == "context")
    assert context == {"event": "context", "call_id": call["id"], "to": "********7070", "returning": False}
    assert "+12125557070" not in log  # numbers are masked in the runtime's output too
    # The call: answered by the callee, ended by the runtime's hang-up, with the runtime's result.
    assert (detail["outcome"], detail["sip_code"], detail["status"]) == ("answered", 200, "ended")
    result = detail["result"]
    assert result["disposition"] == "greeted" and result["summary"].startswith("Played the opening message")
    measured = result["data"]
    # "Hello Ada, this is Dialwave calling about your renewal." is about 3 s of speech, 50 packets a second.
    assert 2 < measured["speech_seconds"] < 6
    assert measured["rtp_sent"] == pytest.approx(measured["speech_seconds"] * 50, abs=2)
    assert measured["rtp_received"] >= 0.9 * measured["rtp_sent"]  # the callee's media echoed it: audio flowed
    # The same result in its webhook, after the call's own events.
    kinds = [e["type"] for e in got]
    assert kinds.count("call.result") == 1 and {"call.started", "call.answered", "call.ended"} <= set(kinds)
    [hook] = [e for e in got if e["type"] == "call.result"]
    assert hook["data"]["call_id"] == call["id"] and hook["data"]["data"] == measured
    assert detail["duration_seconds"] >= measured["speech_seconds"]


def test_the_example_runtime_leaves_the_voicemail_message_on_a_machine(tmp_path: Path) -> None:
    need_espeak()
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    upgrade(url)
    headers = {"Authorization": f"Bearer {new_key(url, 'acme')}"}
    runtime_port, callee_media = free_udp_port(), free_udp_port()
    with (
        sipp_trunk(tmp_path, hold_ms=60_000, media=callee_media, extra=("-rtp_echo",)) as trunk,
        running_server(url, engine=True, allow_loopback=True, sip_port=free_udp_port()) as base,
        example_runtime(base, runtime_port, tmp_path / "runtime.log", "--machine"),
        httpx.Client(base_url=base, headers=headers) as http,
    ):
        agent = {"name": "a", "opening_message": "Hello.", "sip_uri": f"sip:agent@127.0.0.1:{runtime_port}"}
        agent_id = http.post("/v1/agents", json=agent).json()["id"]
        number = {"number": "+12125550100", "provider": "sip", "sip": {"trunk_uri": f"sip:127.0.0.1:{trunk}"}}
        pn = http.post("/v1/phone-numbers", json=number).json()
        machine = {"enabled": True, "on_voicemail": "leave_message", "voicemail_message": "Hi {{name}}, call us back."}
        camp = http.post(
            "/v1/campaigns",
            json={
                "name": "voicemail",
                "agent_id": agent_id,
                "caller_ids": [{"phone_number_id": pn["id"]}],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "machine_detection": machine,
                "retry": {"max_attempts": 1},
            },
        ).json()
        # the trunk answers numbers ending in 0 (tests/sipp/uas_router.xml)
        lead = {"phone_number": "+12125557080", "timezone": zone_at_noon(), "variables": {"name": "Ada"}}
        assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": [lead]}).json()["accepted"] == 1
        assert http.post(f"/v1/campaigns/{camp['id']}/start").status_code == 200
        deadline = time.monotonic() + 30
        detail: dict[str, Any] = {}
        while time.monotonic() < deadline and not (detail.get("result") and detail.get("status") == "ended"):
            time.sleep(0.2)
            calls = http.get("/v1/calls", params={"campaign_id": camp["id"]}).json()["data"]
            detail = http.get(f"/v1/calls/{calls[0]['id']}").json() if calls else {}
    assert detail["voicemail_left"] is True, json.dumps(detail)
    assert detail["result"]["disposition"] == "voicemail"
    assert detail["result"]["summary"].startswith("Played the voicemail message")
