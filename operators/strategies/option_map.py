"""Map a view on an underlying to the option contract to trade.

Strategies think in terms of the underlying ("NIFTY looks strong"); orders need an option
token. The rule: a long view buys a call (CE), a short view buys a put (PE), at the strike
nearest the underlying price (ATM), moved by ``offset`` strike steps. A positive offset moves
out of the money (higher strikes for calls, lower for puts), a negative one into the money.

All prices are integer paise, like every price on an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import Literal

from operators.events import Instrument

OptionRight = Literal["CE", "PE"]


def atm_strike(price: int, strike_step: int) -> int:
    """The strike nearest ``price`` on a grid of ``strike_step`` (both paise); ties go down.

    >>> atm_strike(2_352_400, 5_000)
    2350000
    """
    if strike_step <= 0:
        msg = f"strike_step must be positive, got {strike_step}"
        raise ValueError(msg)
    low = (price // strike_step) * strike_step
    return low if price - low <= strike_step - (price - low) else low + strike_step


def target_strike(price: int, strike_step: int, right: OptionRight, offset: int = 0) -> int:
    """ATM strike moved ``offset`` steps out of the money for ``right`` (negative: in)."""
    sign = 1 if right == "CE" else -1
    return atm_strike(price, strike_step) + sign * offset * strike_step


def nearest_expiry(
    instruments: Iterable[Instrument], on: date, underlying: str | None = None, rank: int = 0
) -> date | None:
    """The ``rank``-th option expiry on or after ``on`` (0 = the nearest), or None."""
    expiries = sorted(
        {
            i.expiry
            for i in instruments
            if i.is_option
            and i.expiry is not None
            and i.expiry >= on
            and (underlying is None or i.underlying == underlying)
        }
    )
    return expiries[rank] if 0 <= rank < len(expiries) else None


def select_option(
    price: int,
    strike_step: int,
    expiry: date,
    instruments: Iterable[Instrument],
    right: OptionRight,
    offset: int = 0,
    underlying: str | None = None,
) -> Instrument | None:
    """The option of ``right`` and ``expiry`` at the ATM strike moved by ``offset``; None if
    the instrument list has no such contract (the caller decides what a missing strike means).
    """
    strike = target_strike(price, strike_step, right, offset)
    for inst in instruments:
        if (
            inst.kind == right
            and inst.expiry == expiry
            and inst.strike == strike
            and (underlying is None or inst.underlying == underlying)
        ):
            return inst
    return None


@dataclass(frozen=True, slots=True)
class OptionChain:
    """The tradable options of one underlying, indexed for O(1) strike look-ups.

    ``underlying_token`` is the instrument whose bars and ticks drive strategies on this
    underlying (the index, or a future when index volume is needed).
    """

    underlying: str
    underlying_token: str
    strike_step: int
    instruments: tuple[Instrument, ...]
    _index: Mapping[tuple[date, str, int], Instrument] = field(
        init=False, repr=False, compare=False
    )
    _by_token: Mapping[str, Instrument] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.strike_step <= 0:
            msg = f"strike_step must be positive, got {self.strike_step}"
            raise ValueError(msg)
        index = {
            (i.expiry, i.kind, i.strike): i
            for i in self.instruments
            if i.is_option and i.expiry is not None and i.underlying == self.underlying
        }
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_by_token", {i.token: i for i in self.instruments})

    @classmethod
    def from_instruments(
        cls,
        underlying: str,
        underlying_token: str,
        instruments: Iterable[Instrument],
        strike_step: int | None = None,
    ) -> OptionChain:
        """Build a chain from an instrument master slice; ``strike_step`` defaults to the
        smallest gap between listed strikes of the underlying (NIFTY: 5000 paise)."""
        insts = tuple(instruments)
        if strike_step is None:
            strikes = sorted(
                {i.strike for i in insts if i.is_option and i.underlying == underlying}
            )
            gaps = [b - a for a, b in pairwise(strikes) if b > a]
            if not gaps:
                msg = f"cannot infer the strike step of {underlying}: fewer than two strikes"
                raise ValueError(msg)
            strike_step = min(gaps)
        return cls(underlying, underlying_token, strike_step, insts)

    def expiry_for(self, on: date, rank: int = 0) -> date | None:
        """The ``rank``-th expiry on or after ``on`` among this chain's options."""
        return nearest_expiry(self.instruments, on, self.underlying, rank)

    def select(
        self, price: int, right: OptionRight, on: date, offset: int = 0, expiry_rank: int = 0
    ) -> Instrument | None:
        """The contract a view at underlying ``price`` on trading day ``on`` should trade."""
        expiry = self.expiry_for(on, expiry_rank)
        if expiry is None:
            return None
        strike = target_strike(price, self.strike_step, right, offset)
        return self._index.get((expiry, right, strike))

    def by_token(self, token: str) -> Instrument | None:
        return self._by_token.get(token)
