"""Webhook rules without I/O: the retry schedule, event filters, signatures (checked by the
`standardwebhooks` library, not by our code) and the SSRF guard's address rules."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from dialwave.domain.webhooks import BACKOFF, JITTER, matches, retry_at, total_span
from dialwave.errors import UnsafeUrl
from dialwave.webhooks import signing
from dialwave.webhooks.ssrf import check_url, literal

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_retries_go_from_seconds_to_a_day_and_last_about_three_days() -> None:
    assert BACKOFF[0] == timedelta(seconds=5)
    assert max(BACKOFF) == timedelta(days=1)
    assert timedelta(days=2.5) <= total_span() <= timedelta(days=3.5)
    assert list(BACKOFF) == sorted(BACKOFF)
    rng = random.Random(1)
    for failures, wait in enumerate(BACKOFF, start=1):
        draws = [retry_at(failures, T0, rng) for _ in range(50)]
        assert all(d is not None for d in draws)
        spread = [(d - T0) / wait for d in draws if d is not None]
        assert min(spread) >= 1 - JITTER and max(spread) <= 1 + JITTER
        assert len({round(s, 6) for s in spread}) > 1  # jittered, not fixed
    assert retry_at(len(BACKOFF) + 1, T0) is None  # the delivery has failed


def test_event_filters_take_exact_types_and_families() -> None:
    assert matches(None, "call.ended") and matches([], "lead.failed")
    assert matches(["call.*"], "call.answered")
    assert matches(["call.ended"], "call.ended") and not matches(["call.ended"], "call.started")
    assert not matches(["lead.*"], "campaign.completed")


def test_signatures_verify_with_the_standardwebhooks_library_including_a_rotation() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b'{"id":"evt_1","type":"call.ended","data":{}}'
    now = int(time.time())
    headers = signing.headers([old], "evt_1", now, body)
    assert Webhook(old).verify(body, headers)["id"] == "evt_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body, headers)
    rotating = signing.headers([new, old], "evt_1", now, body)
    assert len(rotating["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(body, rotating) and Webhook(old).verify(body, rotating)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body.replace(b"ended", b"start"), rotating)  # the body is covered


def test_a_rotated_out_secret_signs_until_it_expires() -> None:
    stored = [
        {"secret": "whsec_new", "expires_at": None},
        {"secret": "whsec_old", "expires_at": (T0 + timedelta(hours=24)).isoformat()},
    ]
    assert signing.live_secrets(stored, T0) == ["whsec_new", "whsec_old"]
    assert signing.live_secrets(stored, T0 + timedelta(hours=25)) == ["whsec_new"]


def test_only_whsec_base64_secrets_pass_the_secret_check() -> None:
    assert signing.is_secret(signing.new_secret())
    assert not signing.is_secret("whsec_not base64!")
    assert not signing.is_secret("sk_live_abc")


class FakeResolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.answers:
            raise UnsafeUrl(f"host '{host}' does not resolve")
        return self.answers[host]


REFUSED = {
    "https://127.0.0.1/hook": "loopback",
    "https://10.0.0.1/hook": "private",
    "https://169.254.169.254/latest/meta-data": "metadata",
    "https://[::1]/hook": "loopback",
    "https://2130706433/hook": "loopback",  # decimal 127.0.0.1
    "https://0x7f000001/hook": "loopback",  # hex
    "https://127.1/hook": "loopback",  # short form
    "https://017700000001/hook": "loopback",  # octal
    "https://[::ffff:10.0.0.1]/hook": "private",  # IPv4-mapped
    "https://0.0.0.0/hook": "not a public address",
    "https://192.168.1.10/hook": "private",
    "https://[fd00:ec2::254]/": "metadata",
    "https://[2002:7f00:1::]/": "loopback address .carried inside",  # 6to4 of 127.0.0.1
    "https://[2002:a9fe:a9fe::]/": "metadata address .carried inside",  # 6to4 of 169.254.169.254
    "https://[2002:a00:1::]/": "private address .carried inside",  # 6to4 of 10.0.0.1
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/": "carried inside",  # Teredo, client 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/": "metadata address .carried inside",  # NAT64 of 169.254.169.254
    "https://[::127.0.0.1]/": "loopback address .carried inside",  # IPv4-compatible
    "https://tunnel.example/": "carried inside",  # a name resolving to 6to4 of a private address
    "https://loopy.example/hook": "loopback",  # a name that resolves to loopback
    "https://mixed.example/hook": "private",  # one of its addresses is private
    "http://hooks.example/hook": "https",
    "ftp://hooks.example/hook": "https",
    "https://user:pw@hooks.example/hook": "credentials",
}

RESOLVER = FakeResolver(
    {
        "loopy.example": ["127.0.0.1"],
        "mixed.example": ["93.184.215.14", "10.1.2.3"],
        "hooks.example": ["93.184.215.14"],
        "tunnel.example": ["2002:c0a8:101::1"],
    }
)


@pytest.mark.parametrize(("url", "why"), REFUSED.items())
async def test_unsafe_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        await check_url(url, RESOLVER, allow_loopback=False, must_resolve=True)


async def test_public_https_passes_and_connects_to_the_checked_address() -> None:
    target = await check_url("https://hooks.example:8443/in?x=1", RESOLVER, allow_loopback=False, must_resolve=True)
    assert target is not None
    assert (target.host, target.port, target.address, target.path) == (
        "hooks.example",
        8443,
        "93.184.215.14",
        "/in?x=1",
    )


async def test_loopback_needs_the_flag_and_private_stays_refused_with_it() -> None:
    assert await check_url("http://127.0.0.1:9000/h", RESOLVER, allow_loopback=True, must_resolve=True)
    assert await check_url("http://loopy.example/h", RESOLVER, allow_loopback=True, must_resolve=True)
    for url in ("https://10.0.0.1/", "https://169.254.169.254/", "http://hooks.example/"):
        with pytest.raises(UnsafeUrl):
            await check_url(url, RESOLVER, allow_loopback=True, must_resolve=True)


async def test_a_name_that_does_not_resolve_yet_is_accepted_when_saved_but_not_when_sent() -> None:
    assert await check_url("https://later.example/h", RESOLVER, allow_loopback=False, must_resolve=False) is None
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        await check_url("https://later.example/h", RESOLVER, allow_loopback=False, must_resolve=True)


def test_integer_and_ipv6_literals_read_as_addresses_and_host_names_do_not() -> None:
    assert str(literal("2130706433")) == "127.0.0.1"
    assert str(literal("::1")) == "::1"
    assert literal("hooks.example") is None
