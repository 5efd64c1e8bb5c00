"""How long `/healthz` takes while the server digests large or hostile input (issue 15: < 100 ms).

    python bench/healthz_under_load.py [--database-url postgresql://...] [--fuzz 3000]

Starts `dialwave serve` (a subprocess, fresh database), then runs each scenario while a thread polls
`/healthz` every 10 ms; prints, per scenario, its duration, the statuses it got, and the polls'
p50 / p99 / max latency. A poll that waits on a stalled event loop shows as a long latency.

Scenarios: idle; a JSON batch of 10,000 leads with ~900 bytes of variables each (just under the
10 MB body limit); a JSON batch of 6,000 leads with 100 variables each; a CSV import of 20,000 rows
by 200 columns; 50 MB bodies, unauthenticated and authenticated (413 without reading); and a fuzz
corpus of hostile values (NaN, huge numbers, Unicode digits, lone surrogates, NUL) sent as raw JSON to
every writing route."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _server import Server, dialwave_server, make_campaign

HOSTILE_VALUES = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "123456789012345678901234567890",
    '"\\ud800"',
    '"a\\u0000b"',
    '"+1212555012\\u0663"',
    '"\\uff0b\\uff11\\uff12\\uff11\\uff12"',
    '"' + "x" * 70_000 + '"',
    "[" * 5000 + "]" * 5000,
    "{}",
    "null",
    "-1",
    "2147483648",
    "9223372036854775808",
]


class Poller:
    """GET /healthz every 10 ms in a thread, keeping each answer's latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.perf_counter() - start)
                self.failures += not ok
                time.sleep(0.01)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def leads_body(area: str, rows: int, variables: Callable[[int], dict[str, str]]) -> bytes:
    leads = [{"phone_number": f"+1{area}{2000000 + i:07d}", "variables": variables(i)} for i in range(rows)]
    return json.dumps({"leads": leads}).encode()


def csv_file(path: str, rows: int, columns: int) -> None:
    with open(path, "w") as out:
        out.write("phone_number,name," + ",".join(f"c{j}" for j in range(columns - 2)) + "\n")
        cells = ",".join("v" * 8 for _ in range(columns - 1))
        for i in range(rows):
            out.write(f"+1646{2000000 + i:07d},{cells}\n")


def fuzz_requests(server: Server, cid: str, count: int) -> Iterator[tuple[str, str, bytes]]:
    rng = random.Random(7)
    templates = [
        ("POST", "/v1/agents", '{"name": "a", "system_prompt": %s}'),
        ("POST", "/v1/agents", '{"name": "a", "max_duration_seconds": %s}'),
        ("POST", "/v1/phone-numbers", '{"number": %s}'),
        ("POST", "/v1/phone-numbers", '{"number": "+14155550199", "simulated": {"ring_seconds": [%s, 3]}}'),
        ("POST", f"/v1/campaigns/{cid}/leads", '{"leads": [{"phone_number": %s}]}'),
        ("POST", f"/v1/campaigns/{cid}/leads", '{"leads": [{"phone_number": "+14155550100", "variables": {"v": %s}}]}'),
        ("PATCH", f"/v1/campaigns/{cid}", '{"max_concurrency": %s}'),
        ("PATCH", f"/v1/campaigns/{cid}", '{"description": %s}'),
        ("PATCH", f"/v1/campaigns/{cid}", '{"retry": {"no_answer": {"max_retries": %s}}}'),
        ("POST", "/v1/dnc", '{"numbers": [%s]}'),
        ("POST", "/v1/webhook-endpoints", '{"url": %s}'),
    ]
    for _ in range(count):
        method, path, template = rng.choice(templates)
        yield method, path, (template % rng.choice(HOSTILE_VALUES)).encode("utf-8", "surrogatepass")


def run(database_url: str | None, fuzz: int) -> None:
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()} {platform.processor() or platform.machine()}")
    print(f"# python {platform.python_version()}, {os.cpu_count()} CPUs, database {database_url or 'SQLite file'}")
    with dialwave_server(database_url) as server:
        cid = make_campaign(server, "hostile")
        client = httpx.Client(base_url=server.base, headers=server.headers, timeout=120)
        big_note = leads_body("415", 10_000, lambda i: {"name": f"N{i}", "note": "n" * 900})
        many_vars = leads_body("212", 6_000, lambda i: {"name": f"N{i}"} | {f"v{j}": str(j) for j in range(100)})
        tmp = tempfile.mkdtemp(prefix="dwhostile")
        wide = os.path.join(tmp, "wide.csv")
        csv_file(wide, 20_000, 200)
        fifty = b"{" + b" " * (50 * 1024 * 1024) + b"}"
        json_headers = {"Content-Type": "application/json"}

        def post_json(body: bytes) -> Callable[[], list[int]]:
            def post() -> list[int]:
                answer = client.post(f"/v1/campaigns/{cid}/leads", content=body, headers=json_headers)
                if answer.status_code == 200:
                    print(f"  accepted {answer.json()['accepted']}, rejected {answer.json()['rejected']}")
                return [answer.status_code]

            return post

        def wide_import() -> list[int]:
            with open(wide, "rb") as f:
                answer = client.post(f"/v1/campaigns/{cid}/leads/import", files={"file": ("w.csv", f)})
            if answer.status_code == 200:
                print(f"  accepted {answer.json()['accepted']}, rejected {answer.json()['rejected']}")
            return [answer.status_code]

        def fuzzing() -> list[int]:
            return [
                client.request(method, path, content=body, headers=json_headers).status_code
                for method, path, body in fuzz_requests(server, cid, fuzz)
            ]

        scenarios: list[tuple[str, Callable[[], list[int]]]] = [
            ("idle 2 s", lambda: time.sleep(2) or []),
            (f"JSON 10,000 leads x 900 B ({len(big_note) / 1e6:.1f} MB)", post_json(big_note)),
            (f"JSON 6,000 leads x 100 variables ({len(many_vars) / 1e6:.1f} MB)", post_json(many_vars)),
            (f"CSV 20,000 rows x 200 columns ({os.path.getsize(wide) / 1e6:.1f} MB)", wide_import),
            (
                "50 MB body, no key",
                lambda: [httpx.post(f"{server.base}/v1/agents", content=fifty, headers=json_headers).status_code],
            ),
            (
                "50 MB body, with key",
                lambda: [client.post("/v1/agents", content=fifty, headers=json_headers).status_code],
            ),
            (f"fuzz {fuzz} hostile requests", fuzzing),
        ]
        print(
            f"{'scenario':<46} {'seconds':>8} {'statuses':<28} {'polls':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
        )
        for name, work in scenarios:
            with Poller(server.base) as poller:
                time.sleep(0.1)
                start = time.perf_counter()
                statuses = work()
                took = time.perf_counter() - start
                time.sleep(0.1)
            seen = ",".join(f"{s}x{n}" if n > 1 else str(s) for s, n in sorted(Counter(statuses).items())) or "-"
            lat = poller.latencies
            print(
                f"{name:<46} {took:>8.2f} {seen:<28} {len(lat):>6} {ms(lat, 0.5):>7.1f} {ms(lat, 0.99):>7.1f}"
                f" {max(lat) * 1000:>7.1f}" + (f"  ({poller.failures} failed)" if poller.failures else "")
            )
            if any(s >= 500 for s in statuses):
                print("  !! a 5xx answer")
        print(f"median healthz over all: {statistics.median(poller.latencies) * 1000:.1f} ms")
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--fuzz", type=int, default=3000)
    args = parser.parse_args()
    run(args.database_url, args.fuzz)
