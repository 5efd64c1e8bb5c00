"""The Pipecat example bot (examples/pipecat_agent/bot.py) end to end, in real time, through the Twilio
carrier: the server's engine dials through a local fake of Twilio's REST API (tests/twilio_fake.py),
which keeps the TwiML; the test then plays Twilio: signed status callbacks, and the media stream the
TwiML asks for, opened on the bot (a separate process) with the TwiML's parameters as `customParameters`
(tests/twilio_media.py), the callee's audio in, the bot's audio out. The bot fetches the call's context
with the token from those parameters, speaks the rendered opening message (espeak-ng, through Pipecat's
TwilioFrameSerializer), hears the callee (a scripted stand-in STT) and posts its result, which ends up
on the call."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dialwave.store.migrate import upgrade
from tests.e2e.server import free_port, new_key, running_server, serving, zone_at_noon
from tests.e2e.test_example_runtime import need_espeak
from tests.twilio_fake import ACCOUNT, TOKEN, FakeTwilio, signed_callback
from tests.twilio_media import RATE, play_stream, stream_of, tone, ulaw_rms

BOT = Path(__file__).parents[2] / "examples" / "pipecat_agent" / "bot.py"
PUBLIC = "https://dialwave.example.com"  # the public URL Twilio is given for callbacks (signatures cover it)
OPENING = "Hello {{name}}, this is Dialwave calling about your {{topic}}."
SPOKEN = "Hello Ada, this is Dialwave calling about your renewal."
HEARD = "Yes, this is Ada."
T = TypeVar("T")


@contextmanager
def pipecat_bot(api: str, port: int, log: Path, *more: str) -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, str(BOT), "--listen", f"127.0.0.1:{port}", "--api", api, *more]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + 30
        while b'"listening"' not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Pipecat bot did not start: {log.read_text()}")
            time.sleep(0.05)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(10)


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_until(get: Callable[[], T], seconds: float) -> T:
    deadline = time.monotonic() + seconds
    while not (value := get()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def espeak_seconds(text: str) -> float:
    done = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True)
    with wave.open(io.BytesIO(done.stdout)) as wav:  # to stdout, the header's length is unknown: count the data
        return len(wav.readframes(wav.getnframes())) / wav.getsampwidth() / wav.getframerate()


class TwilioSide:
    """The test's Twilio: signed status callbacks to dialwave, the fake's call status kept in step."""

    def __init__(self, http: httpx.Client, fake: FakeTwilio, call_id: str, sid: str) -> None:
        self.http, self.fake, self.call_id, self.sid = http, fake, call_id, sid

    def status(self, status: str, **extra: str) -> None:
        self.fake.calls[self.sid]["status"] = status
        body, headers = signed_callback(PUBLIC, self.call_id, {"CallSid": self.sid, "CallStatus": status, **extra})
        assert (
            self.http.post(f"/v1/carriers/twilio/status/{self.call_id}", data=body, headers=headers).status_code == 204
        )

    def stream_started(self) -> None:
        """The `<Stream>`'s statusCallback as Twilio sends it when the media stream opens (the agent is on)."""
        params = {"CallSid": self.sid, "StreamSid": "MZ" + "0" * 32, "StreamEvent": "stream-started"}
        body, headers = signed_callback(PUBLIC, self.call_id, params)
        assert (
            self.http.post(f"/v1/carriers/twilio/status/{self.call_id}", data=body, headers=headers).status_code == 204
        )


@pytest.mark.parametrize("callee", ["listens", "hangs_up"])
def test_the_pipecat_bot_takes_a_twilio_call_and_posts_its_result(tmp_path: Path, callee: str) -> None:
    need_espeak()
    url = f"sqlite:///{tmp_path / 'pipecat.db'}"
    upgrade(url)
    headers = {"Authorization": f"Bearer {new_key(url, 'acme')}"}
    fake, bot_port, log = FakeTwilio(), free_port(), tmp_path / "bot.log"
    with (
        serving(fake.app()) as twilio_api,
        running_server(url, engine=True, public_url=PUBLIC, twilio_api_base=twilio_api) as base,
        pipecat_bot(base, bot_port, log, "--hear", HEARD, "--listen-seconds", "1.5"),
        httpx.Client(base_url=base, headers=headers) as http,
    ):
        agent = {
            "name": "greeter",
            "opening_message": OPENING,
            "required_variables": ["name"],
            "language": "en-US",
            "media_stream_url": f"ws://127.0.0.1:{bot_port}/media",
        }
        agent_id = http.post("/v1/agents", json=agent).json()["id"]
        number = {
            "number": "+12125550100",
            "provider": "twilio",
            "twilio": {"account_sid": ACCOUNT, "auth_token": TOKEN},
        }
        pn = http.post("/v1/phone-numbers", json=number).json()
        camp = http.post(
            "/v1/campaigns",
            json={
                "name": "greet",
                "agent_id": agent_id,
                "caller_ids": [{"phone_number_id": pn["id"]}],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "dynamic_variables": {"topic": "renewal"},
                "retry": {"max_attempts": 1, "on": {"short_duration": {"threshold_seconds": 1}}},  # a short call
            },
        ).json()
        lead = {"phone_number": "+12125557070", "timezone": zone_at_noon(), "variables": {"name": "Ada"}}
        assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": [lead]}).json()["accepted"] == 1
        assert http.post(f"/v1/campaigns/{camp['id']}/start").status_code == 200

        # The engine dialed through Twilio's API; the call's TwiML connects it to the bot's stream.
        [created] = wait_until(lambda: fake.created, 30)
        stream_url, parameters = stream_of(created["Twiml"])
        assert stream_url == agent["media_stream_url"]
        call_id, sid = parameters["call_id"], fake.sid_for("+12125557070")
        assert parameters["token"].startswith(f"dwct_{call_id}.") and parameters["var_name"] == "Ada"
        twilio = TwilioSide(http, fake, call_id, sid)
        for status in ("initiated", "ringing", "in-progress"):
            twilio.status(status)
        # Twilio opens the stream: the callee says something after half a second, then is quiet.
        twilio.stream_started()
        said = bytes([0xFF]) * (RATE // 2) + tone(1.0)
        hang_up_after = 1.5 if callee == "hangs_up" else None
        run = asyncio.run(
            play_stream(
                stream_url,
                parameters,
                call_sid=sid,
                account_sid=ACCOUNT,
                callee_audio=said,
                hang_up_after=hang_up_after,
            )
        )
        twilio.status("completed", CallDuration=str(max(1, round(run.seconds))))
        detail = wait_until(
            lambda: (d := http.get(f"/v1/calls/{call_id}").json()).get("result") and d["status"] == "ended" and d, 20
        )
        assert detail, http.get(f"/v1/calls/{call_id}").json()

    lines = events(log)
    assert "| ERROR" not in log.read_text()  # Pipecat logged no error
    # The bot fetched the context with the stream's token: the rendered context of this call.
    assert {"event": "context", "call_id": call_id, "to": "********7070", "returning": False} in lines
    assert "+12125557070" not in log.read_text() and parameters["token"] not in log.read_text()
    # Its audio came back over the socket in Twilio's format: media messages on our stream, mu-law 8 kHz.
    assert run.media and all(
        m["streamSid"] == run.stream_sid and set(m) == {"event", "streamSid", "media"} for m in run.media
    )
    audio = run.audio()
    result = detail["result"]
    measured = result["data"]
    assert (detail["outcome"], detail["status"]) == ("answered", "ended")
    assert detail["agent_connected_at"] and detail["abandoned"] is False  # the stream opened at once
    full = espeak_seconds(SPOKEN)
    if callee == "listens":
        # All of the opening message: as long as espeak-ng's speech of the rendered text.
        assert measured["speech_seconds"] == pytest.approx(full, abs=0.05)
        # The speech, then Pipecat's 2 s of silence at the end of a stream (audio_out_end_silence_secs).
        speech, end = audio[: -2 * RATE], audio[-2 * RATE :]
        assert len(speech) / RATE == pytest.approx(full, abs=0.1)
        assert ulaw_rms(speech) > 500 and ulaw_rms(end) == 0
        assert run.closed_by_bot  # the bot ended the stream (Twilio then hangs up)
        assert result["disposition"] == "greeted"
        assert result["summary"] == f'Played the opening message ({full:.1f} s); heard "{HEARD}"'
        assert result["transcript"] == f"agent: {SPOKEN}\ncallee: {HEARD}"  # the callee's audio reached the STT
        assert measured["utterances"] == 1 and {"event": "heard", "text": HEARD} in lines
        assert measured["audio_frames_received"] >= 0.8 * run.media_sent
    else:
        # The callee hung up 1.5 s in, while the bot was still talking: Twilio's `stop`.
        assert not run.closed_by_bot
        assert 0 < len(audio) / RATE < full and ulaw_rms(audio) > 500  # a part of the speech
        assert result["disposition"] == "callee_hung_up"
        assert result["summary"].startswith("The callee hung up during the opening message")
        assert measured["audio_frames_received"] > 0
    assert lines[-1] == {
        "event": "result posted",
        "call_id": call_id,
        "status": 200,
        "disposition": result["disposition"],
    }


def test_the_pipecat_bot_hangs_up_when_the_token_is_refused(tmp_path: Path) -> None:
    """A stream whose token dialwave refuses (401) gets no audio and posts nothing: the bot closes it."""
    url = f"sqlite:///{tmp_path / 'pipecat.db'}"
    upgrade(url)
    bot_port, log = free_port(), tmp_path / "bot.log"
    with running_server(url) as base, pipecat_bot(base, bot_port, log):
        forged = {"call_id": "call_1", "token": "dwct_call_1.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
        run = asyncio.run(play_stream(f"ws://127.0.0.1:{bot_port}/media", forged, call_sid="CA1", account_sid=ACCOUNT))
    assert run.closed_by_bot and run.received == []
    refused = [e for e in events(log) if e["event"] == "context refused"]
    assert refused == [{"event": "context refused", "call_id": "call_1", "status": 401, "code": "BAD_CALL_TOKEN"}]
    assert not any(e["event"] == "result posted" for e in events(log))
