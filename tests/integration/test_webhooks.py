"""Webhooks end to end, on SQLite and PostgreSQL: the engine and the API write events, the delivery
worker (virtual clock) sends them over real HTTP to receivers that verify them with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme

from dialwave.clock import VirtualClock
from dialwave.domain.webhooks import EVENT_TYPES
from dialwave.store.db import Database
from dialwave.store.repositories import webhooks as repo
from dialwave.store.tables import events, webhook_deliveries
from dialwave.webhooks.signing import new_secret
from dialwave.webhooks.transport import AiohttpTransport
from dialwave.webhooks.worker import DeliverySettings, DeliveryWorker
from tests.receiver import Receiver, free_port, serving
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def worker(db: Database, clock: VirtualClock, **over: Any) -> DeliveryWorker:
    return DeliveryWorker(db, AiohttpTransport(), clock, DeliverySettings(allow_loopback=True, timeout=5, **over))


async def drain(w: DeliveryWorker, clock: VirtualClock, until: datetime | None = None) -> None:
    """Run delivery rounds, moving the virtual clock to each next due time (not past `until`)."""
    for _ in range(10_000):
        if await w.run_once():
            continue
        due = await w.next_due()
        if due is None or (until is not None and due > until):
            if until is not None and until > clock.now():
                clock.set(until)
            return
        if due > clock.now():
            clock.set(due)
    raise AssertionError("deliveries never settled")


async def outbox(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(events).order_by(events.c.seq))).mappings().all()
    return [json.loads(r["payload"]) for r in rows]


async def deliveries(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(sa.select(webhook_deliveries))).mappings()]


async def endpoint(rig: Rig, url: str, **extra: Any) -> dict[str, Any]:
    return dict(await rig.api.ok("post", "/v1/webhook-endpoints", 201, json={"url": url, **extra}))


async def test_every_event_type_arrives_signed_with_campaign_metadata_and_in_order(db_url: str, db: Database) -> None:
    org_rx, camp_rx = Receiver(), Receiver()
    async with (
        make_rig(db_url, db, START, model(seed=3, outcomes={"answered": 0.6, "busy": 0.4}), allow_loopback=True) as rig,
        serving(org_rx, free_port()) as org_url,
        serving(camp_rx, free_port()) as camp_url,
    ):
        ep = await endpoint(rig, org_url)
        assert ep["secret"].startswith("whsec_")
        org_rx.secrets = [ep["secret"]]
        numbers = [f"+1212555{2000 + i:04d}" for i in range(12)]
        cid = await rig.campaign(
            numbers,
            start=False,
            webhook={"url": camp_url, "metadata": {"crm_list": "trials"}},
            dnc={"auto_add_on": ["completed"]},
            retry={"max_attempts": 2, "on": {"busy": {"enabled": True, "max_retries": 1, "interval_minutes": [10]}}},
        )
        camp = await rig.get(cid)
        assert camp["webhook"]["endpoint_id"] and "secret" not in camp["webhook"]  # shown once, at creation
        created = await rig.api.ok("get", f"/v1/webhook-endpoints/{camp['webhook']['endpoint_id']}")
        assert created["campaign_id"] == cid and "secret" not in created
        rotated = await rig.api.ok("post", f"/v1/webhook-endpoints/{created['id']}/rotate-secret")
        camp_rx.secrets = [rotated["secret"]]
        await rig.api.ok("post", f"/v1/campaigns/{cid}/start")
        await rig.until_idle()
        await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125559999"], "reason": "asked by email"})
        talked = next(c for c in await rig.calls(cid) if c["answered_at"])
        result = {"disposition": "booked", "summary": "Booked a demo.", "transcript": "Agent: Hi", "data": {"n": 1}}
        await rig.api.ok("post", f"/v1/calls/{talked['id']}/result", json=result)
        await drain(worker(db, rig.clock), rig.clock)

        sent = await outbox(db)
        calls = await rig.calls(cid)
        kinds = Counter(e["type"] for e in sent)
        assert set(kinds) == set(EVENT_TYPES), kinds
        [posted] = [e for e in camp_rx.processed.values() if e["type"] == "call.result"]
        assert posted["data"]["call_id"] == talked["id"] and posted["data"]["disposition"] == "booked"
        assert posted["data"]["data"] == {"n": 1} and posted["data"]["has_transcript"] is True
        assert "transcript" not in posted["data"] and posted["data"]["lead_id"] == talked["lead_id"]
        assert kinds["call.started"] == kinds["call.ended"] == len(calls)
        assert kinds["call.answered"] == sum(1 for c in calls if c["answered_at"])
        assert kinds["lead.completed"] + kinds["lead.failed"] == len(numbers)
        assert kinds["lead.dnc_added"] == kinds["lead.completed"] + 1  # auto-added on completion, + the API's
        # Every event reached the organization endpoint once, verified by standardwebhooks.
        assert set(org_rx.processed) == {e["id"] for e in sent} and not org_rx.rejected
        assert Counter(org_rx.requests) == Counter(e["id"] for e in sent)
        # The campaign endpoint got its campaign's events, each with the campaign's metadata.
        mine = [e for e in sent if e["data"].get("campaign_id") == cid]
        assert set(camp_rx.processed) == {e["id"] for e in mine}
        assert all(e["metadata"] == {"crm_list": "trials"} for e in camp_rx.processed.values())
        by_api = [
            e for e in org_rx.processed.values() if e["type"] == "lead.dnc_added" and e["data"]["source"] == "api"
        ]
        assert len(by_api) == 1 and by_api[0]["metadata"] == {}
        # The order per campaign is reconstructible from the timestamps.
        ordered = sorted(camp_rx.processed.values(), key=lambda e: (e["created_at"], e["id"]))
        assert [e["type"] for e in ordered[:2]] == ["import.completed", "campaign.status_changed"]
        assert ordered[1]["data"]["to"] == "active"
        assert ordered[-1]["type"] == "call.result"  # posted after the campaign completed
        assert [e["type"] for e in ordered[-3:-1]] == ["campaign.status_changed", "campaign.completed"]
        per_call: dict[str, list[str]] = {}
        for e in ordered:
            if e["type"].startswith("call.") and e["type"] != "call.result":
                per_call.setdefault(e["data"]["call_id"], []).append(e["type"])
        for seq in per_call.values():
            assert seq in (["call.started", "call.ended"], ["call.started", "call.answered", "call.ended"]), seq
        ended = {e["data"]["call_id"]: e["data"] for e in sent if e["type"] == "call.ended"}
        for call in calls:
            data = ended[call["id"]]
            assert (data["outcome"], data["sip_code"], data["conversion"]) == (
                call["outcome"],
                call["sip_code"],
                call["conversion"],
            )
            assert data["duration_seconds"] == pytest.approx(call["duration_seconds"])
        done = [e for e in sent if e["type"] == "campaign.completed"]
        assert len(done) == 1 and done[0]["data"]["counts"]["total"] == len(numbers)


async def test_a_receiver_down_for_hours_then_up_gets_every_event_once(db_url: str, db: Database) -> None:
    rx = Receiver()
    port = free_port()
    async with make_rig(db_url, db, START, model(seed=5), allow_loopback=True) as rig:
        ep = await endpoint(rig, f"http://127.0.0.1:{port}/hook", event_types=["call.*", "campaign.*"])
        rx.secrets = [ep["secret"]]
        cid = await rig.campaign([f"+1212555{3000 + i:04d}" for i in range(6)])
        await rig.until_idle()
        w = worker(db, rig.clock)
        down_until = rig.clock.now() + timedelta(hours=3)
        await drain(w, rig.clock, until=down_until)  # nobody listens: every send is refused
        pending = await deliveries(db)
        assert pending and all(d["status"] == "pending" and d["attempts"] >= 6 for d in pending)
        log = await rig.api.ok("get", f"/v1/webhook-endpoints/{ep['id']}/deliveries")
        first = log["data"][0]
        assert first["attempt_log"][0]["status_code"] is None and "Connect" in first["attempt_log"][0]["error"]
        gaps = [
            datetime.fromisoformat(b["at"]) - datetime.fromisoformat(a["at"])
            for a, b in zip(first["attempt_log"], first["attempt_log"][1:], strict=False)
        ]
        assert gaps == sorted(gaps) and gaps[0] < timedelta(seconds=10)  # backing off
        async with serving(rx, port):
            await drain(w, rig.clock)
        sent = [e for e in await outbox(db) if e["type"].split(".")[0] in ("call", "campaign")]
        assert set(rx.processed) == {e["id"] for e in sent}
        assert all(d["status"] == "succeeded" for d in await deliveries(db))
        assert not rx.rejected
        assert any(e["type"] == "campaign.completed" and e["data"]["campaign_id"] == cid for e in sent)


async def test_a_worker_that_dies_between_send_and_record_causes_a_resend_not_a_loss(db_url: str, db: Database) -> None:
    rx = Receiver()
    async with make_rig(db_url, db, START, model(seed=9), allow_loopback=True) as rig, serving(rx, free_port()) as url:
        ep = await endpoint(rig, url, event_types=["campaign.status_changed"])
        rx.secrets = [ep["secret"]]
        await rig.campaign(["+12125554000"])
        dying = worker(db, rig.clock, lease=timedelta(seconds=60))
        await dying.fan_out(rig.clock.now())
        claimed = await dying.claim(rig.clock.now())
        assert len(claimed) == 1
        await dying.send(claimed)  # ... and the process dies before it records the result
        assert len(rx.requests) == 1
        survivor = worker(db, rig.clock, lease=timedelta(seconds=60))
        assert await survivor.run_once() == 0  # still leased by the dead worker
        rig.clock.advance(timedelta(seconds=61))
        assert await survivor.run_once() == 1
        assert rx.requests == [rx.requests[0]] * 2  # the same webhook-id, sent again
        assert len(rx.processed) == 1  # and processed once by the idempotent receiver
        [row] = await deliveries(db)
        assert row["status"] == "succeeded" and row["attempts"] == 2


async def test_410_disables_the_endpoint_and_a_delivery_can_be_resent(db_url: str, db: Database) -> None:
    rx = Receiver(status=410)
    async with make_rig(db_url, db, START, model(seed=2), allow_loopback=True) as rig, serving(rx, free_port()) as url:
        ep = await endpoint(rig, url, event_types=["campaign.status_changed"])
        rx.secrets = [ep["secret"]]
        await rig.campaign(["+12125554100"], start=False)
        cid = (await rig.api.ok("get", "/v1/campaigns"))["data"][0]["id"]
        await rig.api.ok("post", f"/v1/campaigns/{cid}/start")
        w = worker(db, rig.clock)
        await drain(w, rig.clock)
        state = await rig.api.ok("get", f"/v1/webhook-endpoints/{ep['id']}")
        assert state["enabled"] is False and "410" in state["disabled_reason"]
        [failed] = (await rig.api.ok("get", f"/v1/webhook-endpoints/{ep['id']}/deliveries?status=failed"))["data"]
        assert failed["attempts"] == 1 and failed["last_status_code"] == 410
        retry = f"/v1/webhook-endpoints/{ep['id']}/deliveries/{failed['id']}/retry"
        refused = await rig.api.post(retry)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "ENDPOINT_DISABLED"
        await rig.api.ok("patch", f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": True})
        rx.status = 200
        again = await rig.api.ok("post", retry)
        assert again["status"] == "pending"
        await drain(w, rig.clock)
        done = (await rig.api.ok("get", f"/v1/webhook-endpoints/{ep['id']}/deliveries"))["data"]
        assert [d["status"] for d in done] == ["succeeded"] and done[0]["attempts"] == 2
        assert rx.requests == [failed["event_id"]] * 2 and list(rx.processed) == [failed["event_id"]]


async def test_a_rotated_secret_and_the_old_one_both_verify_until_the_old_expires(db_url: str, db: Database) -> None:
    old_rx, new_rx = Receiver(), Receiver()
    async with (
        make_rig(db_url, db, START, model(seed=2), allow_loopback=True) as rig,
        serving(old_rx, free_port()) as old_url,
        serving(new_rx, free_port()) as new_url,
    ):
        a = await endpoint(rig, old_url, event_types=["lead.dnc_added"])
        b = await endpoint(rig, new_url, event_types=["lead.dnc_added"], secret=a["secret"])
        old_rx.secrets = [a["secret"]]
        rotated = await rig.api.ok("post", f"/v1/webhook-endpoints/{b['id']}/rotate-secret?keep_old_seconds=3600")
        new_rx.secrets = [rotated["secret"]]
        await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125554200"]})
        w = worker(db, rig.clock)
        await drain(w, rig.clock)
        assert len(new_rx.processed) == 1 and not new_rx.rejected
        assert len(new_rx.headers[0]["webhook-signature"].split(" ")) == 2  # new and old
        from standardwebhooks.webhooks import Webhook

        envelope = next(iter(new_rx.processed.values()))
        body = json.dumps(envelope, separators=(",", ":"))
        Webhook(a["secret"]).verify(body, new_rx.headers[0])  # the old secret still verifies
        rig.clock.advance(timedelta(hours=2))
        await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125554201"]})
        await drain(w, rig.clock)
        assert len(new_rx.headers[-1]["webhook-signature"].split(" ")) == 1  # the old one expired


BAD_URLS = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://localhost/hook",  # a name resolving to loopback
    "https://2130706433/hook",  # 127.0.0.1 in decimal
    "https://0x7f000001/hook",
    "http://hooks.example.com/hook",
]


@pytest.mark.parametrize("url", BAD_URLS)
async def test_unsafe_urls_are_refused_when_saved(db_url: str, db: Database, url: str) -> None:
    async with make_rig(db_url, db, START) as rig:
        response = await rig.api.post("/v1/webhook-endpoints", json={"url": url})
        assert response.status_code == 422, response.text
        assert "url" in response.json()["error"]["fields"]
        response = await rig.api.post("/v1/campaigns", json={"name": "x", "webhook": {"url": url}})
        assert response.status_code == 422 and "webhook.url" in response.json()["error"]["fields"]
        assert (await rig.api.ok("get", "/v1/webhook-endpoints"))["data"] == []


async def test_a_name_that_resolves_to_loopback_at_send_time_is_refused(db_url: str, db: Database) -> None:
    class Rebinding:
        async def resolve(self, host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

    async with make_rig(db_url, db, START) as rig:
        ep = await endpoint(rig, "https://hooks.example.com/in", event_types=["lead.dnc_added"])
        await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125554300"]})
        w = DeliveryWorker(db, AiohttpTransport(), rig.clock, DeliverySettings(), resolver=Rebinding())
        assert await w.run_once() == 1
        [d] = (await rig.api.ok("get", f"/v1/webhook-endpoints/{ep['id']}/deliveries"))["data"]
        assert d["status"] == "pending" and d["last_status_code"] is None
        assert d["last_error"] == "refused: host 'hooks.example.com' resolves to 127.0.0.1, which is a loopback address"


async def test_an_organization_without_endpoints_gets_no_events_queued(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=1)) as rig:
        await rig.campaign(["+12125554400"])
        await rig.until_idle()
        assert await outbox(db) == []


async def test_unsafe_urls_saved_earlier_are_refused_at_send_time(db_url: str, db: Database) -> None:
    """Endpoints saved while DIALWAVE_WEBHOOK_ALLOW_LOOPBACK was set (or before a policy change) are
    checked again at every send: nothing is sent, each attempt records why."""
    async with make_rig(db_url, db, START) as rig:
        now = rig.clock.now()
        async with db.write() as conn:
            for i, url in enumerate(BAD_URLS):
                await repo.insert_endpoint(
                    conn,
                    {
                        "id": f"whe_bad{i}",
                        "organization_id": rig.api.org_id,
                        "url": url,
                        "secrets": [{"secret": new_secret(), "expires_at": None}],
                        "enabled": True,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125554500"]})
        w = DeliveryWorker(db, AiohttpTransport(), rig.clock, DeliverySettings())
        assert await w.run_once() == len(BAD_URLS)
        rows = {d["endpoint_id"]: d for d in await deliveries(db)}
        for i, url in enumerate(BAD_URLS):
            error = rows[f"whe_bad{i}"]["last_error"]
            assert error.startswith("refused: "), (url, error)
            assert rows[f"whe_bad{i}"]["last_status_code"] is None
        assert "resolves to" in rows["whe_bad4"]["last_error"] and "loopback" in rows["whe_bad4"]["last_error"]
        assert "must be https://" in rows["whe_bad7"]["last_error"]


async def test_https_connects_to_the_checked_address_and_verifies_the_names_certificate(
    db_url: str, db: Database, tmp_path: Path
) -> None:
    """TLS to the address the guard checked, with the URL's name as server name: a certificate for
    that name passes, a certificate for another name fails (and is retried, never skipped)."""
    ca = trustme.CA()
    trust = ssl.create_default_context()
    ca.configure_trust(trust)

    class Pinned:
        async def resolve(self, host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

    for name, good in (("hooks.test", True), ("elsewhere.test", False)):
        pem = tmp_path / f"{name}.pem"
        ca.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(str(pem))
        rx = Receiver()
        port = free_port()
        async with make_rig(db_url, db, START, org=f"tls-{name}") as rig, serving(rx, port, str(pem), str(pem)):
            ep = await endpoint(rig, f"https://hooks.test:{port}/hook", event_types=["lead.dnc_added"])
            rx.secrets = [ep["secret"]]
            await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125554600"]})
            options = DeliverySettings(allow_loopback=True)
            w = DeliveryWorker(db, AiohttpTransport(ssl_context=trust), rig.clock, options, resolver=Pinned())
            assert await w.run_once() == 1
            await w.transport.close()
            [d] = (await rig.api.ok("get", f"/v1/webhook-endpoints/{ep['id']}/deliveries"))["data"]
            if good:
                assert d["status"] == "succeeded" and len(rx.processed) == 1
                assert rx.headers[0]["host"] == f"hooks.test:{port}"
            else:
                assert d["status"] == "pending" and not rx.requests
                assert "certificate" in d["last_error"].lower() or "hostname" in d["last_error"].lower()


async def test_a_campaigns_webhook_endpoint_follows_its_webhook_url(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START) as rig:
        created = await rig.api.ok(
            "post", "/v1/campaigns", 201, json={"name": "w", "webhook": {"url": "https://a.example.com/h"}}
        )
        hook = created["webhook"]
        assert hook["secret"].startswith("whsec_") and hook["endpoint_id"]
        patched = await rig.api.ok(
            "patch", f"/v1/campaigns/{created['id']}", json={"webhook": {"url": "https://b.example.com/h"}}
        )
        assert patched["webhook"]["endpoint_id"] == hook["endpoint_id"] and "secret" not in patched["webhook"]
        endpoint = await rig.api.ok("get", f"/v1/webhook-endpoints/{hook['endpoint_id']}")
        assert endpoint["url"] == "https://b.example.com/h" and endpoint["campaign_id"] == created["id"]
        refused = await rig.api.patch(
            f"/v1/webhook-endpoints/{hook['endpoint_id']}", json={"url": "https://c.example.com"}
        )
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "CAMPAIGN_ENDPOINT"
        assert (await rig.api.delete(f"/v1/webhook-endpoints/{hook['endpoint_id']}")).status_code == 409
        cleared = await rig.api.ok("patch", f"/v1/campaigns/{created['id']}", json={"webhook": {"url": None}})
        assert cleared["webhook"]["endpoint_id"] is None
        assert (await rig.api.get(f"/v1/webhook-endpoints/{hook['endpoint_id']}")).status_code == 404


async def test_two_delivery_workers_share_the_work_without_sending_twice(db_url: str, db: Database) -> None:
    rx = Receiver()
    async with make_rig(db_url, db, START, allow_loopback=True) as rig, serving(rx, free_port()) as url:
        ep = await endpoint(rig, url, event_types=["lead.dnc_added"])
        rx.secrets = [ep["secret"]]
        numbers = [f"+1212555{8000 + i:04d}" for i in range(300)]
        await rig.api.ok("post", "/v1/dnc", json={"numbers": numbers})
        first, second = worker(db, rig.clock, batch=40), worker(db, rig.clock, batch=40)
        await first.fan_out(rig.clock.now())
        for _ in range(50):
            sent = await asyncio.gather(first.run_once(), second.run_once())
            if not any(sent):
                break
        assert len(rx.requests) == 300 and len(set(rx.requests)) == 300  # each event sent once
        assert first.stats["sent"] > 0 and second.stats["sent"] > 0  # both took a share
        assert all(d["status"] == "succeeded" for d in await deliveries(db))
