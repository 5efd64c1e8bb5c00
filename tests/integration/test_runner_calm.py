"""The virtual runner's calm instants (engine/runner.py, Engine.apply_calm): where the engine has
nothing but carrier events due, applying those events stands in for the whole tick. Same seed, with
and without: the same instants visited, the same attempts, outcomes, times and summary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from dialwave.clock import VirtualClock
from dialwave.engine.dispatcher import Engine
from dialwave.engine.runner import VirtualRunner
from dialwave.simulate import run_scenario
from tests.integration.test_simulate_fast import attempts, random_scenario, scenario

pytestmark = pytest.mark.asyncio


async def _run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, seed: int | None, *, calm: bool, fast: bool = True
) -> tuple[dict[str, object], list[datetime], int]:
    """One run; returns its summary, the instants the clock was set to, and the ticks applied calmly."""
    instants: list[datetime] = []
    calm_ticks = 0
    set_clock, apply_calm = VirtualClock.set, Engine.apply_calm

    def recorded(clock: VirtualClock, when: datetime) -> None:
        instants.append(when)
        set_clock(clock, when)

    def counted(engine: Engine, now: datetime) -> object:
        nonlocal calm_ticks
        rest = apply_calm(engine, now)
        calm_ticks += rest is None
        return rest

    with monkeypatch.context() as patch:
        patch.setattr(VirtualRunner, "calm_ticks", calm)
        patch.setattr(VirtualClock, "set", recorded)
        patch.setattr(Engine, "apply_calm", counted)
        (tmp_path / name).mkdir()
        sc = scenario(120) if seed is None else random_scenario(seed, 50)
        summary = await run_scenario(sc, tmp_path, tmp_path / name, fast=fast)
    summary.pop("wall_seconds")
    return summary, instants, calm_ticks


@pytest.mark.parametrize("seed", [None, 21, 22, 23, 24])
async def test_calm_instants_decide_the_same(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seed: int | None) -> None:
    whole, whole_instants, none = await _run(monkeypatch, tmp_path, "whole", seed, calm=False)
    calm, calm_instants, calm_ticks = await _run(monkeypatch, tmp_path, "calm", seed, calm=True)
    assert none == 0 and calm_ticks > 0
    assert whole["attempts"] > 0  # type: ignore[operator]
    assert calm == whole
    assert calm_instants == whole_instants
    assert attempts(tmp_path / "calm") == attempts(tmp_path / "whole")


async def test_calm_instants_on_the_database_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The engine as the server runs it (no forecast store): the same."""
    whole, whole_instants, _ = await _run(monkeypatch, tmp_path, "whole", 25, calm=False, fast=False)
    calm, calm_instants, calm_ticks = await _run(monkeypatch, tmp_path, "calm", 25, calm=True, fast=False)
    assert calm_ticks > 0
    assert calm == whole
    assert calm_instants == whole_instants
    assert attempts(tmp_path / "calm") == attempts(tmp_path / "whole")
