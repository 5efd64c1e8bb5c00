"""SIP load: new calls per second and simultaneous calls one process sustains against sipp on loopback.

python bench/sip_load.py [--rate 200] [--seconds 15] [--hold-ms 10000] [--transport udp|tcp]

sipp (Debian's sip-tester) answers every call (tests/sipp/uas_router.xml, numbers ending in 0) and
hangs up after --hold-ms. The SIP carrier that `dialwave serve` runs (sippy, its own thread) places
--rate new calls per second for --seconds. Reported: calls placed, answered, ended normally by the
callee's BYE, failures of any kind, the peak of simultaneous answered calls, the achieved rate. With
--transport tcp, sipp listens on TCP with one connection per peer (`-t t1`).
Targets: >= 200 new calls/s and >= 2,000 simultaneous calls with zero failures."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from dialwave.clock import SystemClock
from dialwave.telephony.base import DialRequest
from dialwave.telephony.sip import SipCarrier

SCENARIO = Path(__file__).resolve().parent.parent / "tests" / "sipp" / "uas_router.xml"


def udp_port() -> int:
    """A loopback port free for UDP and TCP."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def request(i: int, trunk: int, transport: str) -> DialRequest:
    return DialRequest(
        call_id=f"call_load_{i}",
        organization_id="org",
        campaign_id="cmp",
        lead_id=f"lead_{i}",
        attempt=1,
        from_number="+12125550100",
        to_number=f"+1212{i:06d}0",  # ends in 0: sipp answers
        caller_id="pn",
        at=datetime.now(UTC),
        ring_timeout_seconds=30,
        machine_detection=False,
        system_prompt="",
        opening_message="",
        variables={},
        agent_id=None,
        agent_version=None,
        carrier_settings={"sip": {"trunk_uri": f"sip:127.0.0.1:{trunk}", "transport": transport}},
    )


def start_sipp(command: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)


async def run(args: argparse.Namespace) -> None:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    tmp = Path(tempfile.mkdtemp())
    port = udp_port()
    scenario = tmp / "uas.xml"
    scenario.write_text(SCENARIO.read_text().replace("HOLD_MS", str(args.hold_ms)).replace("RING_MS", "30000"))
    media = udp_port()
    command = [sipp, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media), "-nostdin"]
    if args.transport == "tcp":
        command += ["-t", "t1"]
    peer = start_sipp([*command, "-max_recv_loops", "10000", "-max_sched_loops", "10000"], tmp)
    await asyncio.sleep(0.5)
    carrier = SipCarrier(SystemClock(), port=udp_port())
    answered = ended_ok = failed = live = peak = 0
    outcomes: dict[str, int] = {}
    total = int(args.rate * args.seconds)
    started = time.perf_counter()
    placed = 0

    def drain() -> None:
        nonlocal answered, ended_ok, failed, live, peak
        for event in carrier.poll(datetime.now(UTC)):
            if event.kind == "answered":
                answered += 1
                live += 1
                peak = max(peak, live)
            elif event.kind == "ended":
                outcomes[event.outcome or "?"] = outcomes.get(event.outcome or "?", 0) + 1
                if event.outcome == "answered":
                    ended_ok += 1
                    live -= 1
                else:
                    failed += 1

    while placed < total:
        due = int((time.perf_counter() - started) * args.rate) + 1
        while placed < min(due, total):
            await carrier.originate(request(placed, port, args.transport))
            placed += 1
        drain()
        await asyncio.sleep(0.005)
    place_time = time.perf_counter() - started
    deadline = time.perf_counter() + args.hold_ms / 1000 + 20
    while ended_ok + failed < total and time.perf_counter() < deadline:
        drain()
        await asyncio.sleep(0.05)
    peer.terminate()
    peer.wait(10)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; sipp on loopback")
    print(f"transport: {args.transport}")
    print(f"placed {placed} calls in {place_time:.2f} s -> {placed / place_time:,.0f} new calls/s (target >= 200)")
    print(f"answered {answered}; ended by the callee's BYE {ended_ok}; failures {failed} {outcomes if failed else ''}")
    print(f"peak simultaneous answered calls: {peak} (target >= 2,000); hold {args.hold_ms} ms")
    unfinished = total - ended_ok - failed
    if failed or unfinished:
        raise SystemExit(f"{failed} failed, {unfinished} unfinished")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--hold-ms", type=int, default=10_000)
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
