"""A minimal voice-agent runtime for dialwave's SIP agent bridge: the template for a real one.

dialwave dials the callee through a SIP trunk. When the callee answers, dialwave sends an INVITE to
the agent's `sip_uri` (this program) carrying the callee's SDP offer and the call's context as
`X-Dialwave-*` headers (RFC 3725 third-party call control: audio flows directly between the callee's
media and this program). This runtime then:

1. answers the INVITE with its own SDP (G.711 mu-law, one RTP port per call);
2. fetches `GET {api}/v1/calls/{id}/context` with the call's token (`X-Dialwave-Token`);
3. speaks the context's opening message, synthesised by espeak-ng, as RTP to the callee;
4. listens a moment (counting the RTP it gets back);
5. posts `POST {api}/v1/calls/{id}/result` with a disposition, a summary and what it measured;
6. hangs up (BYE): dialwave then ends the callee's leg.

When a machine answers (with `--machine` it takes every answer for one; a real runtime knows one by the
greeting its speech recognition hears), it follows the campaign's `machine_detection` from the context:
it waits for the beep and speaks `voicemail_message`, or hangs up, and posts `voicemail_left`.

A real runtime replaces steps 3 and 4 with its conversation loop (speech recognition, an LLM, TTS).
Everything else (SIP, the context, the result) stays as here. Run it with

    python examples/sip_agent/runtime.py --listen 127.0.0.1:5090 --api http://127.0.0.1:8080

and give the agent `"sip_uri": "sip:agent@127.0.0.1:5090"`. Needs: Python 3.11, httpx, espeak-ng.
No phone number is printed in full (last 4 digits only)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import struct
import sys
import time
import wave
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length"}
T1 = 0.5  # SIP timer T1: retransmit our 200 OK until the ACK comes, doubling from this
RTP_MS = 20  # one RTP packet per 20 ms: 160 mu-law bytes at 8 kHz


def say(message: str, **fields: Any) -> None:
    print(json.dumps({"event": message, **fields}), flush=True)


def mask(number: str) -> str:
    return "*" * max(0, len(number) - 4) + number[-4:]


# -- SIP messages ------------------------------------------------------------------------------------------
@dataclass
class SipMessage:
    first_line: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # a folded header continues the previous one
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                headers.append((COMPACT.get(name, name), value.strip()))
        return cls(lines[0], headers, body)

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0] if not self.first_line.startswith("SIP/") else ""

    @property
    def status(self) -> int:
        return int(self.first_line.split(" ", 2)[1]) if self.first_line.startswith("SIP/") else 0

    def get(self, name: str, default: str = "") -> str:
        return next((v for n, v in self.headers if n == name.lower()), default)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]


def render(first_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [first_line, *(f"{name}: {value}" for name, value in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def uri_of(header: str) -> str:
    """The URI of a From/To/Contact value: `"Name" <sip:x@h:p>;tag=1` -> `sip:x@h:p`."""
    if "<" in header:
        return header.split("<", 1)[1].split(">", 1)[0]
    return header.split(";", 1)[0].strip()


def host_port(uri: str, default: tuple[str, int]) -> tuple[str, int]:
    try:
        rest = uri.split(":", 1)[1].split(";", 1)[0].split("@")[-1]
        host, _, port = rest.partition(":")
        return host, int(port or 5060)
    except (IndexError, ValueError):
        return default


# -- audio -------------------------------------------------------------------------------------------------
def _ulaw(sample: int) -> int:
    """G.711 mu-law of one signed 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, 32635) + 0x84
    exponent = min(7, (magnitude >> 7).bit_length() - 1)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


ULAW = bytes(_ulaw(s) for s in range(-32768, 32768))  # indexed by sample + 32768


def speech(text: str, voice: str) -> bytes:
    """espeak-ng's speech of `text` as 8 kHz mu-law (espeak-ng writes 22,050 Hz 16-bit mono)."""
    import subprocess

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    done = subprocess.run([espeak, "-v", voice, "--stdout", text], capture_output=True, check=False)
    if done.returncode != 0 and voice != "en":
        done = subprocess.run([espeak, "-v", "en", "--stdout", text], capture_output=True, check=True)
    with wave.open(io.BytesIO(done.stdout)) as wav:
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    pcm = struct.unpack(f"<{len(frames) // 2}h", frames)
    step = rate / 8000  # linear interpolation down to 8 kHz
    out = bytearray()
    position = 0.0
    while position < len(pcm) - 1:
        i = int(position)
        frac = position - i
        out.append(ULAW[int(pcm[i] * (1 - frac) + pcm[i + 1] * frac) + 32768])
        position += step
    return bytes(out)


def espeak_voice(language: str) -> str:
    """A context language (BCP 47, e.g. en-US) as an espeak-ng voice name (en-us)."""
    return language.lower() if language else "en"


class Rtp(asyncio.DatagramProtocol):
    """One call's RTP socket: sends the speech, counts what comes back."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # (not its subclass in Python 3.11)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2:  # RTP version 2
            self.received += 1

    async def play(self, audio: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        ssrc, seq, stamp = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, offset in enumerate(range(0, len(audio), 160)):
            chunk = audio[offset : offset + 160].ljust(160, b"\xff")  # 0xff: mu-law silence
            marker = 0x80 if n == 0 else 0
            header = struct.pack("!BBHII", 0x80, marker, (seq + n) & 0xFFFF, (stamp + 160 * n) & 0xFFFFFFFF, ssrc)
            self.transport.sendto(header + chunk, to)
            self.sent += 1
            await asyncio.sleep(max(0.0, start + (n + 1) * RTP_MS / 1000 - loop.time()))


# -- calls -------------------------------------------------------------------------------------------------
@dataclass
class Call:
    invite: SipMessage
    peer: tuple[str, int]
    local_tag: str = field(default_factory=lambda: f"{random.getrandbits(48):x}")
    answer: bytes = b""  # our 200 OK, re-sent until the ACK comes
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    rtp: Rtp | None = None
    task: asyncio.Task[None] | None = None


class Runtime(asyncio.DatagramProtocol):
    def __init__(self, api: str, host: str, port: int, listen_seconds: float, machine: bool = False) -> None:
        self.machine = machine  # take every answer for an answering machine (see --machine)
        self.api, self.host, self.port, self.listen_seconds = api.rstrip("/"), host, port, listen_seconds
        self.calls: dict[str, Call] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.http = httpx.AsyncClient(timeout=10)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # (not its subclass in Python 3.11)

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    def reply(self, req: SipMessage, peer: tuple[str, int], code: int, reason: str, call: Call | None = None,
              headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:  # fmt: skip
        to = req.get("to")
        if call is not None and code > 100 and ";tag=" not in to:
            to = f"{to};tag={call.local_tag}"
        lines = [("Via", via) for via in req.all("via")]
        lines += [("Record-Route", rr) for rr in req.all("record-route")]
        lines += [("From", req.get("from")), ("To", to), ("Call-ID", req.get("call-id")), ("CSeq", req.get("cseq"))]
        data = render(f"SIP/2.0 {code} {reason}", lines + (headers or []), body)
        self.send(data, peer)
        return data

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not data.strip():
            return  # a keep-alive
        try:
            msg = SipMessage.parse(data)
        except (ValueError, IndexError):
            return
        peer = (str(addr[0]), int(addr[1]))
        call = self.calls.get(msg.get("call-id"))
        method = msg.method
        if method == "INVITE":
            if call is not None:  # a retransmission: answer again
                if call.answer:
                    self.send(call.answer, peer)
                return
            self.invite(msg, peer)
        elif method == "ACK":
            if call is not None:
                call.acked.set()
        elif method == "BYE":
            self.reply(msg, peer, 200, "OK", call)
            if call is not None:
                say(
                    "the bridge hung up", call_id=msg.get("x-dialwave-call-id") or call.invite.get("x-dialwave-call-id")
                )
                call.ended.set()
        elif method == "CANCEL":
            self.reply(msg, peer, 200, "OK", call)
        elif method == "OPTIONS":
            self.reply(msg, peer, 200, "OK")
        elif method:
            self.reply(msg, peer, 405, "Method Not Allowed")
        elif call is not None and msg.get("cseq").endswith("BYE") and msg.status >= 200:
            call.ended.set()  # the answer to our BYE

    def invite(self, msg: SipMessage, peer: tuple[str, int]) -> None:
        call = Call(msg, peer)
        self.calls[msg.get("call-id")] = call
        self.reply(msg, peer, 100, "Trying")
        call.task = asyncio.ensure_future(self.run(call))

    async def run(self, call: Call) -> None:
        msg, call_id = call.invite, call.invite.get("x-dialwave-call-id")
        token = call.invite.get("x-dialwave-token")
        try:
            media = remote_media(msg.body.decode("ascii", "replace"))
            if not call_id or not token or media is None:
                self.reply(msg, call.peer, 488 if media is None else 403, "Not Acceptable Here", call)
                say("refused a call", reason="no SDP offer" if media is None else "no dialwave call id or token")
                return
            loop = asyncio.get_running_loop()
            _, rtp = await loop.create_datagram_endpoint(Rtp, local_addr=(self.host, 0))
            call.rtp = rtp
            assert rtp.transport is not None
            rtp_port = rtp.transport.get_extra_info("sockname")[1]
            sdp = answer_sdp(self.host, rtp_port).encode()
            contact = [("Contact", f"<sip:agent@{self.host}:{self.port}>"), ("Content-Type", "application/sdp")]
            call.answer = self.reply(msg, call.peer, 200, "OK", call, contact, sdp)
            resending = asyncio.ensure_future(self.resend_until_acked(call))
            await self.converse(call, call_id, token, media)
            resending.cancel()
        except Exception as exc:  # one call's failure never stops the runtime
            say("call failed", call_id=call_id, error=repr(exc))
        finally:
            if call.rtp is not None and call.rtp.transport is not None:
                call.rtp.transport.close()
            await asyncio.sleep(5)  # absorb late retransmissions
            self.calls.pop(msg.get("call-id"), None)

    async def resend_until_acked(self, call: Call) -> None:
        wait = T1
        for _ in range(7):
            try:
                await asyncio.wait_for(call.acked.wait(), wait)
                return
            except TimeoutError:
                self.send(call.answer, call.peer)
                wait = min(wait * 2, 4)

    async def converse(self, call: Call, call_id: str, token: str, media: tuple[str, int]) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        reply = await self.http.get(f"{self.api}/v1/calls/{call_id}/context", headers=auth)
        reply.raise_for_status()
        context = reply.json()
        text = context["opening_message"] or "Hello."
        say("context", call_id=call_id, to=mask(context["to_number"]), returning=context["returning"])
        voicemail = None
        if self.machine and context["machine_detection"]["enabled"]:
            # A real runtime knows a machine by what its speech recognition hears (a greeting, a beep).
            voicemail = context["voicemail_message"]  # None: the campaign hangs up on machines
            if voicemail is None:
                await self.report(call_id, auth, {"disposition": "voicemail", "voicemail_left": False})
                await self.bye(call)
                return
            text = voicemail
            with contextlib.suppress(TimeoutError):  # the greeting plays until the beep
                await asyncio.wait_for(call.ended.wait(), self.listen_seconds)
        audio = await asyncio.to_thread(speech, text, espeak_voice(context.get("language") or "en"))
        assert call.rtp is not None
        started = time.monotonic()
        speaking = asyncio.ensure_future(call.rtp.play(audio, media))
        await asyncio.wait([speaking, asyncio.ensure_future(call.ended.wait())], return_when="FIRST_COMPLETED")
        if not call.ended.is_set():
            with contextlib.suppress(TimeoutError):  # a real runtime converses here: listen, understand, answer
                await asyncio.wait_for(call.ended.wait(), self.listen_seconds)
        speaking.cancel()
        hung_up = call.ended.is_set()
        measured = {
            "speech_seconds": round(len(audio) / 8000, 2),
            "rtp_sent": call.rtp.sent,
            "rtp_received": call.rtp.received,
            "talk_seconds": round(time.monotonic() - started, 2),
        }
        what = "voicemail message" if voicemail else "opening message"
        result: dict[str, Any] = {
            "disposition": "voicemail" if voicemail else "callee_hung_up" if hung_up else "greeted",
            "summary": f"Played the {what} ({len(audio) / 8000:.1f} s of speech).",
            "data": measured,
        }
        if voicemail:
            result["voicemail_left"] = not hung_up
        await self.report(call_id, auth, result)
        say("result posted", call_id=call_id, **measured)
        if not hung_up:
            await self.bye(call)

    async def report(self, call_id: str, auth: dict[str, str], result: dict[str, Any]) -> None:
        posted = await self.http.post(f"{self.api}/v1/calls/{call_id}/result", headers=auth, json=result)
        posted.raise_for_status()

    async def bye(self, call: Call) -> None:
        """We end the conversation: BYE within the dialog (we are its UAS side)."""
        inv = call.invite
        target = uri_of(inv.get("contact")) or uri_of(inv.get("from"))
        branch = f"z9hG4bK{random.getrandbits(64):x}"
        headers = [
            ("Via", f"SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"{inv.get('to')};tag={call.local_tag}"),
            ("To", inv.get("from")),
            ("Call-ID", inv.get("call-id")),
            ("CSeq", "1 BYE"),
        ]
        data = render(f"BYE {target} SIP/2.0", headers)
        to = host_port(target, call.peer)
        wait = T1
        for _ in range(5):  # until its 200 OK (a BYE the bridge sent meanwhile also ends the call)
            self.send(data, to)
            try:
                await asyncio.wait_for(call.ended.wait(), wait)
                return
            except TimeoutError:
                wait *= 2


def remote_media(sdp: str) -> tuple[str, int] | None:
    """The offer's audio address: `c=IN IP4 <ip>` and `m=audio <port> RTP/AVP ...` with PCMU (0)."""
    ip, port, formats = None, None, []
    for line in sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            ip = line.split()[-1]
        elif line.startswith("m=audio "):
            parts = line.split()
            port, formats = int(parts[1]), parts[3:]
    if ip is None or port is None or "0" not in formats:
        return None
    return ip, port


def answer_sdp(ip: str, port: int) -> str:
    session = random.getrandbits(31)
    return (
        f"v=0\r\no=agent {session} 1 IN IP4 {ip}\r\ns=dialwave example runtime\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--listen", default="127.0.0.1:5090", help="host:port for SIP (UDP)")
    parser.add_argument("--api", default=os.environ.get("DIALWAVE_API", "http://127.0.0.1:8080"))
    parser.add_argument("--listen-seconds", type=float, default=1.0, help="how long to listen after speaking")
    parser.add_argument(
        "--machine",
        action="store_true",
        help="take every answer for an answering machine: leave the campaign's voicemail message (or hang up)",
    )
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    loop = asyncio.get_running_loop()
    runtime = Runtime(args.api, host, int(port), args.listen_seconds, args.machine)
    transport, _ = await loop.create_datagram_endpoint(lambda: runtime, local_addr=(host, int(port)))
    say("listening", sip=f"{host}:{transport.get_extra_info('sockname')[1]}", api=args.api)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()
        await runtime.http.aclose()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1:]))
