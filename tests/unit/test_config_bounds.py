"""Every number a user can set in an agent, a phone number or a campaign is bounded (a minimum and a
maximum in the published schema): no duration or count reaches the engine's arithmetic or the
database's integer columns out of range."""

from __future__ import annotations

from typing import Any

import pytest

from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.resources import AgentConfig, PhoneNumberConfig


def numbers_without_bounds(schema: dict[str, Any]) -> list[str]:
    defs = schema.get("$defs", {})
    found: list[str] = []

    def walk(node: Any, path: str, seen: frozenset[str]) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    walk(defs[name], path, seen | {name})
                return
            if node.get("type") in ("integer", "number"):
                low = "minimum" in node or "exclusiveMinimum" in node
                high = "maximum" in node or "exclusiveMaximum" in node
                if not (low and high):
                    found.append(path)
            for key, value in node.items():
                if key in ("properties", "$defs"):
                    for name, child in value.items():
                        walk(child, f"{path}.{name}" if path else name, seen)
                elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "prefixItems"):
                    walk(value, path + "[]", seen)
        elif isinstance(node, list):
            for child in node:
                walk(child, path, seen)

    walk({k: v for k, v in schema.items() if k != "$defs"}, "", frozenset())
    return found


@pytest.mark.parametrize("model", [AgentConfig, PhoneNumberConfig, CampaignConfig])
def test_every_number_in_the_configuration_is_bounded(model: Any) -> None:
    assert numbers_without_bounds(model.model_json_schema()) == []


def test_the_bound_checker_finds_an_unbounded_number() -> None:
    schema = {
        "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "number", "minimum": 0, "maximum": 1}}
    }
    assert numbers_without_bounds(schema) == ["a"]
