"""The SIP carrier against a real SIP peer: sipp (Debian's sip-tester) as the trunk, on loopback, in
real time (a real peer answers in real time; the engine's own tests use a virtual clock)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dialwave.api.app import create_app
from dialwave.clock import SystemClock
from dialwave.config import Settings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.handle import LocalEngine
from dialwave.engine.runner import RealtimeRunner, ScaledClock
from dialwave.engine.settings import EngineSettings
from dialwave.store.db import Database
from dialwave.store.tables import calls, campaigns, leads
from dialwave.telephony.base import CallEvent, DialRequest
from dialwave.telephony.sip import SipCarrier
from tests.conftest import make_api
from tests.e2e.server import zone_at_noon
from tests.sipp_peer import free_udp_port, sipp_trunk

pytestmark = pytest.mark.asyncio
STACK_PORT = free_udp_port()  # one sippy stack per process


def request(number: str, trunk_port: int, attempt: int = 1, transport: str = "udp") -> DialRequest:
    return DialRequest(
        call_id=f"call_{number[1:]}_{attempt}_{datetime.now(UTC).timestamp()}",
        organization_id="org",
        campaign_id="cmp",
        lead_id="lead",
        attempt=attempt,
        from_number="+12125550100",
        to_number=number,
        caller_id="pn",
        at=datetime.now(UTC),
        ring_timeout_seconds=30,
        machine_detection=False,
        system_prompt="",
        opening_message="Hi",
        variables={"name": "Ada Lovelace"},
        agent_id=None,
        agent_version=None,
        carrier_settings={"sip": {"trunk_uri": f"sip:127.0.0.1:{trunk_port}", "transport": transport}},
    )


async def events_of(carrier: SipCarrier, call_id: str, *, hangup_after: float | None = None) -> list[CallEvent]:
    got: list[CallEvent] = []
    arrived = asyncio.Event()
    carrier.wake = arrived.set
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    hung = False
    start = loop.time()
    while not any(e.kind == "ended" for e in got):
        if hangup_after is not None and not hung and loop.time() - start >= hangup_after:
            await carrier.hangup(call_id)
            hung = True
        remaining = deadline - loop.time()
        assert remaining > 0, f"no end: {got}"
        arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), min(remaining, 0.1 if hangup_after is not None else remaining))
        got.extend(e for e in carrier.poll(datetime.now(UTC)) if e.call_id == call_id)
    return got


@pytest.fixture
def carrier() -> SipCarrier:
    return SipCarrier(SystemClock(), port=STACK_PORT)


@pytest.mark.parametrize(
    ("number", "hangup_after", "kinds", "outcome", "code"),
    [
        (
            "+12125557010",
            None,
            ["ringing", "answered", "agent_connected", "ended"],
            "answered",
            200,
        ),  # the callee's BYE
        ("+12125557022", 1.0, ["ringing", "ended"], "no_answer", 487),  # our CANCEL at the ring timeout
        ("+12125557011", None, ["ended"], "busy", 486),
        ("+12125557014", None, ["ended"], "failed", 603),  # declined
        ("+12125557015", None, ["ended"], "provider_error", 503),
        ("+12125557012", None, ["ringing", "ended"], "no_answer", 480),  # the callee side gives up
        ("+12125557013", None, ["ringing", "ended"], "no_answer", 408),  # ... with 408 after ringing
    ],
)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_each_trunk_reply_maps_to_its_outcome_over_udp_and_tcp(
    carrier: SipCarrier,
    tmp_path: Path,
    number: str,
    hangup_after: float | None,
    kinds: list[str],
    outcome: str,
    code: int,
    transport: str,
) -> None:
    with sipp_trunk(tmp_path, hold_ms=800, ring_ms=1500, transport=transport) as port:
        req = request(number, port, transport=transport)
        assert await carrier.originate(req) == req.call_id
        got = await events_of(carrier, req.call_id, hangup_after=hangup_after)
    assert [e.kind for e in got] == kinds
    assert (got[-1].outcome, got[-1].sip_code) == (outcome, code)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_answered_then_our_hangup_sends_bye(carrier: SipCarrier, tmp_path: Path, transport: str) -> None:
    with sipp_trunk(tmp_path, hold_ms=10_000, transport=transport) as port:
        req = request("+12125557030", port, transport=transport)
        await carrier.originate(req)
        got = await events_of(carrier, req.call_id, hangup_after=1.5)
    assert [e.kind for e in got] == ["ringing", "answered", "agent_connected", "ended"]
    assert (got[-1].outcome, got[-1].sip_code) == ("answered", 200)


async def test_no_reply_at_all_is_a_provider_error(carrier: SipCarrier) -> None:
    req = request("+12125557040", free_udp_port())  # nothing listens there
    await carrier.originate(req)
    got = await events_of(carrier, req.call_id)
    assert [e.kind for e in got] == ["ended"] and got[0].outcome == "provider_error"


async def test_sip_over_tcp_says_so_in_via_and_contact_and_sends_nothing_twice(
    carrier: SipCarrier, tmp_path: Path
) -> None:
    """Over TCP: Via SIP/2.0/TCP, the Request-URI and our Contact with transport=tcp (so in-dialog
    requests come back over TCP), no retransmission (a reliable transport), and the callee's BYE over
    the same connection."""
    log = tmp_path / "tcp.log"
    with sipp_trunk(tmp_path, hold_ms=1000, messages=log, transport="tcp") as port:
        req = request("+12125557080", port, transport="tcp")
        await carrier.originate(req)
        got = await events_of(carrier, req.call_id)
        await asyncio.sleep(0.5)  # let sipp write its message log
    assert [e.kind for e in got] == ["ringing", "answered", "agent_connected", "ended"] and got[
        -1
    ].outcome == "answered"
    text = log.read_text()
    invite = text[text.index("INVITE sip:") :].split("\n\n", 1)[0]
    assert invite.startswith(f"INVITE sip:+12125557080@127.0.0.1:{port};transport=tcp SIP/2.0")
    assert "Via: SIP/2.0/TCP 127.0.0.1:" in invite
    assert ";transport=tcp>" in invite.split("Contact:", 1)[1].split("\n", 1)[0]
    assert text.count("INVITE sip:+12125557080") == 1  # sent once
    assert "SIP/2.0 200 OK" in text[text.index("BYE sip:") :]  # we answered the callee's BYE


async def test_a_tcp_trunk_that_refuses_the_connection_fails_the_call_at_once(carrier: SipCarrier) -> None:
    started = asyncio.get_running_loop().time()
    req = request("+12125557090", free_udp_port(), transport="tcp")  # nothing listens there
    await carrier.originate(req)
    got = await events_of(carrier, req.call_id)
    assert [e.kind for e in got] == ["ended"] and got[0].outcome == "provider_error"
    assert asyncio.get_running_loop().time() - started < 2  # not the 8 s no-reply timer


class RecordingEngine(Engine):
    """The engine, counting the ticks that failed (the runner logs them, and retries a second later)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: Counter[str] = Counter()

    def failed(self, exc: BaseException) -> None:
        self.failures[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
        super().failed(exc)


def record_sippy_exceptions(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """sippy prints an exception in its thread (a callback of ours, a message it could not handle) and
    goes on: counted here, by kind."""
    import sippy.Core.EventDispatcher
    import sippy.Network_server
    import sippy.SipTransactionManager

    seen: Counter[str] = Counter()
    original = sippy.Core.EventDispatcher.dump_exception

    def dump(msg: str, *args: Any, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        seen[f"{msg}: {type(exc).__name__}: {str(exc)[:100]}"] += 1
        original(msg, *args, **kwargs)

    for module in (sippy.Core.EventDispatcher, sippy.Network_server, sippy.SipTransactionManager):
        monkeypatch.setattr(module, "dump_exception", dump)
    return seen


def sipp_errors(tmp_path: Path) -> Counter[str]:
    """What sipp's error log says, by kind (call ids and times left out; the receive timeouts that are
    the scenario's own ring and hold timers left out too)."""
    seen: Counter[str] = Counter()
    for log in tmp_path.glob("uas_*_err.log"):
        for line in log.read_text(errors="replace").splitlines():
            what = re.sub(r"^[0-9-]+\s+[0-9:.]+\s+[0-9.]+:\s*", "", line)
            what = re.sub(r"Call-I[dD]: \S+,?\s*", "", what)
            if what and "jumping to label" not in what and not what.startswith("The following events"):
                seen[what[:120]] += 1
    return seen


def hms(at: datetime | None) -> str | None:
    return at.strftime("%H:%M:%S.%f")[:-3] if at is not None else None


async def stuck_campaign(db: Database, engine: RecordingEngine, carrier: SipCarrier, campaign_id: str) -> str:
    """Why a campaign has not completed, on one line: its counters, its leads by (status, attempts), a
    few leads not final, the calls with no outcome, the engine's view of the campaign and its calls in
    flight, the carrier's legs."""
    async with db.read() as conn:
        row = (await conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id))).mappings().one()
        of_campaign = leads.c.campaign_id == campaign_id
        by_status = (
            await conn.execute(
                sa.select(leads.c.status, leads.c.attempts, sa.func.count())
                .where(of_campaign)
                .group_by(leads.c.status, leads.c.attempts)
            )
        ).all()
        pending = (
            await conn.execute(
                sa.select(leads.c.phone_number, leads.c.status, leads.c.attempts, leads.c.next_attempt_at)
                .where(of_campaign, leads.c.status.notin_(("completed", "failed")))
                .limit(3)
            )
        ).all()
        open_calls = (
            await conn.execute(
                sa.select(calls.c.id, calls.c.to_number, calls.c.status, calls.c.attempt, calls.c.started_at)
                .where(calls.c.campaign_id == campaign_id, calls.c.outcome.is_(None))
                .limit(5)
            )
        ).all()
    counts = {k[6:]: row[k] for k in row if k.startswith("count_") and row[k]}
    camp = engine.campaigns.get(campaign_id)
    view = (
        "gone"
        if camp is None
        else f"{camp.status} in_flight={camp.in_flight} slotted={camp.slotted} waiting={len(camp.waiting)} "
        f"held={camp.held} due_known={camp.due_known} next_due={hms(camp.next_due)} stale={camp.stale}"
    )
    live = [
        (c.call_id[-8:], c.to_number[-4:], c.attempt, hms(c.answered_at), c.hung_up) for c in engine.calls.live.values()
    ]
    legs = [(k[-8:], v.rang, v.answered, v.hung_up, v.ended) for k, v in carrier.legs.items()]
    parts = [
        f"engine now={hms(engine.now)}, campaign {row['status']} {counts}",
        f"leads (status, attempts, n)={[tuple(r) for r in by_status]}",
        f"not final={[(r[0][-4:], r[1], r[2], hms(r[3])) for r in pending]}",
        f"calls without outcome={[(r[0][-8:], r[1][-4:], r[2], r[3], hms(r[4])) for r in open_calls]}",
        f"engine: {view}, buffered writes={len(engine.writes)}, finished={engine.writes.finished}, "
        f"next wake={hms(engine.next_wake())}",
        f"engine live ({len(live)})={live[:5]}",
        f"carrier legs ({len(legs)})={legs[:5]}, queued events={len(carrier.queue)}",
        f"failed ticks={dict(engine.failures)}",
    ]
    return " | ".join(parts)


async def test_a_200_lead_campaign_through_sipp_ends_with_exact_counts_and_retries(
    db_url: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real engine (a scaled clock: 20 engine seconds per real second, so 1-minute retries take 3 s)
    dials 200 leads through sipp: the counts and the retries come out exactly as configured."""
    clock = ScaledClock(20)
    carrier = SipCarrier(clock, port=STACK_PORT)
    engine = RecordingEngine(db, {"sip": carrier}, EngineSettings(breaker_failures=0))
    sippy_errors = record_sippy_exceptions(monkeypatch)
    runner = RealtimeRunner(engine, clock)
    carrier.wake = runner.nudge
    app = create_app(Settings(database_url=db_url), db=db, clock=clock, engine=LocalEngine(engine, runner.nudge))
    zone = zone_at_noon()
    with sipp_trunk(tmp_path, hold_ms=1000, ring_ms=1000) as port:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialwave.test") as http:
            api = await make_api(http, db, "sip-campaign")
            number = {"number": "+12125550100", "provider": "sip", "sip": {"trunk_uri": f"sip:127.0.0.1:{port}"}}
            pn = await api.ok("post", "/v1/phone-numbers", 201, json=number)
            agent = await api.ok("post", "/v1/agents", 201, json={"name": "a", "opening_message": "Hi"})
            once = {"enabled": True, "max_retries": 1, "interval_minutes": [1]}
            camp = await api.ok(
                "post",
                "/v1/campaigns",
                201,
                json={
                    "name": "sip",
                    "agent_id": agent["id"],
                    "caller_ids": [{"phone_number_id": pn["id"]}],
                    "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                    "pacing": {"max_concurrency": 40, "attempts_per_second": 40},
                    "retry": {"max_attempts": 3, "on": {"busy": once, "no_answer": once, "provider_error": once}},
                    "ring_timeout_seconds": 120,
                },
            )
            digits = [0, 1, 2, 4, 5]  # answer, busy, no answer (480), decline (603), 503
            leads = [{"phone_number": f"+1212556{i:03d}{digits[i % 5]}", "timezone": zone} for i in range(200)]
            assert (await api.ok("post", f"/v1/campaigns/{camp['id']}/leads", json={"leads": leads}))["accepted"] == 200
            await api.ok("post", f"/v1/campaigns/{camp['id']}/start")
            task = asyncio.create_task(runner.run())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90  # ~8 s normally; a slow CI machine gets plenty
            try:
                while True:
                    state = await api.ok("get", f"/v1/campaigns/{camp['id']}")
                    if state["status"] == "completed" or loop.time() > deadline or task.done():
                        break
                    await asyncio.sleep(0.1)
                why = "" if state["status"] == "completed" else await stuck_campaign(db, engine, carrier, camp["id"])
            finally:
                runner.stop()
                await task
                await engine.close()
    assert state["status"] == "completed", (
        f"{why} | sippy exceptions={dict(sippy_errors)} | sipp={dict(sipp_errors(tmp_path))}"
    )
    assert state["counts"]["completed"] == 40 and state["counts"]["failed"] == 160
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(calls.c.to_number, calls.c.outcome, calls.c.attempt))).all()
    by_digit: dict[str, Counter[tuple[str | None, int]]] = {}
    for to, outcome, attempt in rows:
        by_digit.setdefault(to[-1], Counter())[(outcome, attempt)] += 1
    assert by_digit["0"] == Counter({("answered", 1): 40})
    assert by_digit["1"] == Counter({("busy", 1): 40, ("busy", 2): 40})
    assert by_digit["2"] == Counter({("no_answer", 1): 40, ("no_answer", 2): 40})
    assert by_digit["4"] == Counter({("failed", 1): 40})  # declined: failed is not retried by default
    assert by_digit["5"] == Counter({("provider_error", 1): 40, ("provider_error", 2): 40})


async def test_the_agent_bridge_connects_the_callee_to_the_agent_with_the_call_context(
    carrier: SipCarrier, tmp_path: Path
) -> None:
    """Third-party call control (RFC 3725, flow I) with sipp as both the callee's trunk and the agent's
    SIP endpoint: the callee's SDP offer reaches the agent, the agent's answer reaches the callee, and the
    agent gets the call's context as X- headers."""
    trunk_media, agent_media = free_udp_port(), free_udp_port()
    trunk_log, agent_log = tmp_path / "trunk.log", tmp_path / "agent.log"
    with (
        sipp_trunk(tmp_path, hold_ms=2000, messages=trunk_log, media=trunk_media) as trunk,
        sipp_trunk(tmp_path, hold_ms=60_000, messages=agent_log, media=agent_media) as agent,
    ):
        req = replace(request("+12125557050", trunk), agent_sip_uri=f"sip:agent0@127.0.0.1:{agent}")
        await carrier.originate(req)
        got = await events_of(carrier, req.call_id)
        await asyncio.sleep(0.5)  # let sipp write its message log
    assert [e.kind for e in got] == ["ringing", "answered", "agent_connected", "ended"]  # agent leg answered
    assert got[1].at <= got[2].at  # abandonment is measured from the callee's answer to the agent leg's
    assert (got[-1].outcome, got[-1].sip_code) == ("answered", 200)  # the callee hung up after 2 s
    to_agent = agent_log.read_text()
    invite = to_agent[to_agent.index("INVITE sip:agent0@") :]
    assert f"m=audio {trunk_media} " in invite  # the callee's offer
    headers = invite.split("\n\n", 1)[0].lower()  # header names are case-insensitive (sippy normalises them)
    assert f"x-dialwave-call-id: {req.call_id}" in headers
    assert "x-dialwave-var-name: ada%20lovelace" in headers
    assert "BYE sip:" in to_agent[to_agent.index("INVITE sip:agent0@") :]  # the agent leg ended with the callee's
    to_trunk = trunk_log.read_text()
    ack = to_trunk[to_trunk.index("ACK sip:") :]
    assert f"m=audio {agent_media} " in ack.split("BYE", 1)[0]  # the agent's answer, in our ACK


@pytest.mark.parametrize(
    ("password", "outcome", "code"), [("s3cret", "answered", 200), ("wrong", "provider_error", 403)]
)
async def test_a_trunk_that_wants_digest_authentication(
    carrier: SipCarrier, tmp_path: Path, password: str, outcome: str, code: int
) -> None:
    with sipp_trunk(tmp_path, hold_ms=500, scenario_file="uas_auth.xml") as port:
        base = request("+12125557060", port)
        sip = {"trunk_uri": f"sip:127.0.0.1:{port}", "username": "dialwave", "password": password}
        req = replace(base, carrier_settings={"sip": sip})
        await carrier.originate(req)
        got = await events_of(carrier, req.call_id)
    assert (got[-1].outcome, got[-1].sip_code) == (outcome, code)
