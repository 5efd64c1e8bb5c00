"""The demo `make run` sets up: an organization, an agent, three simulated caller numbers and a started
campaign of a few hundred generated leads, every one in a time zone where it is legal to call them now
(whatever the hour), so the first dial comes as soon as the server is up. Run again, it reuses what it
made; a demo campaign that has finished is followed by a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers

from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.legal import legal_windows, recipient
from dialwave.domain.phone import normalize
from dialwave.domain.resources import AgentConfig, PhoneNumberConfig
from dialwave.domain.schedule import closes_at, is_open
from dialwave.errors import DialwaveError
from dialwave.services import agents as agent_service
from dialwave.services import campaigns as campaign_service
from dialwave.services import lead_import
from dialwave.services import phone_numbers as number_service
from dialwave.services.auth import create_key
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database
from dialwave.store.repositories import agents as agent_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import phone_numbers as number_repo

AGENT = "Demo agent"
CAMPAIGN = "Demo campaign"
CALLERS = ("+12125550100", "+12125550101", "+12125550102")
MODEL = {
    "seed": 42,
    "outcomes": {"answered": 0.45, "busy": 0.15, "no_answer": 0.3, "voicemail": 0.07, "failed": 0.03},
    "ring_seconds": [2, 15],
    "talk_seconds": [20, 150],
    "conversion_rate": 0.35,
}
# (region, time zone, a number of it: {n} is a running 3-digit suffix) across the world's hours.
PLACES = [
    ("US", "America/New_York", "+1212555{n:04d}"),
    ("US", "America/Chicago", "+1312555{n:04d}"),
    ("US", "America/Denver", "+1303555{n:04d}"),
    ("US", "America/Los_Angeles", "+1415555{n:04d}"),
    ("US", "America/Anchorage", "+1907555{n:04d}"),
    ("US", "Pacific/Honolulu", "+1808555{n:04d}"),
    ("BR", "America/Sao_Paulo", "+5511961234{n:03d}"),
    ("GB", "Europe/London", "+447400123{n:03d}"),
    ("DE", "Europe/Berlin", "+4915123456{n:03d}"),
    ("ZA", "Africa/Johannesburg", "+27711234{n:03d}"),
    ("KE", "Africa/Nairobi", "+254712123{n:03d}"),
    ("AE", "Asia/Dubai", "+971501234{n:03d}"),
    ("IN", "Asia/Kolkata", "+918123456{n:03d}"),
    ("SG", "Asia/Singapore", "+6581234{n:03d}"),
    ("PH", "Asia/Manila", "+639051234{n:03d}"),
    ("JP", "Asia/Tokyo", "+819012345{n:03d}"),
    ("AU", "Australia/Sydney", "+61412345{n:03d}"),
    ("NZ", "Pacific/Auckland", "+64211234{n:03d}"),
]
NAMES = ("Ada", "Lin", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Tim", "Margaret", "Dennis", "Frances")


@dataclass
class Demo:
    key: str
    organization: str
    campaign_id: str
    leads: int
    zones: list[str]
    created: bool  # False: the demo campaign was there already


def open_places(now: datetime, hours_left: float = 1.0) -> list[tuple[str, str, str]]:
    """The places where calling is legal now and stays legal for `hours_left` more."""
    found = []
    for region, zone, pattern in PLACES:
        who = recipient(pattern.format(n=100), zone, zone)
        specs = legal_windows(who)
        if all(is_open(spec, now) for spec in specs):
            closing = [closes_at(spec, now) for spec in specs]
            if all(c is None or c >= now + timedelta(hours=hours_left) for c in closing):
                found.append((region, zone, pattern))
    return found


def demo_leads(now: datetime, count: int) -> tuple[list[dict[str, object]], list[str]]:
    """`count` leads with valid numbers in places open now, spread over them."""
    places = open_places(now) or open_places(now, hours_left=0)
    leads: list[dict[str, object]] = []
    per_place = -(-count // max(1, len(places)))
    for region, zone, pattern in places:
        made = 0
        for n in range(100, 1000):
            if made == per_place or len(leads) == count:
                break
            number = pattern.format(n=n)
            try:
                if not phonenumbers.is_valid_number(phonenumbers.parse(number)):
                    continue
                e164 = normalize(number, region)
            except (phonenumbers.NumberParseException, DialwaveError):
                continue
            leads.append(
                {"phone_number": e164, "timezone": zone, "variables": {"name": NAMES[len(leads) % len(NAMES)]}}
            )
            made += 1
    return leads, [zone for _, zone, _ in places]


async def set_up(db: Database, org_name: str, now: datetime, leads: int = 300) -> Demo:
    """The demo for `org_name` (a new API key each time), its campaign started."""
    key = await create_key(db, org_name, ["read", "write"], now, "demo")
    org = key.organization_id
    async with db.read() as conn:
        agent = await agent_repo.agent_named(conn, org, AGENT)
        numbers = await number_repo.numbers_named(conn, org, list(CALLERS))
        campaign = await campaign_repo.latest_named(conn, org, CAMPAIGN)
    if campaign is not None and campaign["status"] not in ("completed", "cancelled"):
        return Demo(key.key, org_name, campaign["id"], int(campaign["count_total"]), [], created=False)
    guard = UrlGuard()
    if agent is None:
        body = AgentConfig(
            name=AGENT,
            system_prompt="You call {{name}} on behalf of {{company}} to book a 20-minute product demo.",
            opening_message="Hi {{name}}, this is Sam from {{company}}. Do you have a minute?",
            required_variables=["name"],
        )
        agent = await agent_service.create_agent(db, org, body, now, guard)
    caller_ids = []
    for number in CALLERS:
        row = numbers.get(number)
        if row is None:
            number_config = PhoneNumberConfig.model_validate(
                {"number": number, "friendly_name": "Demo caller", "simulated": MODEL}
            )
            row = await number_service.create_number(db, org, number_config, now)
        caller_ids.append({"phone_number_id": row["id"]})
    name = CAMPAIGN if campaign is None else f"{CAMPAIGN} {now:%Y-%m-%d %H:%M:%S}"
    config = CampaignConfig.model_validate(
        {
            "name": name,
            "description": "Generated by `dialwave demo`: every lead is where calling is legal right now.",
            "type": "sales",
            "agent_id": agent["id"],
            "caller_ids": caller_ids,
            "schedule": {"windows": [{"start": "00:00", "end": "24:00"}], "recipient_local_time": True},
            "pacing": {"max_concurrency": 10, "attempts_per_second": 2},
            "retry": {
                "on": {
                    "busy": {"max_retries": 1, "interval_minutes": [5]},
                    "no_answer": {"max_retries": 1, "interval_minutes": [10]},
                }
            },
            "dynamic_variables": {"company": "Acme"},
        }
    )
    created, _ = await campaign_service.create_campaign(db, org, config, now, guard)
    rows, zones = demo_leads(now, leads)
    report = await lead_import.add_leads(db, org, created["id"], rows, None, now, 20)
    await campaign_service.act(db, org, created["id"], "start", now)
    return Demo(key.key, org_name, created["id"], report.accepted, zones, created=True)
