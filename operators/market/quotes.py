"""The quote of each instrument at the end of every event-time minute: bid, ask, LTP and OI.

Ticks carry the best bid/ask and the open interest (the synthetic market always, Angel One in
snap-quote mode), but no stored table did: the option chain could show IV and Greeks only.
Storing every tick would cost as much as the tick stream; the chain is read as of a minute
end, so one row per instrument and minute is enough: the minute's last tick (by event time,
then sequence number), with the OI of its first tick so the day's opening OI is known.

A ``Quote`` is emitted when the instrument's first tick of a later minute arrives (or at the
end of input), so its content depends on the ticks only, not on how they were batched. A tick
of a minute already emitted is late and ignored (the market stage dead-letters it too). Ticks
with neither a book nor open interest (index ticks) make no quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from operators.events import Event, Tick

QUOTE_STATE_VERSION = 1


class Quote(Event, frozen=True, kw_only=True):
    """The last quote of ``token`` in the minute starting at ``minute`` (prices in paise).

    ``ts_event`` is that last tick's exchange time; ``open_oi`` the OI of the minute's first
    tick."""

    token: str
    minute: datetime
    seq: int
    ltp: int
    bid: int
    ask: int
    bid_qty: int
    ask_qty: int
    oi: int
    open_oi: int


@dataclass
class QuoteState:
    """One instrument's pending minute: its last tick so far and the first tick's OI."""

    version: int = QUOTE_STATE_VERSION
    start: datetime | None = None  # the pending (or last emitted) minute; None: none yet
    end: datetime | None = None
    last: Tick | None = None
    open_oi: int = 0


_MINUTE = timedelta(minutes=1)


class QuoteLogic:
    """``on_tick(state, tick) -> [Quote]``: the previous minute's quote when a minute ends.

    Minutes are compared as datetimes against the pending minute's bounds (no epoch
    conversion per tick: this runs on every tick of the run)."""

    def on_tick(self, state: QuoteState, tick: Tick) -> list[Quote]:
        if not (tick.bid > 0 or tick.ask > 0 or tick.oi > 0):
            return []
        ts = tick.ts_event
        end = state.end
        if end is not None and ts < end:
            start = state.start
            if start is not None and ts < start:
                return []  # late: that minute's quote may be out already
            last = state.last
            if last is None or ts > last.ts_event or (ts == last.ts_event and tick.seq >= last.seq):
                state.last = tick
            return []
        out = self.flush(state)
        start = ts.astimezone(UTC).replace(second=0, microsecond=0)
        state.start, state.end, state.last, state.open_oi = start, start + _MINUTE, tick, tick.oi
        return out

    def flush(self, state: QuoteState) -> list[Quote]:
        """The pending minute's quote, if any (end of input)."""
        t = state.last
        if t is None or state.start is None:
            return []
        state.last = None
        return [
            Quote(
                ts_event=t.ts_event,
                ts_recv=t.ts_recv,
                token=t.token,
                minute=state.start,
                seq=t.seq,
                ltp=t.ltp,
                bid=t.bid,
                ask=t.ask,
                bid_qty=t.bid_qty,
                ask_qty=t.ask_qty,
                oi=t.oi,
                open_oi=state.open_oi,
            )
        ]
