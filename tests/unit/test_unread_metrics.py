"""A forecast engine's metrics (metrics.Unread): nobody scrapes them, so its per-call counts and
timings are dropped; a real engine's are counted."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from dialwave.metrics import Metrics, Unread

PER_CALL = ("dialwave_call_attempts_total", "dialwave_call_outcomes_total", "dialwave_dial_duration_seconds_count")


def _samples(metrics: Metrics) -> dict[str, float]:
    text = metrics.render().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name in PER_CALL}


def _count(metrics: Metrics) -> None:
    metrics.count_attempt("c1")
    metrics.count_outcome("c1", "busy")
    metrics.dial_seconds.observe(0.01)


def test_a_real_engines_metrics_count_each_call() -> None:
    metrics = Metrics()
    _count(metrics)
    assert _samples(metrics) == {
        "dialwave_call_attempts_total": 1.0,
        "dialwave_call_outcomes_total": 1.0,
        "dialwave_dial_duration_seconds_count": 1.0,
    }


def test_a_forecasts_metrics_keep_nothing() -> None:
    metrics = Unread()
    _count(metrics)
    assert not any(_samples(metrics).values())
