"""The dispatcher's tuning: how far ahead it gives out pace slots, how much it claims at once, how
often it commits and re-reads campaigns; real time by default, `virtual()` for a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class EngineSettings:
    horizon: timedelta = timedelta(milliseconds=250)  # how far ahead pace slots are given out
    batch: timedelta = timedelta(seconds=2)  # a claim takes about this long's worth of leads at full pace
    max_batch: int = 1000
    claim_delay: timedelta = timedelta(seconds=1)  # let leads that come due one by one (retries) batch up
    flush_every: timedelta = timedelta(milliseconds=100)  # group commit period (engine time)
    flush_max: int = 2000  # ... or this many buffered row changes
    refresh_every: timedelta | None = timedelta(seconds=1)  # re-read campaigns (None: only when told)
    number_attempts_per_24h: int | None = None  # organization-wide cap per number, all campaigns
    allow_loopback: bool = False  # pre-dial hooks may call loopback addresses (development, tests)
    shared_caps: bool = True  # PostgreSQL: hold the caps across workers through the database (engine/slots.py)
    cap_retry: timedelta = timedelta(milliseconds=100)  # a grant found no room: ask again after this
    sweep_every: int = 30  # refreshes between sweeps of slots that dead workers left in finished campaigns
    breaker_failures: int = 10  # this many calls in a row ending as provider_error pause the campaign (0: never)
    # A forecast's engine (dialwave simulate, POST .../forecast), the only user of its throwaway database,
    # dialing the simulated carrier: no agent runtime takes its calls, so no prompt is rendered and no call
    # token minted for a dial, and no result can have been stored by another process (not looked up).
    forecast: bool = False

    @classmethod
    def virtual(cls, **overrides: object) -> EngineSettings:
        """For a virtual clock: nothing outside the process changes the database, so campaigns are
        re-read only when told (invalidate), commits are grouped over longer engine time, and the caps
        are counted in the process (no grant asked of the database per start)."""
        values: dict[str, object] = {
            "horizon": timedelta(seconds=1),
            "batch": timedelta(seconds=60),
            "claim_delay": timedelta(seconds=30),
            "flush_every": timedelta(seconds=60),
            "refresh_every": None,
            "cap_retry": timedelta(seconds=1),
            "shared_caps": False,  # one process: its own counts are exact (tests of several workers turn it on)
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def for_forecast(cls, **overrides: object) -> EngineSettings:
        """`virtual()` for a forecast (see `forecast`)."""
        return cls.virtual(forecast=True, **overrides)
