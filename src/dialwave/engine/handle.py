"""What the API may ask of the dispatcher running in its process: one typed interface the app is
given. `LocalEngine` is the dispatcher beside the API (`dialwave serve`, tests, `dialwave simulate`);
`NoEngine` is an API-only process (`dialwave serve --no-engine`), where every request is a no-op."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from dialwave.engine.dispatcher import Engine
from dialwave.telephony.base import Carrier


class EngineHandle(Protocol):
    def signal(self, org_id: str, campaign_id: str | None) -> None:
        """An organization's or a campaign's guards changed (committed): no claimed lead of theirs is
        dialed before the engine re-reads them. Called after the commit, before the API answers."""
        ...

    def note_result(self, call_id: str, conversion: bool | None, callback_at: datetime | None) -> bool:
        """A runtime's result reached a call still up: its end decides with it. False if no engine here
        holds the call."""
        ...

    def carrier(self, provider: str) -> Carrier | None:
        """The carrier object tracking this process's calls of `provider` (its callbacks go there)."""
        ...

    def wake(self) -> None:
        """Carrier events arrived: run the engine's next tick now."""
        ...


class NoEngine:
    def signal(self, org_id: str, campaign_id: str | None) -> None:
        return None

    def note_result(self, call_id: str, conversion: bool | None, callback_at: datetime | None) -> bool:
        return False

    def carrier(self, provider: str) -> Carrier | None:
        return None

    def wake(self) -> None:
        return None


class LocalEngine:
    """An engine in this process; `nudge` wakes its runner (a virtual runner needs none)."""

    def __init__(self, engine: Engine, nudge: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.nudge = nudge

    def signal(self, org_id: str, campaign_id: str | None) -> None:
        self.engine.invalidate(org_id, campaign_id)
        self.wake()

    def note_result(self, call_id: str, conversion: bool | None, callback_at: datetime | None) -> bool:
        return self.engine.note_result(call_id, conversion, callback_at)

    def carrier(self, provider: str) -> Carrier | None:
        return self.engine.carriers.get(provider)

    def wake(self) -> None:
        if self.nudge is not None:
            self.nudge()
