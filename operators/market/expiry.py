"""When a derivative's per-token state may go: once its expiry day is over, in event time.

A multi-day run sees every weekly option it ever traded or quoted; without this, each stage's
per-token dicts (plausibility band, chain quotes, marks, feed-health lags ...) grow with the
number of distinct instruments seen. ``ExpiryCalendar`` knows when each token is gone (the IST
midnight after its expiry date: its expiry session has closed, and nothing of that day, not
even a post-close tick, can still ask for it) and the next such instant after an event time,
so a stage compares one ``datetime`` per tick and sweeps only when an expiry has passed.
Indices and instruments without an expiry never expire. Event time only: a replay drops
exactly what the live run dropped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSet
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from operators.events import Instrument
from operators.market.sessions import IST

#: "No expiry ahead": later than any event time.
NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InstrumentExpired:
    """The parse step dropped ``token``'s state at event time ``ts_event`` (its expiry day is
    over): the token-keyed stages downstream flush and drop theirs too."""

    token: str
    ts_event: datetime


class ExpiryCalendar:
    """Token → when it is gone (UTC); ``next_after(ts)``: the first such instant after ``ts``."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        gone: dict[str, datetime] = {}
        for inst in instruments:
            if inst.expiry is not None and inst.kind != "INDEX":
                day_after = inst.expiry + timedelta(days=1)
                gone[inst.token] = datetime.combine(day_after, time(0), IST).astimezone(UTC)
        self.gone_at = gone
        self._order = sorted(set(gone.values()))

    @classmethod
    def of(cls, instruments: Mapping[str, Instrument] | Iterable[Instrument]) -> ExpiryCalendar:
        values = instruments.values() if isinstance(instruments, Mapping) else instruments
        return cls(values)

    def expired(self, token: str, ts: datetime) -> bool:
        """Whether ``token``'s expiry day is over at event time ``ts``."""
        gone = self.gone_at.get(token)
        return gone is not None and gone <= ts

    def next_after(self, ts: datetime) -> datetime:
        """The first instant after ``ts`` at which a token expires (``NEVER``: none left)."""
        i = bisect.bisect_right(self._order, ts)
        return self._order[i] if i < len(self._order) else NEVER

    def drop(
        self,
        tokens: MutableMapping[str, Any] | MutableSet[str],
        ts: datetime,
        keep: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Remove the expired tokens (at ``ts``) from ``tokens`` unless ``keep(token)``;
        returns the ones that went."""
        gone = [t for t in tokens if self.expired(t, ts) and (keep is None or not keep(t))]
        for token in gone:
            if isinstance(tokens, MutableSet):
                tokens.discard(token)
            else:
                del tokens[token]
        return gone
