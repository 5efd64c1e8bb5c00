"""PostgreSQL goes away in the middle of a run and comes back (a restart, a failover): an API process
and two `dialwave worker` processes on a cluster of the test's own (tests/e2e/pg_cluster.py). While the
database is away the API answers 503 with a JSON error, never a 500; afterwards every process goes on
by itself and the run finishes with every guarantee, checked from the call records."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import httpx
import pytest

from dialwave.store.migrate import upgrade
from tests.e2e.pg_cluster import PgCluster, own_cluster
from tests.e2e.server import free_port, new_key, zone_at_noon
from tests.e2e.test_workers_processes import (
    SCALE,
    check_records,
    env_for,
    process,
    query,
    wait_healthy,
    wait_started,
)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with own_cluster("dw_restart") as cluster:
        yield cluster


def test_a_database_restart_mid_run_is_survived_without_an_operator(
    pg: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = tmp_path_factory.mktemp("restart")
    url = f"{pg.url}/postgres"
    upgrade(url)
    env = env_for(url, SCALE, datetime.now(UTC))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        api_args = ["serve", "--no-engine", "--host", "127.0.0.1", "--port", str(port)]
        api = stack.enter_context(process(api_args, env, logs / "api.log"))
        workers = [stack.enter_context(process(["worker", "--no-webhooks"], env, logs / f"w{i}.log")) for i in (0, 1)]
        wait_healthy(base, api)
        for i, worker in enumerate(workers):
            wait_started(logs / f"w{i}.log", worker)
        key = new_key(url, "acme")
        http = stack.enter_context(httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30))
        org_id = query(url, "SELECT id FROM organizations WHERE name = 'acme'")[0]["id"]
        query(url, "UPDATE organizations SET max_concurrency = 10 WHERE id = $1", org_id)
        agent = http.post("/v1/agents", json={"name": "a", "opening_message": "Hi"}).json()
        model = {"outcomes": {"answered": 0.7, "busy": 0.3}, "ring_seconds": [1, 3], "talk_seconds": [5, 15]}
        caps = {}
        for i, cap in enumerate((4, 4)):
            body = {"number": f"+1212555010{i}", "simulated": model, "max_concurrency": cap}
            caps[http.post("/v1/phone-numbers", json=body).json()["id"]] = cap
        retry = {
            "on": {
                outcome: {"max_retries": 2, "interval_minutes": [1]}
                for outcome in ("busy", "provider_error", "internal_error")
            }
        }
        campaigns = []
        for n in range(6):
            body = {
                "name": f"c{n}",
                "agent_id": agent["id"],
                "caller_ids": [{"phone_number_id": c} for c in caps],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "pacing": {"max_concurrency": 3, "attempts_per_second": 1},
                "compliance": {"max_abandon_rate": None},  # a slow agent connect on a busy machine, x30
                "retry": retry,
            }
            camp = http.post("/v1/campaigns", json=body).json()
            leads = [{"phone_number": f"+1212{300 + n:03d}{j:04d}", "timezone": zone_at_noon()} for j in range(20)]
            assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": leads}).json()["accepted"] == 20
            campaigns.append(camp["id"])
        for cid in campaigns:
            assert http.post(f"/v1/campaigns/{cid}/start").json()["status"] == "active"
        deadline = time.monotonic() + 20
        while query(url, "SELECT count(*) AS n FROM dial_slots")[0]["n"] < 6:  # calls in flight on both workers
            assert time.monotonic() < deadline, "no calls in flight"
            time.sleep(0.1)

        pg.stop()
        answers: Counter[tuple[int, str | None]] = Counter()
        away = time.monotonic() + 3
        while time.monotonic() < away:  # reads, writes and the readiness probe while the database is away
            for method, path in (
                ("GET", f"/v1/campaigns/{campaigns[0]}"),
                ("GET", "/v1/campaigns"),
                ("POST", f"/v1/campaigns/{campaigns[1]}/pause"),
                ("GET", "/readyz"),
            ):
                response = http.request(method, path)
                code = response.json()["error"]["code"] if path != "/readyz" else "readyz"
                answers[(response.status_code, code)] += 1
            assert httpx.get(f"{base}/healthz").status_code == 200  # the process itself is fine
        assert set(answers) == {(503, "DATABASE_UNAVAILABLE"), (503, "readyz")}, answers
        pg.start()

        deadline = time.monotonic() + 30
        while http.get("/readyz").status_code != 200:  # the API recovers by itself
            assert time.monotonic() < deadline, "the API did not recover"
            time.sleep(0.2)
        assert http.get(f"/v1/campaigns/{campaigns[0]}").status_code == 200
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            states = query(url, "SELECT status FROM campaigns WHERE organization_id = $1", org_id)
            if all(s["status"] == "completed" for s in states):
                break
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.5)
        if not all(s["status"] == "completed" for s in states):  # what holds the unfinished ones back
            leads = query(url, "SELECT campaign_id, status, count(*) AS n FROM leads GROUP BY 1, 2")
            slots = query(url, "SELECT campaign_id, count(*) AS n FROM dial_slots GROUP BY 1")
            open_calls = query(
                url, "SELECT campaign_id, status, count(*) AS n FROM calls WHERE ended_at IS NULL GROUP BY 1, 2"
            )
            counters = query(
                url,
                "SELECT id, count_queued, count_retry_pending, count_in_progress, count_completed, count_failed, "
                "count_total FROM campaigns WHERE status = 'active'",
            )
            raise AssertionError(
                f"{Counter(s['status'] for s in states)} {counters=} {leads=} {slots=} calls={open_calls}"
            )
        assert api.poll() is None and all(w.poll() is None for w in workers)
        for i in (0, 1):  # each renewed its lease session and took its own campaigns back
            assert b"lease session renewed" in (logs / f"w{i}.log").read_bytes()
        calls = check_records(url, org_id, 10, caps, 3)
        assert len(calls) >= 120
        assert query(url, "SELECT count(*) AS n FROM dial_slots")[0]["n"] == 0
