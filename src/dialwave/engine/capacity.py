"""Concurrency and pace: which claimed lead may start, and when. Counts the calls in flight and the
start slots given out per campaign, organization and caller id, and keeps the reservations that
have a slot in a heap by slot time. A slot is given only while every cap has room for it, so a cap
is never exceeded at any instant."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.engine import RowMapping

from dialwave.domain.pacing import Pacer
from dialwave.engine.slots import SharedCaps
from dialwave.engine.state import CallerLoad, CampaignState, Live, Reservation, Verdict

AskHook = Callable[[CampaignState, Reservation], "asyncio.Task[Verdict] | None"]


class Capacity:
    def __init__(
        self, campaigns: Mapping[str, CampaignState], horizon: timedelta, shared: SharedCaps | None = None
    ) -> None:
        self.campaigns = campaigns  # the engine's running campaigns
        self.shared = shared  # PostgreSQL: the caps across workers (a call's end frees its slot there)
        self.horizon = horizon  # how far ahead pace slots are given out
        self.callers: dict[str, CallerLoad] = {}  # phone number id -> its load
        self.org_busy: dict[str, int] = {}  # organization -> calls in flight
        self.org_caps: dict[str, int | None] = {}  # organization -> max_concurrency
        self.reservations: list[Reservation] = []  # a heap by slot

    def pace_callers(self, numbers: Iterable[RowMapping]) -> None:
        """Each phone number's own pace (`max_calls_per_second`), as its settings now say."""
        for number in numbers:
            load = self.callers.setdefault(number["id"], CallerLoad())
            rate = number["config"].get("max_calls_per_second")
            if rate is None:
                load.pacer = None
            elif load.pacer is None:
                load.pacer = Pacer(rate)
            else:
                load.pacer.rate = rate

    def feed(self, now: datetime, ask: AskHook) -> None:
        """Give pace slots to claimed leads while concurrency (campaign, organization, caller id) allows;
        `ask` starts the pre-dial hook's question for each lead given a slot."""
        until = None
        for camp in self.campaigns.values():
            if not camp.waiting or camp.stale or camp.status != "active":
                continue
            if camp.cap_wait is not None and camp.cap_wait > now:  # other workers held the room just now
                continue
            if camp.room <= 0:
                continue
            until = until or now + self.horizon
            cap = self.org_caps.get(camp.org_id)
            while camp.waiting and camp.room > 0:
                if cap is not None and self.org_busy.get(camp.org_id, 0) + self._org_slotted(camp) >= cap:
                    break
                r = camp.waiting[0]
                caller_id = r.caller.phone_number_id
                load = self._load(caller_id)
                limit = camp.caller_limit(caller_id)
                if limit is not None and load.busy >= limit:
                    break
                slots = camp.pacer.take(now, until, 1)
                if not slots:
                    break
                slot = slots[0]
                if load.pacer is not None:
                    own = load.pacer.take(slot, until, 1)
                    if not own:
                        camp.pacer.give_back(1)
                        break
                    slot = max(slot, own[0])
                camp.waiting.popleft()
                r.slot = slot
                camp.slotted += 1
                load.busy += 1
                if r.hook is None:  # a lead back from a full grant keeps its verdict
                    r.hook = ask(camp, r)
                heapq.heappush(self.reservations, r)

    def _org_slotted(self, camp: CampaignState) -> int:
        return sum(c.slotted for c in self.campaigns.values() if c.org_id == camp.org_id)

    def next_slot(self) -> datetime | None:
        return self.reservations[0].slot if self.reservations else None

    def pop(self) -> Reservation:
        return heapq.heappop(self.reservations)

    def unslot(self, r: Reservation, camp: CampaignState | None) -> None:
        """A reservation leaves the heap (to start, or to go back): its slot no longer counts."""
        self.callers[r.caller.phone_number_id].busy -= 1
        if camp is not None:
            camp.slotted -= 1

    def take_campaign(self, campaign_id: str) -> list[Reservation]:
        """Remove every slotted reservation of a campaign (their slots no longer count)."""
        taken: list[Reservation] = []
        keep: list[Reservation] = []
        for r in self.reservations:
            (taken if r.campaign_id == campaign_id else keep).append(r)
        if taken:
            for r in taken:
                self.callers[r.caller.phone_number_id].busy -= 1
            heapq.heapify(keep)
            self.reservations = keep
        return taken

    def track(self, live: Live, sign: int, camp: CampaignState | None) -> None:
        """A call starts (+1) or ends (-1)."""
        if camp is not None:
            camp.in_flight += sign
        self.org_busy[live.org_id] = self.org_busy.get(live.org_id, 0) + sign
        self._load(live.caller_id).busy += sign
        if sign < 0 and self.shared is not None:
            self.shared.release(live.call_id)

    def forget(self, live: Live) -> None:
        """A call no longer this worker's (its campaign went to another worker): not counted any more,
        and its slot is not freed here (the new owner holds it, or frees it)."""
        self.org_busy[live.org_id] = self.org_busy.get(live.org_id, 0) - 1
        self._load(live.caller_id).busy -= 1

    def _load(self, caller_id: str) -> CallerLoad:
        """The caller id's load, made on its first use (looked up first: no CallerLoad built to be
        thrown away, as a setdefault would for every call)."""
        load = self.callers.get(caller_id)
        if load is None:
            load = self.callers[caller_id] = CallerLoad()
        return load

    def feed_at(self, camp: CampaignState, now: datetime) -> datetime:
        """When the campaign's next pace slot (and its head lead's caller id's) comes into the horizon."""
        feed_at = camp.pacer.next_slot(now) - self.horizon
        load = self.callers.get(camp.waiting[0].caller.phone_number_id)
        if load is not None and load.pacer is not None:
            feed_at = max(feed_at, load.pacer.next_slot(now) - self.horizon)
        return feed_at
