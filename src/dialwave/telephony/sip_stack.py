"""The process's SIP stack: `sippy` (PyPI, a maintained RFC 3261 stack and B2BUA) in its own thread, and
the SIP URI parts the carrier (sip.py) reads.

sippy runs its own event loop (a process-wide global) in one thread: commands go in through
`ED2.callFromThread` (`SipStack.call`). One SIP stack per process (`SipStack.get`)."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from dialwave.errors import CarrierError


def trunk_address(uri: str) -> tuple[str, int]:
    """`sip:host[:port][;params]` (or `host[:port]`) -> (host, port)."""
    rest = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    rest = rest.split(";", 1)[0].split("@")[-1]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        return host, int(port.lstrip(":") or 5060)
    host, _, port = rest.partition(":")
    return host, int(port or 5060)


def uri_transport(uri: str, default: str = "udp") -> str:
    """The `transport=` parameter of a SIP URI (lower case), else `default`."""
    for param in uri.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport" and value.strip():
            return value.strip().lower()
    return default


def _lowercase_transport_params() -> None:
    """sippy 2.5.0 compares a URI's `transport=` parameter case-sensitively and refuses to send to
    `transport=UDP` (RFC 3261 19.1.4: case-insensitive; sipp and many trunks write it in capitals).
    Lower-case it where sippy parses URI parameters."""
    from sippy.SipURL import SipURL

    if getattr(SipURL.setParams, "dialwave_patched", False):
        return
    original = SipURL.setParams

    def set_params(self: Any, params: Any) -> None:
        original(self, params)
        if isinstance(self.transport, str):
            self.transport = self.transport.lower()

    set_params.dialwave_patched = True  # type: ignore[attr-defined]
    SipURL.setParams = set_params


class SipStack:
    """The process's sippy stack, in its own thread."""

    _instance: ClassVar[SipStack | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.tcp_listeners: list[Any] = []  # told (in the sippy thread) when a TCP connection cannot be opened
        self.thread = threading.Thread(target=self._run, name="sippy", daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise CarrierError("the SIP stack did not start")
        if self.error is not None:
            raise CarrierError(f"the SIP stack did not start: {self.error}") from self.error

    @classmethod
    def get(cls, host: str, port: int) -> SipStack:
        with cls._lock:
            if cls._instance is None:
                cls._instance = SipStack(host, port)
            return cls._instance

    def _run(self) -> None:
        try:
            from sippy.Core.EventDispatcher import ED2
            from sippy.SipConf import SipConf
            from sippy.SipLogger import SipLogger

            from dialwave.telephony.sip_tcp import TcpTransactionManager

            _lowercase_transport_params()
            ED2.my_ident = threading.get_ident()
            SipConf.my_address = self.host
            SipConf.my_port = self.port
            SipConf.my_uaname = "dialwave"
            logger = SipLogger("dialwave")
            logger.level = 3  # errors only: sippy's INFO dumps whole SIP messages, phone numbers included
            self.config: dict[str, Any] = {"_sip_address": self.host, "_sip_port": self.port, "_sip_logger": logger}
            self.config["_sip_tm"] = TcpTransactionManager(self.config, self._out_of_dialog)
            self.ed = ED2
        except BaseException as exc:  # reported to the constructor
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        ED2.loop()

    @staticmethod
    def _out_of_dialog(req: Any, sip_t: Any) -> tuple[Any, None, None]:
        if req.getMethod() in ("OPTIONS", "NOTIFY"):
            return (req.genResponse(200, "OK"), None, None)
        return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)

    def call(self, fn: Any, *args: Any) -> None:
        self.ed.callFromThread(fn, *args)

    def tcp_server(self) -> Any:
        """SIP over TCP, started on first use (in the sippy thread): it listens on our SIP port (TCP)."""
        server = self.config.get("_tcp_server")
        if server is None:
            from sippy.Network_server import Network_server_opts

            from dialwave.telephony.sip_tcp import TcpServer

            opts = Network_server_opts((self.host, self.port), self.config["_sip_tm"].handleIncoming)
            server = self.config["_tcp_server"] = TcpServer(opts, on_failure=self._tcp_failed)
        return server

    def transport_options(self, transport: str) -> dict[str, Any]:
        """sippy UA keyword arguments for a leg over `transport` (in the sippy thread; TCP is started on
        first use). UDP is sippy's default."""
        if transport != "tcp":
            return {}
        self.tcp_server()
        return {"nh_transport": "tcp"}

    def _tcp_failed(self, peer: tuple[str, int], why: str) -> None:
        for listener in self.tcp_listeners:
            listener(peer, why)
