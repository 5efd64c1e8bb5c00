"""A local stand-in for Twilio's side of a bidirectional Media Stream (`<Connect><Stream>`), as Twilio
documents its websocket messages: `connected`, then `start` (streamSid, callSid, the mu-law 8 kHz media
format and the TwiML's `<Parameter>`s as `customParameters`), then one `media` message per 20 ms of the
callee's audio (base64 mu-law, in real time), and `stop` when the call ends. It collects every message
the bot sends back (`media`, `mark`, `clear`). Also: the TwiML's stream URL and parameters, and
G.711 mu-law for the tests' audio."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

RATE = 8000
PACKET = 160  # bytes of mu-law per media message: 20 ms at 8 kHz
SILENCE = 0xFF  # mu-law of 0


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    """The `<Stream url>` of a `<Connect>` TwiML and its `<Parameter>`s, as Twilio reads them."""
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return stream.attrib["url"], {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


def ulaw_byte(sample: int) -> int:
    """G.711 mu-law of one signed 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = min(7, (magnitude >> 7).bit_length() - 1)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_sample(byte: int) -> int:
    """The signed 16-bit sample of one mu-law byte."""
    byte = ~byte & 0xFF
    magnitude = ((((byte & 0x0F) << 3) + 0x84) << ((byte & 0x70) >> 4)) - 0x84
    return -magnitude if byte & 0x80 else magnitude


def tone(seconds: float, hz: float = 440.0, amplitude: int = 8000) -> bytes:
    """A sine tone as 8 kHz mu-law (the callee 'speaking')."""
    count = int(seconds * RATE)
    return bytes(ulaw_byte(int(amplitude * math.sin(2 * math.pi * hz * i / RATE))) for i in range(count))


def ulaw_rms(audio: bytes) -> float:
    return math.sqrt(sum(ulaw_sample(b) ** 2 for b in audio) / len(audio)) if audio else 0.0


@dataclass
class StreamRun:
    stream_sid: str
    media_sent: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)  # the bot's messages, in order
    closed_by_bot: bool = False
    seconds: float = 0.0  # from `start` to the end of the stream

    @property
    def media(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == "media"]

    def audio(self) -> bytes:
        """The mu-law audio of the bot's media messages, in order."""
        return b"".join(base64.b64decode(m["media"]["payload"]) for m in self.media)


async def play_stream(
    url: str,
    parameters: dict[str, str],
    *,
    call_sid: str,
    account_sid: str,
    callee_audio: bytes = b"",
    hang_up_after: float | None = None,
    max_seconds: float = 30.0,
) -> StreamRun:
    """Open the stream as Twilio does and play `callee_audio` (mu-law) then silence, 20 ms a message, until
    the bot closes the socket; or, with `hang_up_after`, send `stop` after that many seconds and close."""
    run = StreamRun(stream_sid="MZ" + secrets.token_hex(16))
    sid = run.stream_sid
    async with connect(url, open_timeout=10) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": account_sid,
            "streamSid": sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
            "customParameters": parameters,
        }
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": sid}))

        async def receive() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    run.received.append(json.loads(message))
            run.closed_by_bot = not stopped  # the socket closed before we sent `stop`

        stopped = False
        receiving = asyncio.create_task(receive())
        began = time.monotonic()
        sequence = 1
        while not receiving.done() and time.monotonic() - began < max_seconds:
            elapsed = time.monotonic() - began
            if hang_up_after is not None and elapsed >= hang_up_after:
                stopped = True
                stop = {"event": "stop", "sequenceNumber": str(sequence + 1), "streamSid": sid}
                stop["stop"] = {"accountSid": account_sid, "callSid": call_sid}
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps(stop))
                break
            offset = run.media_sent * PACKET
            chunk = callee_audio[offset : offset + PACKET].ljust(PACKET, bytes([SILENCE]))
            sequence += 1
            media = {"track": "inbound", "chunk": str(run.media_sent + 1), "timestamp": str(run.media_sent * 20)}
            media["payload"] = base64.b64encode(chunk).decode()
            message = {"event": "media", "sequenceNumber": str(sequence), "media": media, "streamSid": sid}
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(message))
                run.media_sent += 1
            next_at = began + run.media_sent * 0.02  # real time: one message per 20 ms
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        run.seconds = time.monotonic() - began
        if stopped:
            await ws.close()
        await asyncio.wait_for(receiving, 10)
    return run
