"""How a webhook request leaves the process: a tiny Protocol (tests may pass their own), and the aiohttp one.

The transport connects to the address the SSRF guard checked (never re-resolving the name), sends the
original Host header and TLS server name (certificates are verified against that name), follows no
redirect, reads at most 64 KiB of an answer, and turns every network failure into a TransportError."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dialwave.errors import TransportError
from dialwave.webhooks.ssrf import Resolver, Target, check_url

if TYPE_CHECKING:
    import aiohttp

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


async def post_checked(
    transport: Transport,
    url: str,
    resolver: Resolver,
    allow_loopback: bool,
    headers: dict[str, str],
    body: bytes,
    timeout: float,  # noqa: ASYNC109
) -> Reply:
    """POST to `url` after the SSRF guard checks it again, resolving the name now: the request goes to
    the checked address (DNS rebinding cannot move it). Raises UnsafeUrl or TransportError."""
    target = await check_url(url, resolver, allow_loopback, must_resolve=True)
    assert target is not None
    return await transport.post(target, headers, body, timeout)


class AiohttpTransport:
    """aiohttp: its connection pool stays cheap with many connections (httpx delivered 260-400 events/s
    here, most of it spent in its pool's bookkeeping; aiohttp 1,800-2,000: docs/benchmarks.md).
    aiohttp is imported when a transport is made (a server makes its webhook worker's at start-up), not
    with this module, which the engine imports: `dialwave simulate` sends nothing and never loads it."""

    def __init__(self, max_connections: int = 100, ssl_context: ssl.SSLContext | None = None) -> None:
        import aiohttp  # noqa: F401

        self.max_connections = max_connections
        self.ssl_context = ssl_context  # None: the system's trust store (a private CA may be given here)
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self.session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, use_dns_cache=False)
            self.session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False, skip_auto_headers=("User-Agent",)
            )
        return self.session

    async def post(self, target: Target, headers: dict[str, str], body: bytes, timeout: float) -> Reply:  # noqa: ASYNC109
        import aiohttp

        address = f"[{target.address}]" if ":" in target.address else target.address
        default = 443 if target.scheme == "https" else 80
        host = f"[{target.host}]" if ":" in target.host else target.host
        if target.port != default:
            host = f"{host}:{target.port}"
        try:
            async with self._session().post(
                f"{target.scheme}://{address}:{target.port}{target.path}",
                data=body,
                headers={**headers, "Host": host},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
                server_hostname=target.host if target.scheme == "https" else None,
                ssl=self.ssl_context if self.ssl_context is not None else True,
            ) as response:
                data = await response.content.read(MAX_REPLY)
                return Reply(response.status, data)
        except TimeoutError as exc:
            raise TransportError(f"no answer within {timeout * 1000:g} ms") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
