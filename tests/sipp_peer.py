"""sipp (Debian's sip-tester) as the real SIP peer of our tests: a trunk that answers by the last digit
of the dialed number (tests/sipp/uas_router.xml). Without sipp the tests skip; with CI=true they fail."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "sipp"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        message = "sipp is not installed (Debian package sip-tester; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_udp_port() -> int:
    """A port free for both UDP and TCP on loopback (our SIP stack and sipp listen on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


@contextmanager
def sipp_trunk(
    tmp: Path,
    hold_ms: int = 1000,
    ring_ms: int = 30000,
    extra: tuple[str, ...] = (),
    messages: Path | None = None,
    media: int | None = None,
    scenario_file: str = "uas_router.xml",
    transport: str = "udp",
) -> Iterator[int]:
    """A sipp UAS on 127.0.0.1:<port> (UDP, or TCP with one connection per peer: `-t t1`); yields the
    port. `messages`: write every SIP message there."""
    sipp = need_sipp()
    if messages is not None:
        extra = (*extra, "-trace_msg", "-message_file", str(messages))
    if transport == "tcp":
        extra = (*extra, "-t", "t1")
    text = (HERE / scenario_file).read_text().replace("HOLD_MS", str(hold_ms)).replace("RING_MS", str(ring_ms))
    given_media = media
    for _ in range(5):  # a port found free can be taken by another process (another test worker) before sipp binds it
        port, media = free_udp_port(), given_media or free_udp_port()
        scenario = tmp / f"uas_{port}.xml"
        scenario.write_text(text)
        process = subprocess.Popen(
            [
                sipp,
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-mp",
                str(media),
                "-nostdin",
                "-trace_err",
                "-error_file",
                str(tmp / f"uas_{port}_err.log"),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )
        time.sleep(0.3)  # sipp binds its socket
        if process.poll() is None:
            break
    else:
        raise RuntimeError(f"sipp exited at once 5 times (last code {process.returncode})")
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
