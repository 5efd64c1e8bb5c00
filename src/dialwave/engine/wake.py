"""When the engine next has something to do (`next_wake`), and the calm instants before then: a tick at
an instant where the engine has nothing of its own due gives no pace slot, starts, claims, re-reads
and commits nothing; what it does is apply the carrier events due then and look at the call deadlines
due. The virtual runner lets `apply_calm` stand in for such a tick (a ringing, answered or
agent_connected event, the ring timeout of a call answered since: most instants of a forecast), and
runs the whole tick when an event ends a call (its room is given out at once), a deadline acts or the
commit comes due. A part of the Engine (dispatcher.py), which holds the state these methods use."""

from __future__ import annotations

from datetime import UTC, datetime
from operator import attrgetter

from dialwave.engine.calls import Calls
from dialwave.engine.capacity import Capacity
from dialwave.engine.claims import claim_at, needs_leads, target
from dialwave.engine.leases import Leases
from dialwave.engine.settings import EngineSettings
from dialwave.engine.state import CampaignState
from dialwave.engine.write_buffer import WriteBuffer
from dialwave.telephony.base import CallEvent, Carrier

_NEVER = datetime.max.replace(tzinfo=UTC)  # calm for ever: nothing of the engine's own is ever due
_AT = attrgetter("at")  # an event's time: the sort key of _poll (a C getter, not a lambda called per event)


class Wake:
    """The Engine's next wake and calm instants (the Engine sets these attributes)."""

    campaigns: dict[str, CampaignState]
    carriers: dict[str, Carrier]
    settings: EngineSettings
    capacity: Capacity
    calls: Calls
    writes: WriteBuffer
    leases: Leases
    now: datetime | None
    started: bool
    dirty: bool
    flush_at: datetime | None
    next_refresh: datetime | None
    lifecycle_at: datetime | None
    calm_before: datetime | None  # see next_wake
    _campaigns_wake: datetime | None  # the campaigns' part of the last next_wake()

    def _hold_caller(self, event: CallEvent, now: datetime) -> None:
        raise NotImplementedError

    def next_wake(self) -> datetime | None:
        """When this engine next has something to do (carrier events aside). Also sets `calm_before`:
        the instant before which a tick would do nothing but apply carrier events and pass over call
        deadlines (apply_calm), or None."""
        self._campaigns_wake, calm = self._campaigns_next()
        return self._timers_next(calm)

    def next_wake_calm(self) -> datetime | None:
        """next_wake() after apply_calm stood in for a tick: the campaigns' part has not moved (nothing
        of theirs changed, and while calm none of their times depends on the instant); the commit and
        the call deadlines may have."""
        return self._timers_next(True)

    def _campaigns_next(self) -> tuple[datetime | None, bool]:
        """The campaigns' part of next_wake (re-plans, pace slots coming into the horizon, claims), and
        whether the tick is calm: every trigger of the tick other than carrier events is in these times
        and the timers (_timers_next), so that a tick at an instant before them would do nothing else."""
        now = self.now
        best: datetime | None = None
        calm = now is not None and self.started and not self.dirty and not self.leases.suspect
        calm = calm and not (self.leases.broken or self.leases.lost or self.calls.abandon_checks)
        calm = calm and not (self.calls.tripped or self.writes.finished)
        for camp in self.campaigns.values():
            if camp.replan_waiting and now is not None:
                best, calm = now, False  # a re-plan batch is waiting
            if camp.status != "active" or camp.stale or now is None:
                continue
            at = None
            if camp.waiting and camp.cap_wait is not None and camp.cap_wait > now:
                at = camp.cap_wait  # no room across workers a moment ago: ask again then
            elif camp.waiting and camp.room > 0:
                feed_at = self.capacity.feed_at(camp, now)  # the next pace slot comes into the horizon
                if feed_at > now:
                    at = feed_at
                else:
                    calm = False  # the feed gives no slot for want of room elsewhere: any change may
            if at is not None and (best is None or at < best):
                best = at
            if camp.due_known and camp.next_due is not None and camp.held <= target(camp, self.settings) // 2:
                at = claim_at(camp, self.settings)
                if at <= now:
                    at, calm = now, False
                if best is None or at < best:
                    best = at
            elif calm and not camp.due_known and needs_leads(camp, self.settings, now):
                calm = False  # its next due time is not known: the next tick claims, whenever it comes
        return best, calm

    def _timers_next(self, calm: bool) -> datetime | None:
        """The earliest of the campaigns' part and the engine's timers (the next pace slot, group commit,
        campaign re-read, lifecycle step and call deadline); sets `calm_before` (see next_wake)."""
        best = self._campaigns_wake
        for at in (
            self.capacity.next_slot(),
            None if self.writes.empty else self.flush_at,
            self.next_refresh,
            self.lifecycle_at,
        ):
            if at is not None and (best is None or at < best):
                best = at
        self.calm_before = (best or _NEVER) if calm else None
        deadline = self.calls.next_deadline()
        return deadline if deadline is not None and (best is None or deadline < best) else best

    def apply_calm(self, now: datetime) -> list[CallEvent] | None:
        """Stand in for tick(now) at an instant before `calm_before` (VirtualRunner): such a tick gives
        no slot, starts, claims, re-reads and commits nothing, so the carrier events due and the call
        deadlines due are all it does; when none of the events ends a call, they bring no commit due,
        and every deadline due is one run_deadlines passes over, it applies the events and drops those
        deadlines (returns None). Else it returns what tick(now, events) must still do: every event
        polled, none applied, when one ends a call; none when only the rest is due."""
        events = self._poll(now)
        for event in events:
            if event.kind == "ended":
                return events
        self.now = now
        live = len(self.calls.live)
        for event in events:
            self._hold_caller(event, now)
            self.calls.apply(event, now)
        if len(self.calls.live) != live or self._flush_due(now) or not self.calls.pass_over_deadlines(now):
            return []  # an event failed and ended its call, or the commit or a deadline is due now
        return None

    def _poll(self, now: datetime) -> list[CallEvent]:
        """The carriers' events due by `now`, in time order."""
        events: list[CallEvent] = []
        for carrier in self.carriers.values():
            events.extend(carrier.poll(now))
        if len(events) > 1:
            events.sort(key=_AT)
        return events

    def _flush_due(self, now: datetime) -> bool:
        """Whether the group commit is due: something is buffered, and its time came or the batch is
        full. (Asked at every tick and calm instant: the batch's size, which most instants look at,
        first; whether it is empty only when the size does not settle it.)"""
        writes, flush_at = self.writes, self.flush_at
        if flush_at is not None and now < flush_at:
            size = len(writes)
            return size >= self.settings.flush_max and (size > 0 or not writes.empty)
        return not writes.empty
