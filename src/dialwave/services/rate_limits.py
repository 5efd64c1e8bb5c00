"""Per-key request rate limits: a token bucket per API key, refilled at the organization's
`rate_limit_per_second` (`dialwave orgs rate`, else DIALWAVE_RATE_LIMIT_PER_SECOND), holding twice that
for bursts. A request beyond it is a 429 with Retry-After, before anything else is done for it, so one
client cannot starve the others or the dialer. The buckets live in each API process (with N processes
a key gets up to N times its rate; docs/security.md)."""

from __future__ import annotations

from dataclasses import dataclass

from dialwave.clock import Clock
from dialwave.errors import RateLimited
from dialwave.services.auth import Principal
from dialwave.store.db import Database
from dialwave.store.repositories import orgs as repo

LIMITS_TTL_SECONDS = 10.0  # an organization's changed limit applies within this


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, default_per_second: float, clock: Clock) -> None:
        self.default = default_per_second
        self.clock = clock
        self.buckets: dict[str, _Bucket] = {}
        self.limits: dict[str, tuple[float, float]] = {}  # organization -> (rate, read at)

    async def admit(self, db: Database, who: Principal) -> None:
        """Take one request from the key's bucket, or raise RateLimited (429) saying when to retry."""
        rate = await self._rate(db, who.organization_id)
        if rate <= 0:
            return  # no limit
        now = self.clock.now().timestamp()
        burst = 2 * rate
        bucket = self.buckets.get(who.key_id)
        if bucket is None:
            bucket = self.buckets[who.key_id] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            wait = max(1, int((1 - bucket.tokens) / rate + 0.999))
            raise RateLimited(
                f"over this key's limit of {rate:g} requests a second (bursts of {burst:g}); retry in {wait} s",
                code="RATE_LIMITED",
                headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= 1

    async def _rate(self, db: Database, org_id: str) -> float:
        cached = self.limits.get(org_id)
        now = self.clock.now().timestamp()
        if cached is not None and now - cached[1] < LIMITS_TTL_SECONDS:
            return cached[0]
        async with db.read() as conn:
            own = await repo.rate_limit(conn, org_id)
        rate = self.default if own is None else own
        self.limits[org_id] = (rate, now)
        return rate
