"""The pre-dial hook: before each dial, a campaign may ask an outside service (an external DNC or
consent check) whether this number may be called now. The question is sent when the attempt gets its
pace slot, so its latency overlaps the wait for the slot instead of delaying the dial."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from dialwave.domain.campaign_config import PreDialHook
from dialwave.engine.state import CampaignState, Reservation, Verdict
from dialwave.errors import TransportError, UnsafeUrl
from dialwave.webhooks import signing
from dialwave.webhooks.ssrf import Resolver, SystemResolver
from dialwave.webhooks.transport import AiohttpTransport, Transport, post_checked

RETRY_AFTER_ERROR_SECONDS = 300  # fail closed: the lead is asked about again this much later


def _parse(status: int, body: bytes) -> tuple[bool, str | None]:
    if not 200 <= status < 300:
        raise ValueError(f"answered HTTP {status}")
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise ValueError("answered something that is not JSON") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("allow"), bool):
        raise ValueError('answered without a boolean "allow"')
    reason = answer.get("reason")
    return answer["allow"], str(reason)[:200] if reason is not None else None


class PreDialClient:
    def __init__(
        self, transport: Transport | None = None, resolver: Resolver | None = None, allow_loopback: bool = False
    ) -> None:
        self.transport = transport
        self.resolver = resolver or SystemResolver()
        self.allow_loopback = allow_loopback

    def ask(self, camp: CampaignState, r: Reservation) -> asyncio.Task[Verdict] | None:
        """Start asking (None when the campaign has no hook); the dial awaits the answer."""
        hook = camp.config.pre_dial_hook
        if hook is None or hook.url is None:
            return None
        return asyncio.ensure_future(self.verdict(hook, self.request(camp, r), r.call_id))

    @staticmethod
    def request(camp: CampaignState, r: Reservation) -> dict[str, Any]:
        lead = r.lead
        return {
            "campaign_id": camp.id,
            "lead_id": lead.id,
            "call_id": r.call_id,
            "phone_number": lead.phone_number,
            "from_number": r.caller.number,
            "attempt": r.attempt,
            "variables": lead.variables,
        }

    async def verdict(self, hook: PreDialHook, question: dict[str, Any], call_id: str) -> Verdict:
        if self.transport is None:
            self.transport = AiohttpTransport()
        timeout = hook.timeout_ms / 1000
        body = json.dumps(question, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "user-agent": "dialwave-predial/1"}
        if hook.secret:
            headers = signing.headers([hook.secret], f"{call_id}.predial", int(time.time()), body)
        try:
            async with asyncio.timeout(timeout):
                assert hook.url is not None
                reply = await post_checked(
                    self.transport, hook.url, self.resolver, self.allow_loopback, headers, body, timeout
                )
            allow, reason = _parse(reply.status, reply.body)
        except (TimeoutError, TransportError, UnsafeUrl, ValueError) as exc:
            why = f"no answer within {hook.timeout_ms} ms" if isinstance(exc, TimeoutError) else str(exc)
            return Verdict(hook.on_error == "allow", "pre-dial hook unavailable", f"pre-dial hook: {why}")
        return Verdict(allow, reason)

    async def close(self) -> None:
        if self.transport is not None:
            await self.transport.close()
