"""`{{variable}}` templates used in prompts and opening messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def variables_in(*templates: str | None) -> set[str]:
    names: set[str] = set()
    for template in templates:
        if template:
            names.update(VARIABLE.findall(template))
    return names


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill `{{name}}` with values[name]; an unknown name stays as written."""

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values and values[name] is not None else match.group(0)

    return VARIABLE.sub(_sub, template)


def missing_variables(required: Iterable[str], *sources: Iterable[str]) -> list[str]:
    have: set[str] = set()
    for source in sources:
        have.update(source)
    return sorted(set(required) - have)
