"""Per-minute quotes (``operators.market.quotes``) wired as a keyed step on the market stage's
ticks, stored by the PostgreSQL sink for the monitor's option chain (bid/ask/LTP/OI)."""

from __future__ import annotations

from collections.abc import Iterable

from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream

from flows.adapters import run_keyed, values
from flows.market import TokenItem, is_expiry
from operators.market.expiry import InstrumentExpired
from operators.market.quotes import Quote, QuoteLogic, QuoteState


class QuoteStage:
    """Keyed (by instrument token) ``QuoteLogic`` for Bytewax; a list of ticks per batch."""

    def __init__(self) -> None:
        self.logic = QuoteLogic()

    def new_state(self) -> QuoteState:
        return QuoteState()

    is_final = staticmethod(is_expiry)

    def on_item(self, state: QuoteState, ticks: TokenItem) -> list[Quote]:
        if type(ticks) is InstrumentExpired:  # the last quote, then the state is dropped
            return list(self.logic.flush(state))
        assert isinstance(ticks, list)
        on_tick = self.logic.on_tick
        out: list[Quote] = []
        for tick in ticks:
            out.extend(on_tick(state, tick))
        return out

    def on_eof(self, state: QuoteState) -> Iterable[Quote]:
        return self.logic.flush(state)


def quote_stream(ticks: KeyedStream[TokenItem]) -> Stream[Quote]:
    """The quotes of the market stage's valid ticks (``MarketStreams.ticks``)."""
    return values("quote_values", run_keyed("quotes", ticks, QuoteStage))
