"""A Pipecat bot that takes dialwave's calls over Twilio Media Streams: the template for a Pipecat runtime.

dialwave dials the callee through Twilio. When the callee answers, Twilio runs the TwiML dialwave gave it,
`<Connect><Stream url="{the agent's media_stream_url}">` with the call's `<Parameter>`s, and opens a
websocket to this bot. For each call the bot:

1. reads Twilio's `connected` and `start` messages: `start.customParameters` holds `call_id` and `token`
   (and `campaign_id`, `lead_id`, `var_<name>`), `start.streamSid` names the stream;
2. fetches `GET {api}/v1/calls/{id}/context` with the call's token (`Authorization: Bearer <token>`);
   a refused token (401) ends the stream at once: no audio, no result;
3. runs a Pipecat pipeline on the socket (`FastAPIWebsocketTransport` with `TwilioFrameSerializer`:
   8 kHz mu-law both ways): speech recognition, then TTS, and speaks the context's opening message;
4. listens `--listen-seconds` after it, transcribing what the callee says;
5. ends the pipeline, which closes the websocket: Twilio then goes past `<Connect>` and hangs up (so the
   serializer's own hang-up through Twilio's REST API, which needs Twilio credentials, is off);
6. posts `POST {api}/v1/calls/{id}/result`: a disposition (`greeted`, or `callee_hung_up` when Twilio's
   `stop` came first), a summary, the transcript and what it measured.

The speech services here run on this machine (local_speech.py): espeak-ng speaks, and a scripted
stand-in "recognizes" the callee's utterances (`--hear` gives its lines). A real bot puts a hosted STT,
an LLM seeded with the context's `system_prompt` and a hosted TTS in their place; the rest (the stream,
the context, the result) stays as here. Run it with

    python examples/pipecat_agent/bot.py --listen 127.0.0.1:8765 --api http://127.0.0.1:8080

and give the agent `"media_stream_url": "wss://<public host reaching 127.0.0.1:8765>/media"`. Needs:
Python 3.11, pipecat-ai (`pip install 'dialwave[pipecat]'`), espeak-ng. It prints one JSON line per step;
phone numbers show their last 4 digits only, and the token is never printed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from local_speech import EspeakTTSService, ScriptedSTTService, espeak_voice
from loguru import logger
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

TWILIO_RATE = 8000  # Media Streams carry 8 kHz mu-law both ways


def say(message: str, **fields: Any) -> None:
    print(json.dumps({"event": message, **fields}), flush=True)


def mask(number: str) -> str:
    return "*" * max(0, len(number) - 4) + number[-4:]


@dataclass
class Call:
    """What the bot noted during one call."""

    spoken: asyncio.Event = field(default_factory=asyncio.Event)  # the opening message has been sent
    heard: list[str] = field(default_factory=list)
    speech_seconds: float = 0.0  # of speech the TTS produced
    audio_frames_received: int = 0
    hung_up: bool = False  # the callee's side ended the stream first


class CallNotes(FrameProcessor):
    """Notes the call's audio, transcriptions and the end of the bot's speech; passes every frame on."""

    def __init__(self, call: Call) -> None:
        super().__init__()
        self.call = call

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.call.audio_frames_received += 1
        elif isinstance(frame, TTSAudioRawFrame):
            self.call.speech_seconds += len(frame.audio) / 2 / frame.sample_rate
        elif isinstance(frame, TranscriptionFrame):
            self.call.heard.append(frame.text)
            say("heard", text=frame.text)
        elif isinstance(frame, BotStoppedSpeakingFrame) and direction == FrameDirection.UPSTREAM:
            self.call.spoken.set()
        await self.push_frame(frame, direction)


async def twilio_start(websocket: WebSocket) -> dict[str, Any] | None:
    """Twilio's `start` message (after `connected`), or None when the stream stops before it."""
    for _ in range(10):
        message = json.loads(await websocket.receive_text())
        if message.get("event") == "start":
            start: dict[str, Any] = message["start"]
            return start
        if message.get("event") == "stop":
            return None
    return None


async def converse(
    websocket: WebSocket, start: dict[str, Any], context: dict[str, Any], listen_seconds: float, script: Sequence[str]
) -> Call:
    """The Pipecat pipeline on the Twilio socket: speak the opening message, listen, end the stream."""
    call = Call()
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"],
        call_sid=start.get("callSid"),
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),  # closing the socket hangs up
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, serializer=serializer),
    )
    stt = ScriptedSTTService(script)
    tts = EspeakTTSService(voice=espeak_voice(context.get("language")))
    pipeline = Pipeline([transport.input(), stt, tts, CallNotes(call), transport.output()])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=TWILIO_RATE, audio_out_sample_rate=TWILIO_RATE),
        enable_rtvi=False,
        idle_timeout_secs=None,  # the call's own limit applies (max_call_duration_seconds)
    )

    async def greet(_transport: object, _websocket: object) -> None:
        if context.get("opening_message"):
            await worker.queue_frames([TTSSpeakFrame(context["opening_message"])])
        else:
            call.spoken.set()

    async def callee_left(_transport: object, _websocket: object) -> None:
        call.hung_up = True
        await worker.cancel()

    transport.add_event_handler("on_client_connected", greet)
    transport.add_event_handler("on_client_disconnected", callee_left)

    async def end_after_listening() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(context.get("max_call_duration_seconds") or 600):
                await call.spoken.wait()
                await asyncio.sleep(listen_seconds)
        await worker.queue_frame(EndFrame())  # the transport closes the socket: Twilio hangs up

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    ending = asyncio.create_task(end_after_listening())
    try:
        await runner.run()
    finally:
        ending.cancel()
    return call


def result_of(call: Call, context: dict[str, Any]) -> dict[str, Any]:
    greeted = call.spoken.is_set() and not call.hung_up
    lines = [f"agent: {context.get('opening_message', '')}", *(f"callee: {text}" for text in call.heard)]
    heard = "heard " + ", ".join(json.dumps(text) for text in call.heard) if call.heard else "heard nothing"
    if greeted:
        summary = f"Played the opening message ({call.speech_seconds:.1f} s); {heard}"
    else:
        when = "after" if call.spoken.is_set() else "during"
        summary = f"The callee hung up {when} the opening message ({call.speech_seconds:.1f} s); {heard}"
    return {
        "disposition": "greeted" if greeted else "callee_hung_up",
        "summary": summary,
        "transcript": "\n".join(lines),
        "data": {
            "speech_seconds": round(call.speech_seconds, 3),  # of speech the TTS produced
            "audio_frames_received": call.audio_frames_received,
            "utterances": len(call.heard),
        },
    }


async def take_call(websocket: WebSocket, api: str, listen_seconds: float, script: Sequence[str]) -> None:
    await websocket.accept()
    try:
        start = await twilio_start(websocket)
    except WebSocketDisconnect:
        say("stream ended before its start")
        return
    params = (start or {}).get("customParameters") or {}
    call_id, token = params.get("call_id"), params.get("token")
    if start is None or not call_id or not token:
        say("not a dialwave call", has_call_id=bool(call_id), has_token=bool(token))
        await websocket.close()  # Twilio goes on past <Connect>: the call ends
        return
    say("stream started", call_id=call_id, stream_sid=start.get("streamSid"))
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        try:
            got = await http.get(f"/v1/calls/{call_id}/context")
        except httpx.HTTPError as exc:
            say("context unreachable", call_id=call_id, error=type(exc).__name__)
            await websocket.close()
            return
        if got.status_code != 200:
            code = (got.json().get("error") or {}).get("code") if got.content else None
            say("context refused", call_id=call_id, status=got.status_code, code=code)
            await websocket.close()
            return
        context = got.json()
        say("context", call_id=call_id, to=mask(context["to_number"]), returning=context["returning"])
        call = await converse(websocket, start, context, listen_seconds, script)
        result = result_of(call, context)
        try:
            posted = await http.post(f"/v1/calls/{call_id}/result", json=result)
        except httpx.HTTPError as exc:  # a real runtime keeps the result and tries again
            say("result not posted", call_id=call_id, error=type(exc).__name__)
            return
        say("result posted", call_id=call_id, status=posted.status_code, disposition=result["disposition"])


def make_app(api: str, listen_seconds: float, script: Sequence[str]) -> FastAPI:
    app = FastAPI(title="dialwave Pipecat bot")

    @app.websocket("/media")
    async def media(websocket: WebSocket) -> None:
        await take_call(websocket, api.rstrip("/"), listen_seconds, script)

    return app


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--listen", default="127.0.0.1:8765", help="host:port of the websocket server")
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="dialwave's base URL")
    parser.add_argument("--listen-seconds", type=float, default=3.0, help="how long to listen after the greeting")
    parser.add_argument("--hear", action="append", default=[], help="a line the stand-in STT hears (repeatable)")
    parser.add_argument("--log-level", default="WARNING", help="Pipecat's log level (to stderr)")
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    host, _, port = args.listen.rpartition(":")
    app = make_app(args.api, args.listen_seconds, args.hear)
    listener = socket.create_server((host, int(port)))  # bound now: a stream that comes early waits in the backlog
    say("listening", url=f"ws://{host}:{port}/media")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    await server.serve(sockets=[listener])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
