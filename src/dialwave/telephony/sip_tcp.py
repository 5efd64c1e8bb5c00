"""SIP over TCP for sippy. sippy 2.5.0 carries SIP over UDP and WebSocket only; this adds TCP the way its
WebSocket server is built: a thread with its own asyncio loop, fed by the `Network_server` send queue,
handing every received message to sippy's event loop (`ED2.callFromThread`).

- Messages are framed by Content-Length (RFC 3261 18.3); CRLF keep-alives (RFC 5626 3.5.1) are skipped.
- One connection per peer address, opened on the first message to it and kept; messages to one peer
  keep their order. Connections the peer opens are accepted on our SIP address and port (TCP), and
  answers to what arrived on them go back on them when the peer's Via names that address.
- A connection that cannot be opened is reported (`on_failure`), so the carrier ends the calls waiting
  on it at once instead of after the no-reply timer.
- `TcpTransactionManager` routes requests whose target transport is `tcp` here, and does not
  retransmit over TCP (timer A applies to unreliable transports only, RFC 3261 17.1.1.2)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sippy.Core.EventDispatcher import ED2
from sippy.Network_server import Network_server, Network_server_opts, Remote_address
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Time.MonoTime import MonoTime

from dialwave.errors import FramingError

CONNECT_SECONDS = 5.0
MAX_MESSAGE = 256 * 1024  # bytes: a peer sending more without a complete message is cut off

Address = tuple[str, int]


def split_messages(buffer: bytearray) -> list[bytes]:
    """Take every complete SIP message off the front of `buffer` (a TCP stream); leave the rest."""
    out: list[bytes] = []
    while True:
        while buffer[:2] == b"\r\n":  # keep-alives between messages
            del buffer[:2]
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_MESSAGE:
                raise FramingError("no end of headers within the size limit")
            return out
        length = 0
        for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                try:
                    length = int(value.strip())
                except ValueError as exc:
                    raise FramingError("a Content-Length that is not a number") from exc
        if length < 0 or end + 4 + length > MAX_MESSAGE:
            raise FramingError("a Content-Length out of bounds")
        if len(buffer) < end + 4 + length:
            return out
        out.append(bytes(buffer[: end + 4 + length]))
        del buffer[: end + 4 + length]


class TcpServer(threading.Thread, Network_server):  # type: ignore[misc]
    """Messages to send arrive by `send_to` (sippy's thread) straight into this thread's event loop: no
    thread blocks on a queue, so the process can exit (a worker blocked in `queue.get` kept pytest
    from exiting; so did a `daemon` class attribute, which shadows Thread's property)."""

    transport = "tcp"

    def __init__(self, opts: Network_server_opts, on_failure: Callable[[Address, str], None] | None = None) -> None:
        threading.Thread.__init__(self, name="sippy-tcp", daemon=True)
        Network_server.__init__(self, opts)
        self.on_failure = on_failure  # called in sippy's thread
        self.peers: dict[Address, asyncio.Queue[bytes | None]] = {}
        self.connecting: set[asyncio.Future[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.start()
        self.ready.wait(10)
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        host, port = self.uopts.laddress
        try:
            server = await asyncio.start_server(self._accepted, host, int(port))
        except OSError as exc:
            self.error = exc
            self.ready.set()
            return
        self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()
        self.ready.set()
        await self.stopping.wait()
        server.close()
        for queue in self.peers.values():
            queue.put_nowait(None)

    def send_to(self, data: bytes | str, address: Any, delayed: bool = False) -> None:
        """From sippy's thread: hand the message to this thread's loop."""
        if self.loop is None:
            return
        payload = data if isinstance(data, bytes) else data.encode("utf-8")
        self.loop.call_soon_threadsafe(self._enqueue, payload, (str(address[0]), int(address[1])))

    def _enqueue(self, data: bytes, peer: Address) -> None:
        queue = self.peers.get(peer)
        if queue is None:
            queue = self.peers[peer] = asyncio.Queue()
            task = asyncio.ensure_future(self._connect(peer, queue))
            self.connecting.add(task)
            task.add_done_callback(self.connecting.discard)
        queue.put_nowait(data)

    def shutdown(self) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.join(5)

    async def _connect(self, peer: Address, queue: asyncio.Queue[bytes | None]) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*peer), CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            self.peers.pop(peer, None)
            if self.on_failure is not None:
                why = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
                ED2.callFromThread(self.on_failure, peer, f"TCP connection to {peer[0]}:{peer[1]} failed: {why}")
            return
        await self._serve(peer, queue, reader, writer)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = (str(host), int(port))
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.peers[peer] = queue
        await self._serve(peer, queue, reader, writer)

    async def _serve(
        self,
        peer: Address,
        queue: asyncio.Queue[bytes | None],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        reading = asyncio.ensure_future(self._read(peer, reader))
        try:
            while True:
                waiting = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({waiting, reading}, return_when=asyncio.FIRST_COMPLETED)
                if reading in done:  # the peer closed the connection
                    waiting.cancel()
                    break
                data = waiting.result()
                if data is None:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if self.peers.get(peer) is queue:
                del self.peers[peer]  # the next message to this peer opens a new connection
            reading.cancel()
            writer.close()

    async def _read(self, peer: Address, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        address = Remote_address(peer, self.transport)
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                for message in split_messages(buffer):
                    ED2.callFromThread(self.handle_read, message, address, MonoTime())
        except (OSError, FramingError):
            return

    def addr2str(self, address: Any) -> str:
        return f"tcp:{address[0]}:{address[1]}"


class TcpTransactionManager(SipTransactionManager):  # type: ignore[misc]
    """sippy's transaction manager, with requests to `transport=tcp` targets sent over TCP."""

    def newTransaction(self, msg: Any, resp_cb: Any = None, laddress: Any = None, userv: Any = None, **kw: Any) -> Any:
        if userv is None:
            target = msg.getTarget()
            if target is not None and str(target[1]).lower() == "tcp":
                userv = self.global_config.get("_tcp_server")
                if userv is None:
                    raise RuntimeError("SIP over TCP is not started")
        return super().newTransaction(msg, resp_cb, laddress, userv, **kw)

    def timerA(self, t: Any) -> None:
        if getattr(t.userv, "transport", None) == "tcp":
            t.teA = None  # a reliable transport: no retransmission
            return
        super().timerA(t)
