"""A SIP trunk carrier on `sippy` (PyPI, a maintained RFC 3261 stack and B2BUA; its thread: sip_stack.py).

Commands go to sippy's thread through `SipStack.call`; events come back to asyncio through
`loop.call_soon_threadsafe`.

A call: INVITE `sip:<E.164>@<trunk>` with our caller id in From and P-Asserted-Identity, the dial's
context as X- headers, and an SDP offer. Only 180/183 count as ringing (sippy also reports 100). The
final response goes through the one SIP table in the domain; a 408 that never rang (no reply at all)
is a provider error, not a no-answer. Our hang-up sends CANCEL while ringing (the 487 that follows ends
it as no_answer) or BYE once answered; the callee's BYE ends it as answered."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import structlog

from dialwave.clock import Clock
from dialwave.domain.outcomes import ANSWERED, NO_ANSWER, PROVIDER_ERROR, outcome_for_sip
from dialwave.domain.phone import mask
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest
from dialwave.telephony.sip_stack import SipStack, trunk_address, uri_transport

log = structlog.get_logger("dialwave.telephony.sip")
NO_REPLY_SECONDS = 8  # no response at all to the INVITE within this: provider_error

SDP = (
    "v=0\r\no=dialwave {sess} 1 IN IP4 {ip}\r\ns=dialwave\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
)


@dataclass
class _Leg:
    request: DialRequest
    ua: Any = None
    rang: bool = False
    answered: bool = False
    hung_up: bool = False  # by us
    ended: bool = False
    agent_ua: Any = None  # the agent bridge's leg (3PCC)
    bridged: bool = False
    tcp_peer: tuple[str, int] | None = None  # the trunk, when the call goes over TCP


class SipCarrier:
    name = "sip"
    simulated = False

    def __init__(self, clock: Clock, host: str = "127.0.0.1", port: int = 5070) -> None:
        self.clock = clock
        self.host, self.port = host, port
        self.legs: dict[str, _Leg] = {}
        self.queue: list[CallEvent] = []
        self.wake: Any = None  # the runner's nudge: events arrive from the network at any time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: SipStack | None = None

    def _ensure(self) -> SipStack:
        if self._stack is None:
            self._loop = asyncio.get_running_loop()
            self._stack = SipStack.get(self.host, self.port)
            self._stack.tcp_listeners.append(self._tcp_failed)
        return self._stack

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self.legs:
            return request.call_id  # one attempt is never placed twice
        sip = request.carrier_settings.get("sip") or {}
        if not sip.get("trunk_uri"):
            raise CarrierError("the phone number has no sip.trunk_uri")
        transport = uri_transport(sip["trunk_uri"], sip.get("transport") or "udp")
        if transport not in ("udp", "tcp"):
            raise CarrierError(f"sip transport {transport!r} is not supported: use udp or tcp")
        stack = self._ensure()
        leg = self.legs[request.call_id] = _Leg(request)
        trunk = trunk_address(sip["trunk_uri"])
        if transport == "tcp":
            leg.tcp_peer = trunk
        stack.call(self._invite, stack, leg, trunk, sip.get("username"), sip.get("password"))
        log.debug(
            "sip invite",
            call_id=request.call_id,
            to=mask(request.to_number),
            trunk=f"{transport}:{trunk[0]}:{trunk[1]}",
        )
        return request.call_id

    # -- in the sippy thread ------------------------------------------------------------------------
    def _invite(self, stack: SipStack, leg: _Leg, trunk: tuple[str, int], user: str | None, pw: str | None) -> None:
        from sippy.CCEvents import CCEventTry
        from sippy.MsgBody import MsgBody
        from sippy.SipCallId import SipCallId
        from sippy.SipHeader import SipHeader
        from sippy.UA import UA

        r = leg.request
        try:
            ua = UA(
                stack.config,
                event_cb=lambda event, ua: self._sippy_event(leg, event),
                username=user,
                password=pw,
                nh_address=trunk,
                **stack.transport_options("tcp" if leg.tcp_peer is not None else "udp"),
            )
            ua.no_reply_time = NO_REPLY_SECONDS
            leg.ua = ua
            # With an agent to bridge to, the INVITE carries no SDP (RFC 3725 flow I): the callee's 200 OK
            # brings the offer, which goes to the agent; the agent's answer goes back in our ACK.
            sdp = None
            if not r.agent_sip_uri:
                sdp = MsgBody(
                    SDP.format(sess=int(time.time()), ip=self.host, port=40000 + (hash(r.call_id) % 10000) * 2)
                )
            event = CCEventTry((SipCallId(), r.from_number, r.to_number, sdp, None, None))
            event.extra_headers = (
                SipHeader(name="P-Asserted-Identity", bodys=f"<sip:{r.from_number}@{self.host}>"),
                SipHeader(name="X-Dialwave-Call-Id", bodys=r.call_id),
            )
            ua.recvEvent(event)
        except Exception as exc:  # a bad trunk address, a stack error: the attempt fails, the engine goes on
            self._from_thread(leg, "ended", outcome=PROVIDER_ERROR, note=f"SIP INVITE failed: {exc}")

    def _bridge(self, leg: _Leg, offer: Any) -> None:
        """The callee answered (late offer): call the agent's SIP endpoint with the callee's SDP and the
        dial's context as X- headers."""
        from sippy.CCEvents import CCEventTry
        from sippy.SipCallId import SipCallId
        from sippy.SipHeader import SipHeader
        from sippy.UA import UA

        r = leg.request
        assert self._stack is not None and r.agent_sip_uri is not None
        target = r.agent_sip_uri.split(":", 1)[1] if r.agent_sip_uri.lower().startswith("sip:") else r.agent_sip_uri
        user = target.split("@", 1)[0] if "@" in target else "agent"
        ua = UA(
            self._stack.config,
            event_cb=lambda event, ua: self._agent_event(leg, event),
            nh_address=trunk_address(r.agent_sip_uri),
            **self._stack.transport_options(uri_transport(r.agent_sip_uri)),
        )
        ua.no_reply_time = NO_REPLY_SECONDS
        leg.agent_ua = ua
        event = CCEventTry((SipCallId(), r.to_number, user, offer.getCopy() if offer is not None else None, None, None))
        headers = [
            SipHeader(name="X-Dialwave-Call-Id", bodys=r.call_id),
            SipHeader(name="X-Dialwave-Campaign-Id", bodys=r.campaign_id),
            SipHeader(name="X-Dialwave-Lead-Id", bodys=r.lead_id),
            SipHeader(name="X-Dialwave-Attempt", bodys=str(r.attempt)),
            SipHeader(name="X-Dialwave-Agent", bodys=f"{r.agent_id or ''};version={r.agent_version or ''}"),
        ]
        if r.call_token:  # the runtime reads GET /v1/calls/{id}/context with it
            headers.append(SipHeader(name="X-Dialwave-Token", bodys=r.call_token))
        headers += [
            SipHeader(name=f"X-Dialwave-Var-{name}", bodys=quote(str(value), safe=""))
            for name, value in list(r.variables.items())[:20]
        ]
        event.extra_headers = tuple(headers)
        ua.recvEvent(event)

    def _agent_event(self, leg: _Leg, event: Any) -> None:
        from sippy.CCEvents import CCEventConnect, CCEventDisconnect

        name = event.name
        data = event.getData()
        if name == "CCEventConnect" and not leg.bridged:
            leg.bridged = True
            answer = data[2] if data and len(data) > 2 else None
            leg.ua.recvEvent(CCEventConnect((200, "OK", answer)))  # our ACK to the callee carries the answer
            self._from_thread(leg, "agent_connected")  # the agent leg answered: the person hears the agent
        elif name in ("CCEventFail", "CCEventDisconnect"):
            if leg.ua is not None and not leg.ended:
                leg.ua.recvEvent(CCEventDisconnect())
            if leg.bridged:  # the agent ended the conversation
                self._from_thread(leg, "ended", outcome=ANSWERED, sip_code=200)
            else:
                code = data[0] if name == "CCEventFail" and data else None
                note = f"the agent's SIP endpoint did not take the call ({code or 'no reply'})"
                self._from_thread(leg, "ended", outcome=PROVIDER_ERROR, sip_code=code, note=note)

    def _sippy_event(self, leg: _Leg, event: Any) -> None:
        name = event.name
        data = event.getData()
        if name == "CCEventPreConnect" and leg.request.agent_sip_uri and not leg.answered:
            leg.answered = True  # the callee picked up; its SDP offer goes to the agent
            self._from_thread(leg, "answered")
            self._bridge(leg, data[2] if data and len(data) > 2 else None)
            return
        if name in ("CCEventRing", "CCEventPreConnect"):
            code = data[0] if data else None
            if code in (180, 183) and not leg.rang:
                leg.rang = True
                self._from_thread(leg, "ringing")
        elif name == "CCEventConnect":
            leg.answered = True
            self._from_thread(leg, "answered")
            if not leg.request.agent_sip_uri:  # no agent leg to wait for: our media is on the call now
                self._from_thread(leg, "agent_connected")
        elif name == "CCEventFail":
            code = data[0] if data else None
            if leg.hung_up and not leg.answered:
                self._from_thread(leg, "ended", outcome=NO_ANSWER, sip_code=code or 487)
            elif code == 408 and not leg.rang:
                self._from_thread(leg, "ended", outcome=PROVIDER_ERROR, sip_code=None, note="no reply to the INVITE")
            else:
                self._from_thread(leg, "ended", outcome=outcome_for_sip(code), sip_code=code)
        elif name == "CCEventDisconnect":
            if leg.agent_ua is not None:
                from sippy.CCEvents import CCEventDisconnect

                leg.agent_ua.recvEvent(CCEventDisconnect())  # the bridge ends with the callee
            if leg.answered:  # the callee's BYE
                self._from_thread(leg, "ended", outcome=ANSWERED, sip_code=200)
            elif leg.hung_up:
                self._from_thread(leg, "ended", outcome=NO_ANSWER, sip_code=487)
            elif not leg.rang:  # sippy's no-reply timer: nothing ever answered the INVITE
                self._from_thread(leg, "ended", outcome=PROVIDER_ERROR, note="no reply to the INVITE")
            else:
                self._from_thread(leg, "ended", outcome=NO_ANSWER)

    def _tcp_failed(self, peer: tuple[str, int], why: str) -> None:
        """The TCP connection to a trunk could not be opened: its calls that got no answer end now."""
        from sippy.CCEvents import CCEventDisconnect

        for leg in list(self.legs.values()):
            if leg.tcp_peer == peer and not leg.rang and not leg.answered and not leg.ended:
                if leg.ua is not None:
                    leg.ua.recvEvent(CCEventDisconnect())
                self._from_thread(leg, "ended", outcome=PROVIDER_ERROR, note=why)

    def _hangup(self, leg: _Leg) -> None:
        from sippy.CCEvents import CCEventDisconnect

        if leg.ua is not None:
            leg.ua.recvEvent(CCEventDisconnect())
        if leg.agent_ua is not None:
            leg.agent_ua.recvEvent(CCEventDisconnect())
        # sippy reports nothing for our own BYE or CANCEL: the call ends here (the 487 to a CANCEL is ours)
        if leg.answered:
            self._from_thread(leg, "ended", outcome=ANSWERED, sip_code=200)
        else:
            self._from_thread(leg, "ended", outcome=NO_ANSWER, sip_code=487)

    def _from_thread(self, leg: _Leg, kind: str, **values: Any) -> None:
        """The event is timed when the SIP stack sees it, not when the loop gets to it: an answer and its
        agent_connected stay at the same instant however busy the loop is (a gap there is an abandoned call)."""
        assert self._loop is not None
        values["at"] = self.clock.now()
        self._loop.call_soon_threadsafe(self._event, leg, kind, values)

    # -- back in asyncio ----------------------------------------------------------------------------
    def _event(self, leg: _Leg, kind: str, values: dict[str, Any]) -> None:
        if leg.ended:
            return
        now = values.pop("at")
        call_id = leg.request.call_id
        if kind == "ringing":
            self.queue.append(CallEvent(call_id, "ringing", now, call_id))
        elif kind == "answered":
            self.queue.append(CallEvent(call_id, "answered", now, call_id, answered_by="human"))
        elif kind == "agent_connected":
            self.queue.append(CallEvent(call_id, "agent_connected", now, call_id))
        else:
            leg.ended = True
            self.queue.append(
                CallEvent(call_id, "ended", now, call_id, outcome=values["outcome"], sip_code=values.get("sip_code"))
            )
            if values.get("note"):
                log.warning("sip call failed", call_id=call_id, reason=values["note"])
        if self.wake is not None:
            self.wake()

    async def hangup(self, call_id: str) -> None:
        leg = self.legs.get(call_id)
        if leg is None or leg.ended or leg.hung_up or self._stack is None:
            return
        leg.hung_up = True
        self._stack.call(self._hangup, leg)

    def poll(self, now: datetime) -> list[CallEvent]:
        out, self.queue = self.queue, []
        for event in out:
            if event.kind == "ended":
                self.legs.pop(event.call_id, None)  # handed over: a long-running process keeps no ended calls
        return out

    def next_event_at(self) -> datetime | None:
        return None  # events come from the network

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        """A SIP trunk has no call-status query: a call this process does not hold a dialog for is gone
        (after a restart our dialogs are lost with the process)."""
        leg = self.legs.get(call_id)
        if leg is None:
            return None
        state: Literal["ringing", "in_call", "ended"] = (
            "ended" if leg.ended else "in_call" if leg.answered else "ringing"
        )
        return CallStatus(state, call_id, ())

    async def close(self) -> None:
        for leg in list(self.legs.values()):
            if not leg.ended:
                await self.hangup(leg.request.call_id)
