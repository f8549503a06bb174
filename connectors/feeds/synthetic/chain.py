"""The instrument list and per-instrument tick arrays (index and option chain), vectorised.

Option quotes are priced with Black-76 off the *last published index tick* (its LTP and the
ATM vol at that moment), so anyone holding the index ticks can recompute the forward and the
implied vol exactly: put-call parity is checkable on the ticks themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt

from connectors.feeds.synthetic.black76 import black76
from connectors.feeds.synthetic.config import SyntheticConfig
from connectors.feeds.synthetic.paths import (
    CELLS_PER_MINUTE,
    DT,
    GRID_US,
    MarketPaths,
    Streams,
    opening_level,
)
from operators.events import Instrument
from operators.market.sessions import next_weekly_expiry, session_close, session_open

FloatArray = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

TICK = 5  # paise
SECONDS_PER_YEAR = 365.0 * 24 * 3600
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SMILE_SKEW = -0.08
_SMILE_CURVE = 0.05
_TRADE_FRACTION = 0.75
_INDEX_LOTS_PER_SECOND = 20.0


def option_symbol(underlying: str, expiry: date, strike_rupees: int, kind: str) -> str:
    """Angel One style trading symbol, e.g. ``NIFTY06JAN2626000CE``."""
    day = f"{expiry.day:02d}{_MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"
    return f"{underlying}{day}{strike_rupees}{kind}"


def build_instruments(config: SyntheticConfig) -> list[Instrument]:
    """Index first, then CE/PE pairs by ascending strike around the opening ATM strike."""
    expiry = next_weekly_expiry(config.date)
    atm = round(opening_level(config) / config.strike_step) * config.strike_step
    out = [
        Instrument(
            token=config.index_token,
            symbol=config.underlying,
            underlying=config.underlying,
            kind="INDEX",
            exchange="NSE",
            lot_size=1,
            tick_size=TICK,
        )
    ]
    n = config.strikes_each_side
    for strike in range(
        atm - n * config.strike_step, atm + (n + 1) * config.strike_step, config.strike_step
    ):
        for kind in ("CE", "PE"):
            symbol = option_symbol(config.underlying, expiry, strike, kind)
            out.append(
                Instrument(
                    token=contract_token(symbol),
                    symbol=symbol,
                    underlying=config.underlying,
                    kind=kind,
                    exchange="NFO",
                    strike=strike * 100,
                    expiry=expiry,
                    lot_size=config.lot_size,
                    tick_size=TICK,
                )
            )
    tokens = [i.token for i in out]
    if len(set(tokens)) != len(tokens):  # a hash collision: never seen, but never silent
        msg = f"synthetic instrument tokens collide for {config.underlying} {expiry}"
        raise ValueError(msg)
    return out


def contract_token(symbol: str) -> str:
    """A stable 8-digit token per contract, like an exchange token: the same strike in another
    expiry is another contract with another token (tokens key Kafka, state and the master)."""
    digest = hashlib.blake2b(symbol.encode(), digest_size=8).digest()
    return str(10_000_000 + int.from_bytes(digest, "big") % 90_000_000)


@dataclass
class Columns:
    """Tick fields as parallel arrays; ``t_us`` is microseconds from the session start."""

    t_us: I64
    inst: npt.NDArray[np.int16]
    ltp: I32
    last_qty: I32
    cum_volume: I64
    bid: I32
    ask: I32
    bid_qty: I32
    ask_qty: I32
    oi: I64
    seq: I32
    lat_us: I32  # feed latency: ts_recv = ts_event + lat_us

    def __len__(self) -> int:
        return len(self.t_us)

    def take(self, idx: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Columns:
        return Columns(**{k: v[idx] for k, v in vars(self).items()})

    def reorder(self, order: npt.NDArray[np.intp]) -> None:
        """Permute every column in place, one column at a time (bounded peak memory)."""
        for key in list(vars(self)):
            setattr(self, key, getattr(self, key)[order])

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        """Concatenate, releasing each part's column as soon as it is copied."""
        out: dict[str, np.ndarray] = {}
        for key in list(vars(parts[0])):
            out[key] = np.concatenate([vars(p)[key] for p in parts])
            for p in parts:
                setattr(p, key, None)
        return Columns(**out)


def _arrival_times(rate_per_cell: FloatArray, rng: np.random.Generator) -> I64:
    """Inhomogeneous Poisson arrivals: a count per cell, uniform offsets inside it, sorted."""
    counts = rng.poisson(rate_per_cell)
    starts = np.repeat(np.arange(len(counts), dtype=np.int64) * GRID_US, counts)
    return np.sort(starts + rng.integers(0, GRID_US, len(starts)))


def _latency(config: SyntheticConfig, streams: Streams, inst_index: int, n: int) -> I32:
    lo, hi = config.latency_ms
    rng = streams.rng(Streams.LATENCY, inst_index)
    return rng.uniform(lo * 1e3, hi * 1e3, n).astype(np.int32)


def _round_grid(paise: FloatArray) -> I32:
    return (np.rint(paise / TICK) * TICK).astype(np.int32)


def _prior_minutes(config: SyntheticConfig) -> float:
    return (config.start_ist - session_open(config.date)).total_seconds() / 60.0


@dataclass(frozen=True)
class IndexState:
    """The published index ticks, from which every option quote is priced."""

    t_us: I64
    spot: FloatArray  # rupees, the LTP as published
    atm_iv: FloatArray


def index_ticks(
    config: SyntheticConfig, paths: MarketPaths, streams: Streams
) -> tuple[Columns, IndexState]:
    """About one tick a second (more when busy); no book; optional proxy volume."""
    rng = streams.rng(Streams.INDEX_TICKS)
    rate = config.index_rate_scale * 1.0 * np.sqrt(paths.activity) * DT
    t = _arrival_times(rate, rng)
    if len(t) == 0 or t[0] != 0:
        t = np.concatenate(([0], t))  # the opening print anchors every option quote
    cell = t // GRID_US
    ltp = _round_grid(np.exp(paths.log_spot[cell]) * 100.0)
    n = len(t)
    if config.index_volume:
        # The proxy volume accrues continuously at 20 x activity^2 lots a second and each print
        # carries what accrued since the previous one (at least a lot, +-35 % noise): a
        # minute's volume follows the market's activity, not how many prints the feed sent,
        # so volume spikes survive a low ``tick_rate_scale``.
        density = _INDEX_LOTS_PER_SECOND * paths.activity**2 * DT
        accrued = np.concatenate(([0.0], np.cumsum(density)))
        at = accrued[cell] + density[cell] * ((t % GRID_US) / GRID_US)
        noise = rng.gamma(8.0, 1.0 / 8.0, n)
        lots = np.maximum(np.rint(np.diff(at, prepend=0.0) * noise), 1.0)
        last_qty = (config.lot_size * lots).astype(np.int32)
        prior = int(_prior_minutes(config) * 60 * _INDEX_LOTS_PER_SECOND * config.lot_size)
        cum = prior + np.cumsum(last_qty, dtype=np.int64)
    else:
        last_qty = np.zeros(n, dtype=np.int32)
        cum = np.zeros(n, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int32)
    cols = Columns(
        t_us=t.astype(np.int64),
        inst=np.zeros(n, dtype=np.int16),
        ltp=ltp,
        last_qty=last_qty,
        cum_volume=cum,
        bid=zeros,
        ask=zeros.copy(),
        bid_qty=zeros.copy(),
        ask_qty=zeros.copy(),
        oi=np.zeros(n, dtype=np.int64),
        seq=np.arange(1, n + 1, dtype=np.int32),
        lat_us=_latency(config, streams, 0, n),
    )
    state = IndexState(t_us=cols.t_us, spot=ltp / 100.0, atm_iv=paths.atm_iv[cell])
    return cols, state


def smile_vol(
    atm_iv: FloatArray, strike: float, forward: FloatArray, t_years: FloatArray
) -> FloatArray:
    """Skewed smile in normalised moneyness z = ln(K/F) / (σ_atm √T), clipped to ±4."""
    z = np.clip(np.log(strike / forward) / (atm_iv * np.sqrt(t_years)), -4.0, 4.0)
    return atm_iv * (1.0 + _SMILE_SKEW * z + _SMILE_CURVE * z * z)


def option_ticks(
    config: SyntheticConfig,
    paths: MarketPaths,
    index: IndexState,
    instrument: Instrument,
    inst_index: int,
    streams: Streams,
) -> Columns:
    """Quotes and trades of one option: rate falls off with distance from the money."""
    rng = streams.rng(Streams.OPTION_TICKS, inst_index)
    strike = instrument.strike / 100.0
    step = float(config.strike_step)
    spot_cells = np.exp(paths.log_spot)
    moneyness_cells = np.abs(strike - spot_cells) / step
    rate = (
        config.tick_rate_scale
        * (0.15 + 8.5 * np.exp(-moneyness_cells / 2.2))
        * paths.activity**0.8
        * DT
    )
    # Every option quotes at the open, nearest the money first (a few microseconds apart): the
    # chain's first ATM IV sample is then really at the money, not a far strike's smile.
    opening = int(abs(strike - index.spot[0]) / step * 10.0) * 2 + (instrument.kind == "PE")
    t = np.sort(np.concatenate(([opening], _arrival_times(rate, rng))))
    n = len(t)
    j = np.searchsorted(index.t_us, t, side="right") - 1
    spot = index.spot[j]
    atm = index.atm_iv[j]
    expiry = instrument.expiry or next_weekly_expiry(config.date)
    start_utc = config.start_ist.astimezone(UTC)
    to_expiry_s = (session_close(expiry) - start_utc).total_seconds()
    t_years = np.maximum((to_expiry_s - t / 1e6) / SECONDS_PER_YEAR, 60.0 / SECONDS_PER_YEAR)
    forward = spot * np.exp(config.rate * t_years)
    sigma = smile_vol(atm, strike, forward, t_years)
    price = black76(instrument.kind == "CE", forward, strike, t_years, config.rate, sigma) * 100.0

    moneyness = np.abs(strike - spot) / step
    spread = 2.0 + 0.0008 * price + 1.5 * moneyness + np.where(price < 200.0, 5.0, 0.0)
    bid = (np.floor((price - spread / 2) / TICK) * TICK).astype(np.int32)
    ask = (np.ceil((price + spread / 2) / TICK) * TICK).astype(np.int32)
    bid -= TICK * rng.integers(0, 2, n, dtype=np.int32)
    ask += TICK * rng.integers(0, 2, n, dtype=np.int32)
    bid = np.maximum(bid, TICK)
    ask = np.maximum(ask, bid + TICK)

    act = paths.activity[t // GRID_US]
    is_trade = rng.random(n) < _TRADE_FRACTION
    if n:
        is_trade[0] = True
    lots = rng.geometric(np.clip(0.45 / np.sqrt(act), 0.05, 0.9))
    last_qty = np.where(is_trade, lots * config.lot_size, 0).astype(np.int32)
    trade_px = np.where(rng.random(n) < 0.5, ask, bid)
    last_trade = (
        np.maximum.accumulate(np.where(is_trade, np.arange(n), 0)) if n else np.zeros(0, int)
    )
    ltp = trade_px[last_trade].astype(np.int32)

    m0 = abs(strike - opening_level(config)) / step
    per_minute_lots = 60.0 * config.tick_rate_scale * (0.15 + 8.5 * np.exp(-m0 / 2.2)) * 0.75 * 2.2
    prior = int(_prior_minutes(config) * per_minute_lots) * config.lot_size
    cum_volume = prior + np.cumsum(last_qty, dtype=np.int64)
    oi0 = config.lot_size * int(80_000 * np.exp(-m0 / 6.0) * rng.uniform(0.6, 1.4))
    oi_sign = rng.choice(np.array([1, -1, 0]), size=n, p=[0.45, 0.35, 0.2])
    oi = np.maximum(oi0 + np.cumsum(last_qty.astype(np.int64) * oi_sign), config.lot_size)

    depth = 2.0 + 25.0 * np.exp(-moneyness / 3.0)
    bid_qty = (config.lot_size * (1 + rng.poisson(depth))).astype(np.int32)
    ask_qty = (config.lot_size * (1 + rng.poisson(depth))).astype(np.int32)
    return Columns(
        t_us=t.astype(np.int64),
        inst=np.full(n, inst_index, dtype=np.int16),
        ltp=ltp,
        last_qty=last_qty,
        cum_volume=cum_volume,
        bid=bid,
        ask=ask,
        bid_qty=bid_qty,
        ask_qty=ask_qty,
        oi=oi.astype(np.int64),
        seq=np.arange(1, n + 1, dtype=np.int32),
        lat_us=_latency(config, streams, inst_index, n),
    )


def session_start_utc(config: SyntheticConfig) -> datetime:
    return config.start_ist.astimezone(UTC)


__all__ = [
    "CELLS_PER_MINUTE",
    "Columns",
    "IndexState",
    "build_instruments",
    "index_ticks",
    "option_symbol",
    "option_ticks",
    "session_start_utc",
    "smile_vol",
]
