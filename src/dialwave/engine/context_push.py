"""The call context pushed to the agent runtime: when a call is answered and its agent has a
`context_webhook_url`, the context (the body of `GET /v1/calls/{id}/context`) and the call's token are
POSTed there, signed per Standard Webhooks with the agent's `context_webhook_secret`. The runtime need
not fetch it. The call is live, so the push is tried a few times within seconds, not over days."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import structlog

from dialwave.engine.state import CampaignState, Live
from dialwave.errors import DialwaveError, TransportError, UnsafeUrl
from dialwave.services.calls import context
from dialwave.store.db import Database
from dialwave.webhooks import signing
from dialwave.webhooks.events import iso
from dialwave.webhooks.ssrf import Resolver, SystemResolver
from dialwave.webhooks.transport import AiohttpTransport, Transport, post_checked

log = structlog.get_logger("dialwave.engine.context_push")
WAITS = (1.0, 3.0)  # seconds before the 2nd and 3rd try
TIMEOUT_SECONDS = 5.0


class ContextPusher:
    def __init__(
        self,
        db: Database,
        allow_loopback: bool = False,
        transport: Transport | None = None,
        resolver: Resolver | None = None,
        waits: tuple[float, ...] = WAITS,
    ) -> None:
        self.db = db
        self.allow_loopback = allow_loopback
        self.transport = transport
        self.resolver = resolver or SystemResolver()
        self.waits = waits
        self.tasks: set[asyncio.Task[bool]] = set()

    def answered(self, camp: CampaignState, live: Live, at: datetime) -> None:
        """Start pushing the context of `live` (answered at `at`) when its agent asks for it, with the
        call token its carrier was handed."""
        url, secret = camp.agent.get("context_webhook_url"), camp.agent.get("context_webhook_secret")
        if not url or not secret:
            return
        task = asyncio.ensure_future(self.push(url, secret, live.org_id, live.call_id, live.call_token, at))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def push(self, url: str, secret: str, org_id: str, call_id: str, token: str | None, at: datetime) -> bool:
        """True once the runtime acknowledged it with a 2xx."""
        try:
            data = {**await context(self.db, org_id, call_id), "token": token}
        except DialwaveError as exc:  # the call is gone (deleted with its campaign)
            log.warning("context push skipped", call_id=call_id, reason=str(exc))
            return False
        msg_id = f"ctx_{call_id}"
        envelope = {"id": msg_id, "type": "call.context", "created_at": iso(at), "organization_id": org_id}
        body = json.dumps({**envelope, "data": data}, separators=(",", ":"), default=str).encode()
        error = ""
        for attempt, wait in enumerate((0.0, *self.waits), start=1):
            await asyncio.sleep(wait)
            error = await self._send(url, secret, msg_id, body)
            if not error:
                log.info("context pushed", call_id=call_id, attempt=attempt)
                return True
        log.warning("context push failed", call_id=call_id, error=error, attempts=1 + len(self.waits))
        return False

    async def _send(self, url: str, secret: str, msg_id: str, body: bytes) -> str:
        """'' on a 2xx, else what went wrong. The URL is checked again (SSRF) at every send."""
        if self.transport is None:
            self.transport = AiohttpTransport()
        headers = signing.headers([secret], msg_id, int(time.time()), body)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                reply = await post_checked(
                    self.transport, url, self.resolver, self.allow_loopback, headers, body, TIMEOUT_SECONDS
                )
        except TimeoutError:
            return f"no answer within {TIMEOUT_SECONDS:g} s"
        except (TransportError, UnsafeUrl) as exc:
            return str(exc)
        return "" if 200 <= reply.status < 300 else f"HTTP {reply.status}"

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.transport is not None:
            await self.transport.close()
