"""schemathesis against our own OpenAPI document, over HTTP to a real server.

Every operation gets DIALWAVE_FUZZ_EXAMPLES (default 100) generated requests; no 500, every status code
documented, every response body matching its schema."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks as st_checks

from dialwave.api.app import create_app
from dialwave.config import Settings
from dialwave.store.migrate import upgrade
from tests.e2e.server import new_key, running_server

pytestmark = pytest.mark.fuzz
EXAMPLES = int(os.environ.get("DIALWAVE_FUZZ_EXAMPLES", "100"))
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(database_url="sqlite:///./openapi-only.db")).openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


def seed(base: str, key: str) -> dict[str, str]:
    """Real objects, so that half of the generated requests reach them instead of a 404."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        agent = client.post("/v1/agents", json={"name": "Fuzz", "required_variables": ["name"]}).json()
        number = client.post("/v1/phone-numbers", json={"number": "+14155550100"}).json()
        campaign = client.post(
            "/v1/campaigns",
            json={"name": "Fuzzed", "agent_id": agent["id"], "caller_ids": [{"phone_number_id": number["id"]}]},
        ).json()
        leads = {"leads": [{"phone_number": "+14155550123", "variables": {"name": "Ada"}}]}
        client.post(f"/v1/campaigns/{campaign['id']}/leads", json=leads).raise_for_status()
        lead = client.get(f"/v1/campaigns/{campaign['id']}/leads").json()["data"][0]
    return {"agent_id": agent["id"], "number_id": number["id"], "campaign_id": campaign["id"], "lead_id": lead["id"]}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    upgrade(url)
    key = new_key(url, "fuzzers")
    with running_server(url) as base:
        yield base, key, seed(base, key)


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 30


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_each_operation_answers_fuzzed_requests_as_its_schema_says(
    operation: schemathesis.APIOperation, target: tuple[str, str, dict[str, str]]
) -> None:
    base, key, ids = target

    # A live stream stays open while its campaign is not finished: each example waits for the client's
    # read timeout, so streams get a few (tests/e2e/test_campaign_stream.py follows one to its end).
    examples = min(EXAMPLES, 5) if operation.path.endswith("/stream") else EXAMPLES

    @given(case=operation.as_strategy(), real_ids=st.booleans())
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case, real_ids: bool) -> None:
        if real_ids and case.path_parameters:
            case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
        case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    run()
