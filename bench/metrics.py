"""What the metrics cost (`GET /metrics`, dialwave/metrics.py), in one process.

python bench/metrics.py [--campaigns 100]

1. The hot path: microseconds per counter increment with labels (one per call start and one per call
   end), per histogram observation (one per dial and per claim).
2. A scrape: milliseconds to render the registry in the text format, and its size, with `--campaigns`
   campaigns that each saw six outcomes (the render runs on the event loop of the process scraped).
"""

from __future__ import annotations

import argparse
import platform
import timeit

from dialwave.metrics import Metrics

OUTCOMES = ("answered", "busy", "no_answer", "voicemail", "failed", "provider_error")


def per_call_us(fn: object, number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    m = Metrics()
    cid = "cmp_01m8ewd1aqxjt06jybh1a9grg8"
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"attempt counter labels().inc(): {per_call_us(lambda: m.attempts.labels(cid).inc(), args.number):.2f} us")
    outcome = per_call_us(lambda: m.outcomes.labels(cid, "answered").inc(), args.number)
    print(f"outcome counter labels().inc(): {outcome:.2f} us")
    print(f"histogram observe(): {per_call_us(lambda: m.dial_seconds.observe(0.003), args.number):.2f} us")
    for i in range(args.campaigns):
        for o in OUTCOMES:
            m.attempts.labels(f"cmp_{i}").inc()
            m.outcomes.labels(f"cmp_{i}", o).inc()
    rounds = 50
    ms = timeit.timeit(m.render, number=rounds) / rounds * 1e3
    print(f"render with {args.campaigns} campaigns: {ms:.1f} ms, {len(m.render()):,} bytes")


if __name__ == "__main__":
    main()
