"""The process's Prometheus metrics (`GET /metrics`, docs/deploy.md "Metrics"): one `Metrics` object per
process, owning its own CollectorRegistry (never the global default one, so that several apps in one
test process do not collide). The engine and the webhook delivery worker count what they already know
(a counter increment per call start and end, a histogram observation per claim and dial); gauges that
are facts of the engine's memory are read at scrape time, and database facts (the webhook backlog) are
set by the route just before the scrape (services/metrics.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# No `_created` sample beside each counter and histogram (a process-wide switch of prometheus-client):
# it doubled a scrape's size and render time with one series per campaign and outcome (bench/metrics.py).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client 0.26.0

CONTENT_TYPE = CONTENT_TYPE_LATEST
# seconds: a claim is one transaction, a dial one carrier request (milliseconds to a few seconds)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._attempt_of: dict[str, Counter] = {}
        self._outcome_of: dict[tuple[str, str], Counter] = {}
        r = self.registry
        self.attempts = Counter(
            "dialwave_call_attempts", "Attempts started (dialed) by this process", ["campaign_id"], registry=r
        )
        self.outcomes = Counter(
            "dialwave_call_outcomes",
            "Attempts ended by this process, by outcome",
            ["campaign_id", "outcome"],
            registry=r,
        )
        self.in_flight = Gauge("dialwave_calls_in_flight", "Calls this process holds between dial and end", registry=r)
        self.claim_seconds: Histogram | Dropped = Histogram(
            "dialwave_claim_duration_seconds",
            "Time of one claim transaction (leads reserved for every campaign that needs some)",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.dial_seconds: Histogram | Dropped = Histogram(
            "dialwave_dial_duration_seconds",
            "Time of one carrier dial request (until the carrier accepted or refused it)",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.campaigns_owned = Gauge(
            "dialwave_campaigns_owned",
            "Campaigns this worker dispatches now (holds the lease of, not yet ended)",
            registry=r,
        )
        self.leases_acquired = Counter(
            "dialwave_leases_acquired",
            "Campaign leases this worker took after its start (a campaign started, or taken over)",
            registry=r,
        )
        self.calls_recovered = Counter(
            "dialwave_calls_recovered",
            "Calls left in flight by a stopped or dead worker that this worker reconciled",
            registry=r,
        )
        self.webhook_backlog = Gauge(
            "dialwave_webhook_backlog",
            "Webhook work waiting: deliveries pending to enabled endpoints, events not yet fanned out",
            ["kind"],
            registry=r,
        )
        self.webhook_failures = Counter(
            "dialwave_webhook_delivery_failures",
            "Webhook send attempts that failed (no 2xx answer) in this process",
            registry=r,
        )
        self.webhook_sent = Counter(
            "dialwave_webhook_deliveries_sent", "Webhook send attempts made by this process", registry=r
        )

    def count_attempt(self, campaign_id: str) -> None:
        """One attempt started (the labelled child kept: `labels()` costs a lock and a lookup per call)."""
        child = self._attempt_of.get(campaign_id)
        if child is None:
            child = self._attempt_of[campaign_id] = self.attempts.labels(campaign_id)
        child.inc()

    def count_outcome(self, campaign_id: str, outcome: str) -> None:
        child = self._outcome_of.get((campaign_id, outcome))
        if child is None:
            child = self._outcome_of[(campaign_id, outcome)] = self.outcomes.labels(campaign_id, outcome)
        child.inc()

    def watch_engine(self, in_flight: Callable[[], float], owned: Callable[[], float]) -> None:
        """Gauges read from an engine's memory at each scrape."""
        self.in_flight.set_function(in_flight)
        self.campaigns_owned.set_function(owned)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Dropped:
    """A metric nobody reads (`Unread`): what it is told is dropped."""

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


DROPPED = Dropped()


class Unread(Metrics):
    """A forecast engine's metrics (EngineSettings.forecast): nobody scrapes them (its calls are not
    this process's; `dialwave simulate` serves no /metrics) and no decision reads a metric, so the
    per-call counts and timings, a lock and a label look-up each, are not kept. The gauges and the
    rarer counters stay as they are."""

    def __init__(self) -> None:
        super().__init__()
        self.claim_seconds = self.dial_seconds = DROPPED

    def count_attempt(self, campaign_id: str) -> None:
        pass

    def count_outcome(self, campaign_id: str, outcome: str) -> None:
        pass


class MetricsServer:
    """`dialwave worker --metrics-port P`: a worker has no API, so its metrics are served at
    http://host:P/metrics by prometheus-client's own small HTTP server, on a thread (the webhook
    backlog, a database fact, is left to the API processes' /metrics)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics, self.host, self.port = metrics, host, port
        self.server: WSGIServer | None = None
        self.thread: threading.Thread | None = None

    async def start(self) -> None:
        self.server, self.thread = start_http_server(self.port, addr=self.host, registry=self.metrics.registry)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
