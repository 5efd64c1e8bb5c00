"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY set on every connection.

asyncio sets TCP_NODELAY on an accepted socket only when the listening socket says IPPROTO_TCP. A single
`dialwave serve` lets asyncio make that socket (it does); with `--workers N` uvicorn binds it itself with
`socket.socket(family)`, protocol 0, so its connections kept Nagle's algorithm: a response written in two
parts (head, then body) waited for the client's delayed ACK, about 40 ms, on every reused connection
(docs/benchmarks.md, "Two processes and kept-alive connections")."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn types it
        set_nodelay(transport)
        super().connection_made(transport)
