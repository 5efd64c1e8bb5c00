"""`dialwave serve --workers N`: uvicorn binds the listening socket itself, with protocol 0, and asyncio
then leaves Nagle's algorithm on for the connections it accepts (a reused connection waited ~40 ms for
the client's delayed ACK on every response). Our protocol sets TCP_NODELAY on each connection."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from dialwave.api.http_protocol import NoDelayH11Protocol


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def nodelay_of_accepted(protocol: type[H11Protocol]) -> int:
    """TCP_NODELAY of the server side of one connection, accepted on a socket bound as uvicorn binds it
    for several workers (`Config.bind_socket`: `socket.socket(family=...)`, protocol 0)."""
    config = Config(app, http=protocol, log_level="warning")
    config.load()
    made: list[H11Protocol] = []

    def factory() -> H11Protocol:
        made.append(protocol(config=config, server_state=ServerState(), app_state={}))
        return made[-1]

    listening = socket.socket(family=socket.AF_INET)
    listening.bind(("127.0.0.1", 0))
    assert listening.proto == 0
    server = await asyncio.get_running_loop().create_server(factory, sock=listening)
    try:
        port = listening.getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        flag = int(made[0].transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        return flag
    finally:
        server.close()
        await server.wait_closed()


async def test_uvicorns_own_protocol_keeps_nagle_on_such_a_socket_ours_turns_it_off() -> None:
    assert await nodelay_of_accepted(H11Protocol) == 0  # why ours exists
    assert await nodelay_of_accepted(NoDelayH11Protocol) == 1


def test_serve_with_workers_runs_uvicorn_with_our_protocol(monkeypatch: Any) -> None:
    """(The one-process path passes the same options.)"""
    import uvicorn

    from dialwave import cli

    monkeypatch.setenv("DIALWAVE_TIME_SCALE", "1")  # serve sets it for its workers: restored after the test
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(cli, "on_database", lambda check: asyncio.sleep(0))
    cli.serve(host=None, port=None, time_scale=None, engine=False, workers=2)
    assert calls and all(kw["http"] is NoDelayH11Protocol for kw in calls)
