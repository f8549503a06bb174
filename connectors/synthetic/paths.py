"""Latent market state on a fine time grid: index level, ATM implied vol, activity, regimes.

Everything the ticks are later sampled from is generated here, vectorised per minute (a loop of
at most 375 iterations over 240-cell blocks, never over ticks). The generator also plants the
scenarios downstream strategies wait for, and remembers when it did (``Scenario``):

- momentum bursts (EMA 9/21 crosses with volume spikes) at the start of every trending stretch
  and at random times;
- sharp dips below VWAP (low RSI, volume spike) inside ranging stretches, which then revert;
- IV spikes: one in the first 30 minutes of the session, more at high-vol stretches and jumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from connectors.synthetic.config import SyntheticConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

GRID_US = 250_000  # one grid cell = 0.25 s of market time
CELLS_PER_MINUTE = 60_000_000 // GRID_US
DT = GRID_US / 1_000_000
SESSION_MINUTES = 375
TRADING_SECONDS_PER_YEAR = 252 * SESSION_MINUTES * 60

REGIMES: tuple[str, str, str] = ("TRENDING", "RANGING", "HIGH_VOL")
TRENDING, RANGING, HIGH_VOL = 0, 1, 2
_SEGMENT_MINUTES = {TRENDING: (20, 45), RANGING: (20, 50), HIGH_VOL: (8, 20)}
_VOL_FACTOR = np.array([1.0, 0.75, 1.7])
_ACTIVITY_FACTOR = np.array([1.1, 0.9, 1.7])
_RANGING_HALF_LIFE_S = 300.0
_BURST_MINUTES = 3
_DIP_MINUTES = 4


class Streams:
    """Independent, reproducible random streams derived from ``(seed, date)``.

    Each component draws from its own stream, so e.g. changing the number of strikes does not
    change the index path.
    """

    INDEX_PATH = 1
    IV_PATH = 2
    INDEX_TICKS = 3
    OPTION_TICKS = 4
    LATENCY = 5
    FAULTS = 6
    OPENING = 7

    def __init__(self, config: SyntheticConfig) -> None:
        self._root = [config.seed, config.date.toordinal()]

    def rng(self, stream: int, sub: int = 0) -> np.random.Generator:
        return np.random.default_rng([*self._root, stream, sub])


@dataclass(frozen=True)
class Scenario:
    """When the generator planted each condition, in seconds from the session start."""

    bursts: tuple[float, ...]
    dips: tuple[float, ...]
    iv_spikes: tuple[float, ...]
    jumps: tuple[float, ...]


@dataclass(frozen=True)
class MarketPaths:
    """Per-cell latent state (``log_spot``, ``atm_iv``, ``activity``) and per-minute regimes."""

    log_spot: FloatArray
    atm_iv: FloatArray
    activity: FloatArray
    regimes: npt.NDArray[np.int8]
    scenario: Scenario

    @property
    def cells(self) -> int:
        return len(self.log_spot)


def _regime_sequence(minutes: int, rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """Stretches of regimes; the first three are a permutation so a full day has all three."""
    out = np.empty(minutes, dtype=np.int8)
    order = list(rng.permutation(3))
    pos = 0
    current = int(order[0])
    while pos < minutes:
        lo, hi = _SEGMENT_MINUTES[current]
        length = int(rng.integers(lo, hi + 1))
        out[pos : pos + length] = current
        pos += length
        if len(order) > 1:
            order.pop(0)
            current = int(order[0])
        else:
            current = int(rng.choice([r for r in range(3) if r != current]))
    return out


def _segments(regimes: npt.NDArray[np.int8]) -> list[tuple[int, int, int]]:
    """(regime, first minute, end minute exclusive) of each stretch."""
    edges = np.flatnonzero(np.diff(regimes)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(regimes)]))
    return [(int(regimes[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _u_shape(minute_of_day: FloatArray) -> FloatArray:
    """Intraday pattern: busy and volatile at the open, quiet at lunch, busier into the close."""
    return (
        0.75
        + 0.7 * np.exp(-minute_of_day / 25.0)
        + 0.5 * np.exp(-(SESSION_MINUTES - minute_of_day) / 30.0)
    )


def _spike_kernel(cells: int, start_cell: int, amplitude: float, half_life_s: float) -> FloatArray:
    """A 20-second rise then exponential decay, as a relative bump on the grid."""
    out = np.zeros(cells)
    if start_cell >= cells:
        return out
    k = np.arange(cells - start_cell) * DT
    rise = np.minimum(k / 20.0, 1.0)
    decay = np.exp(-np.maximum(k - 20.0, 0.0) * np.log(2.0) / half_life_s)
    out[start_cell:] = amplitude * rise * decay
    return out


def generate_paths(config: SyntheticConfig, streams: Streams) -> MarketPaths:
    """Generate the latent day: regimes, index log-level, ATM IV and activity per grid cell."""
    rng = streams.rng(Streams.INDEX_PATH)
    minutes = config.minutes
    cells = minutes * CELLS_PER_MINUTE
    offset_min = (config.start_ist.hour * 60 + config.start_ist.minute) - (9 * 60 + 15)
    minute_of_day = offset_min + np.arange(minutes, dtype=np.float64) + 0.5
    u_min = _u_shape(minute_of_day)

    regimes = _regime_sequence(minutes, rng)
    sigma_sec = config.annual_vol / np.sqrt(TRADING_SECONDS_PER_YEAR)
    minute_sd = sigma_sec * np.sqrt(60.0)
    sigma_min = sigma_sec * u_min * _VOL_FACTOR[regimes]
    activity_min = np.sqrt(u_min) * _ACTIVITY_FACTOR[regimes]
    drift_cell = np.zeros(cells)
    activity_bump = np.zeros(cells)
    kappa_min = np.where(regimes == RANGING, np.log(2.0) / _RANGING_HALF_LIFE_S, 0.0)

    bursts: list[int] = []
    dips: list[int] = []
    trend_sign = float(rng.choice([-1.0, 1.0]))

    def block(first_min: int, n_min: int) -> slice:
        return slice(
            first_min * CELLS_PER_MINUTE, min(first_min + n_min, minutes) * CELLS_PER_MINUTE
        )

    def add_burst(minute: int, sign: float, strength: float) -> None:
        sl = block(minute, _BURST_MINUTES)
        drift_cell[sl] += sign * strength * minute_sd / 60.0 * DT
        activity_bump[sl] += 2.5
        bursts.append(minute)

    # Extra momentum bursts at random minutes (about one an hour), random direction.
    for minute in np.flatnonzero(rng.random(minutes) < 1.0 / 60.0):
        if minute + _BURST_MINUTES <= minutes:
            add_burst(int(minute), float(rng.choice([-1.0, 1.0])), rng.uniform(2.0, 2.8))

    # Jumps: Poisson per cell, more frequent and larger in high-vol stretches.
    regime_cell = np.repeat(regimes, CELLS_PER_MINUTE)
    jump_rate = np.where(regime_cell == HIGH_VOL, 5.0, 1.0) / 3600.0
    jump_cells = np.flatnonzero(rng.random(cells) < jump_rate * DT)
    jump_size = rng.normal(0.0, 1.0, len(jump_cells)) * np.where(
        regime_cell[jump_cells] == HIGH_VOL, 0.0025, 0.0015
    )
    jump_cell_incr = np.zeros(cells)
    jump_cell_incr[jump_cells] = jump_size
    for c in jump_cells:
        activity_bump[c : c + 2 * CELLS_PER_MINUTE] += 1.5
    noise = rng.standard_normal((minutes, CELLS_PER_MINUTE))

    # Index log-level, stretch by stretch (plans drift from the level reached so far), then
    # per-minute blocks: OU toward the stretch's anchor while ranging, drift + noise otherwise.
    open_level = float(np.log(_opening_level(config, streams)))
    level = open_level
    path = np.empty(cells)
    dip_depth: dict[int, float] = {}
    vwap_num, vwap_den = float(np.exp(open_level)), 1.0
    steps = np.arange(1, CELLS_PER_MINUTE + 1, dtype=np.float64)
    for regime, first, end in _segments(regimes):
        if regime == TRENDING:
            away = level - open_level
            if abs(away) > 0.002 and rng.random() < 0.9:
                trend_sign = -float(np.sign(away))  # lean back toward the open: keep the chain
            elif rng.random() < 0.7:
                trend_sign = -trend_sign
            drift = trend_sign * rng.uniform(0.25, 0.4) * minute_sd / 60.0 * DT
            drift_cell[block(first, end - first)] += drift
            add_burst(first, trend_sign, rng.uniform(1.2, 1.8))
        elif regime == RANGING and end - first >= 18:
            dip = first + int(rng.integers(5, end - first - 11))
            dip_depth[dip] = rng.uniform(0.004, 0.0065)
            activity_bump[block(dip, _DIP_MINUTES + 1)] += 3.0
            dips.append(dip)
        anchor = level
        for m in range(first, end):
            sl = slice(m * CELLS_PER_MINUTE, (m + 1) * CELLS_PER_MINUTE)
            if m in dip_depth:
                # Deep enough to cross below the volume-weighted level so far (VWAP proxy);
                # mean reversion gives back about a third of the drift while it falls.
                above_vwap = level - np.log(vwap_num / vwap_den)
                depth = min(max(dip_depth[m], (above_vwap + 0.003) / 0.65), 0.015)
                drift_cell[block(m, _DIP_MINUTES)] -= depth / (_DIP_MINUTES * 60.0) * DT
            incr = sigma_min[m] * np.sqrt(DT) * noise[m] + drift_cell[sl] + jump_cell_incr[sl]
            if kappa_min[m] > 0.0:
                a = np.exp(-kappa_min[m] * DT)
                y = a**steps * ((level - anchor) + np.cumsum(incr * a ** (-steps)))
                block_path = anchor + y
            else:
                block_path = level + np.cumsum(incr)
            path[sl] = block_path
            level = float(block_path[-1])
            weight = activity_min[m] ** 2 * float(np.mean((1.0 + activity_bump[sl]) ** 2))
            vwap_num += weight * float(np.mean(np.exp(block_path)))
            vwap_den += weight
    log_spot = np.concatenate(([open_level], path[:-1]))

    activity = np.repeat(activity_min, CELLS_PER_MINUTE) * (1.0 + activity_bump)
    atm_iv, iv_spikes = _atm_iv_path(config, streams, regimes, minute_of_day, jump_cells)
    return MarketPaths(
        log_spot=log_spot,
        atm_iv=atm_iv,
        activity=activity,
        regimes=regimes,
        scenario=Scenario(
            bursts=tuple(float(m * 60) for m in sorted(bursts)),
            dips=tuple(float(m * 60) for m in dips),
            iv_spikes=tuple(iv_spikes),
            jumps=tuple(float(c * DT) for c in jump_cells),
        ),
    )


def _opening_level(config: SyntheticConfig, streams: Streams) -> float:
    """Opening index level: the configured level with a small seeded gap, on the 0.05 grid."""
    gap = streams.rng(Streams.OPENING).normal(0.0, 0.003)
    return round(config.opening_level * float(np.exp(gap)) * 20.0) / 20.0


def opening_level(config: SyntheticConfig) -> float:
    return _opening_level(config, Streams(config))


def _atm_iv_path(
    config: SyntheticConfig,
    streams: Streams,
    regimes: npt.NDArray[np.int8],
    minute_of_day: FloatArray,
    jump_cells: IntArray,
) -> tuple[FloatArray, list[float]]:
    """ATM implied vol per cell: opening premium, regime level, slow noise and spikes."""
    rng = streams.rng(Streams.IV_PATH)
    minutes = len(regimes)
    cells = minutes * CELLS_PER_MINUTE
    regime_mult = np.where(regimes == HIGH_VOL, 1.25, np.where(regimes == TRENDING, 1.03, 1.0))
    smooth = np.empty(minutes)
    acc = float(regime_mult[0])
    for m in range(minutes):  # EMA over minutes so regime changes move IV gradually
        acc += 0.3 * (float(regime_mult[m]) - acc)
        smooth[m] = acc
    walk = np.exp(np.cumsum(rng.normal(0.0, 0.006, minutes)))
    per_min = config.base_iv * (1.0 + 0.10 * np.exp(-minute_of_day / 40.0)) * smooth * walk
    cell_minutes = (np.arange(cells) + 0.5) / CELLS_PER_MINUTE
    iv = np.interp(cell_minutes, np.arange(minutes) + 0.5, per_min)

    bump = np.zeros(cells)
    spikes: list[float] = []
    for regime, first_min, _end in _segments(regimes):
        if regime == HIGH_VOL and first_min > 0:
            start = first_min * CELLS_PER_MINUTE
            bump += _spike_kernel(cells, start, rng.uniform(0.15, 0.3), 300.0)
            spikes.append(start * DT)
    for c in jump_cells:
        bump += _spike_kernel(cells, int(c), 0.08, 120.0)
    if minutes >= 10:
        # The opening IV spike: big enough to clear everything seen so far in the session,
        # so "IV above its trailing 90th percentile in the first 30 minutes" always happens.
        start = int(rng.uniform(8.0, min(25.0, minutes - 2.0)) * CELLS_PER_MINUTE)
        peak = start + int(20.0 / DT)
        so_far = float(np.max(iv[:start] * (1.0 + bump[:start])))
        needed = 1.08 * so_far / iv[peak] - 1.0 - bump[peak]
        amplitude = max(rng.uniform(0.25, 0.45), needed)
        bump += _spike_kernel(cells, start, amplitude, 240.0)
        spikes.append(start * DT)
    return iv * (1.0 + bump), sorted(spikes)
