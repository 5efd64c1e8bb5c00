"""The OpenAPI document names each operation for SDK generators: one tag per resource, and short,
stable, unique operation ids `{resource}_{action}`."""

from __future__ import annotations

import re
from pathlib import Path

from dialwave.api.app import create_app
from dialwave.config import Settings

TAG_OF_PREFIX = {
    "/healthz": "health",
    "/readyz": "health",
    "/v1/agents": "agents",
    "/v1/phone-numbers": "phone-numbers",
    "/v1/campaigns/{campaign_id}/leads": "leads",
    "/v1/campaigns": "campaigns",
    "/v1/dnc": "dnc",
    "/v1/consents": "consents",
    "/v1/calls": "calls",
    "/v1/webhook-endpoints": "webhook-endpoints",
    "/v1/carriers": "carrier-callbacks",
}


def operations(tmp_path: Path) -> list[tuple[str, str, dict[str, object]]]:
    document = create_app(Settings(database_url=f"sqlite:///{tmp_path}/none.db")).openapi()
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_operation_has_the_one_tag_of_its_url_prefix(tmp_path: Path) -> None:
    for path, method, op in operations(tmp_path):
        prefix = next(p for p in TAG_OF_PREFIX if path == p or path.startswith(p + "/"))
        assert op["tags"] == [TAG_OF_PREFIX[prefix]], (method, path, op["tags"])


def test_operation_ids_are_unique_and_read_resource_then_action(tmp_path: Path) -> None:
    ids = [str(op["operationId"]) for _, _, op in operations(tmp_path)]
    assert len(ids) == len(set(ids))
    for (_, _, op), op_id in zip(operations(tmp_path), ids, strict=True):
        resource = str(op["tags"][0]).replace("-", "_")  # type: ignore[index]
        assert re.fullmatch(rf"{resource}_[a-z]+(_[a-z]+)*", op_id), op_id
    assert {"campaigns_create", "campaigns_pause", "leads_import", "calls_post_result", "health_check"} <= set(ids)
