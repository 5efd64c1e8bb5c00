"""How a webhook request leaves the process: a tiny Protocol (tests pass their own), and the httpx one.

The httpx transport connects to the address the SSRF guard checked (never re-resolving the name), sends
the original Host header and TLS server name, follows no redirect, and turns every network failure into
a TransportError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from dialwave.errors import DialwaveError
from dialwave.webhooks.ssrf import Target


class TransportError(DialwaveError):
    """The request got no HTTP answer (refused, reset, timed out, TLS failure)."""


MAX_REPLY = 64 * 1024  # bytes of an answer's body kept (a pre-dial hook's verdict is small)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""


class Transport(Protocol):
    async def post(self, target: Target, headers: dict[str, str], body: bytes, timeout: float) -> Reply:  # noqa: ASYNC109
        """POST; raise TransportError when no answer came."""
        ...

    async def close(self) -> None: ...


class HttpxTransport:
    def __init__(self, max_connections: int = 100) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = httpx.AsyncClient(follow_redirects=False, limits=limits, trust_env=False)

    async def post(self, target: Target, headers: dict[str, str], body: bytes, timeout: float) -> Reply:  # noqa: ASYNC109
        address = f"[{target.address}]" if ":" in target.address else target.address
        default = 443 if target.scheme == "https" else 80
        host = target.host if target.port == default else f"{target.host}:{target.port}"
        if ":" in target.host and not target.host.startswith("["):
            host = f"[{target.host}]" if target.port == default else f"[{target.host}]:{target.port}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with self.client.stream(
                "POST",
                f"{target.scheme}://{address}:{target.port}{target.path}",
                content=body,
                headers={**headers, "host": host},
                timeout=timeout,
                extensions=extensions,
            ) as response:
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) >= MAX_REPLY:
                        break  # the rest is not read (and the connection not reused)
        except httpx.TimeoutException as exc:
            raise TransportError(f"no answer within {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        return Reply(response.status_code, data[:MAX_REPLY])

    async def close(self) -> None:
        await self.client.aclose()
