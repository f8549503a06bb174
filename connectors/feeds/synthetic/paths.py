"""Latent market state on a fine time grid: index level, ATM implied vol, activity, regimes.

Everything the ticks are later sampled from is generated here, vectorised per minute (a loop of
at most 375 iterations over 240-cell blocks, never over ticks). The generator also plants the
scenarios downstream strategies wait for, and remembers when it did (``Scenario``):

- momentum bursts (EMA 9/21 crosses with volume spikes) at the start of every trending stretch
  and at random times;
- one planted bull-flag breakout per session (``breakout``): a rally well above VWAP, a flag, a
  shake-out dip below the 21-EMA and a volume burst that re-crosses with RSI in 50-70, inside
  a trending stretch;
- sharp dips below VWAP (low RSI, volume spike) inside ranging stretches, which then revert;
- IV spikes: one in the first 30 minutes of the session, more at high-vol stretches and jumps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from connectors.feeds.synthetic.breakout import (
    PLAN_MINUTES,
    TARGET_PREMIUM,
    BarTracker,
    BreakoutPlan,
)
from connectors.feeds.synthetic.config import SyntheticConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
T = TypeVar("T")
U = TypeVar("U")

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
_HOST_FIRST_MINUTE = 45
_VOLUME_SPIKE = 2.6  # planted breakout volume vs the mean of the previous 20 minutes


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
class Scenario(Generic[T]):
    """When the generator planted each condition: in the paths, seconds from the session start
    (``Scenario[float]``); from ``SyntheticMarket.scenario``, UTC-aware times."""

    bursts: tuple[T, ...]
    dips: tuple[T, ...]
    iv_spikes: tuple[T, ...]
    jumps: tuple[T, ...]
    #: start of the planted breakout bar (the momentum burst that re-crosses the EMAs)
    breakouts: tuple[T, ...] = ()

    def map(self, convert: Callable[[T], U]) -> Scenario[U]:
        """The same scenario with every time converted (e.g. seconds → datetimes)."""
        return Scenario(
            **{f.name: tuple(convert(v) for v in getattr(self, f.name)) for f in fields(self)}
        )


@dataclass(frozen=True)
class MarketPaths:
    """Per-cell latent state (``log_spot``, ``atm_iv``, ``activity``) and per-minute regimes."""

    log_spot: FloatArray
    atm_iv: FloatArray
    activity: FloatArray
    regimes: npt.NDArray[np.int8]
    scenario: Scenario[float]

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


def _breakout_host(regimes: npt.NDArray[np.int8]) -> int | None:
    """Pick (and stretch, in place) the trending stretch that hosts the planted breakout.

    The first trending stretch starting after the first 45 minutes (VWAP anchored, indicators
    warm) and early enough to hold the whole plan; without one, the first stretch that
    starts late enough becomes trending. A leftover of under 8 minutes of the stretch the
    plan overlaps is absorbed so no stub regime is left behind.
    """
    minutes = len(regimes)
    latest = minutes - PLAN_MINUTES - 5
    segments = [(r, s, e) for r, s, e in _segments(regimes) if _HOST_FIRST_MINUTE <= s <= latest]
    if not segments:
        return None
    trending = [seg for seg in segments if seg[0] == TRENDING]
    _, start, end = trending[0] if trending else segments[0]
    end = max(end, start + PLAN_MINUTES)
    following = [e for _, s, e in _segments(regimes) if s < end < e]
    if following and following[0] - end < 8:
        end = following[0]
    if minutes - end < 8:
        end = minutes
    regimes[start:end] = TRENDING
    return start


def _u_shape(minute_of_day: FloatArray) -> FloatArray:
    """Intraday pattern: busy and volatile at the open, quiet at lunch, busier into the close."""
    return (
        0.75
        + 0.7 * np.exp(-minute_of_day / 25.0)
        + 0.5 * np.exp(-(SESSION_MINUTES - minute_of_day) / 30.0)
    )


def _spike_kernel(
    cells: int,
    start_cell: int,
    amplitude: float,
    half_life_s: float,
    hold_s: float = 0.0,
    hold_growth: float = 0.0,
) -> FloatArray:
    """A 20-second rise, an optional ``hold_s`` plateau that keeps creeping up by
    ``hold_growth`` (relative), then exponential decay, as a relative bump on the grid."""
    out = np.zeros(cells)
    if start_cell >= cells:
        return out
    k = np.arange(cells - start_cell) * DT
    rise = np.minimum(k / 20.0, 1.0)
    creep = 1.0 + hold_growth * np.clip((k - 20.0) / hold_s, 0.0, 1.0) if hold_s > 0 else 1.0
    decay = np.exp(-np.maximum(k - 20.0 - hold_s, 0.0) * np.log(2.0) / half_life_s)
    out[start_cell:] = amplitude * rise * creep * decay
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
    host = _breakout_host(regimes)
    # Keep unrelated bursts and jumps away from the planted breakout and from the 20 minutes
    # of volume history its spike is measured against.
    quiet = (host - 25, host + PLAN_MINUTES + 2) if host is not None else (0, 0)
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
    for minute in np.flatnonzero(rng.random(minutes) < 1.0 / 90.0):
        if minute + _BURST_MINUTES <= minutes and not quiet[0] <= minute < quiet[1]:
            add_burst(int(minute), float(rng.choice([-1.0, 1.0])), rng.uniform(1.6, 2.2))

    # Jumps: Poisson per cell, more frequent and larger in high-vol stretches.
    regime_cell = np.repeat(regimes, CELLS_PER_MINUTE)
    jump_rate = np.where(regime_cell == HIGH_VOL, 5.0, 1.0) / 3600.0
    jump_cells = np.flatnonzero(rng.random(cells) < jump_rate * DT)
    jump_size = rng.normal(0.0, 1.0, len(jump_cells)) * np.where(
        regime_cell[jump_cells] == HIGH_VOL, 0.0025, 0.0015
    )
    keep = (jump_cells < quiet[0] * CELLS_PER_MINUTE) | (jump_cells >= quiet[1] * CELLS_PER_MINUTE)
    jump_cells, jump_size = jump_cells[keep], jump_size[keep]
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
    tracker = BarTracker()
    plan: BreakoutPlan | None = None
    volume_proxy = np.zeros(minutes)
    for regime, first, end in _segments(regimes):
        if first == host:
            # Rise to the target premium over VWAP, plus what the flag and dip give back.
            gap = level - np.log(vwap_num / vwap_den)
            rally = float(np.clip(TARGET_PREMIUM - gap + 0.0025, 0.004, 0.011))
            plan = BreakoutPlan(start=first, rally=rally)
        elif regime == TRENDING:
            away = level - open_level
            if host is not None and first < host:
                # Before the planted breakout, climb back toward VWAP when below it so the
                # breakout's rally does not have to be implausibly large.
                below = level - np.log(vwap_num / vwap_den) < 0.001
                trend_sign = 1.0 if below else -float(np.sign(away) or 1.0)
                rng.random()
            elif abs(away) > 0.002 and rng.random() < 0.9:
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
                depth = min(max(dip_depth[m], (above_vwap + 0.003) / 0.65), 0.009)
                drift_cell[block(m, _DIP_MINUTES)] -= depth / (_DIP_MINUTES * 60.0) * DT
            noise_scale = 1.0
            if plan is not None and first == host:
                sd = float(sigma_min[m] * np.sqrt(60.0))
                step = plan.step(m, tracker, float(np.exp(level)), sd, vwap_num / vwap_den)
                drift_cell[sl] += step.drift / CELLS_PER_MINUTE
                noise_scale = step.noise
                activity_bump[sl] += step.activity
                if step.spike:
                    recent = float(np.mean(volume_proxy[max(m - 20, 0) : m])) if m else 1.0
                    needed = np.sqrt(_VOLUME_SPIKE * recent) / activity_min[m] - 1.0
                    activity_bump[sl] += max(float(needed), 0.5)
            incr = (
                sigma_min[m] * np.sqrt(DT) * noise_scale * noise[m]
                + drift_cell[sl]
                + jump_cell_incr[sl]
            )
            if kappa_min[m] > 0.0:
                a = np.exp(-kappa_min[m] * DT)
                y = a**steps * ((level - anchor) + np.cumsum(incr * a ** (-steps)))
                block_path = anchor + y
            else:
                block_path = level + np.cumsum(incr)
            path[sl] = block_path
            level = float(block_path[-1])
            tracker.update(float(np.exp(level)))
            weight = activity_min[m] ** 2 * float(np.mean((1.0 + activity_bump[sl]) ** 2))
            volume_proxy[m] = weight
            vwap_num += weight * float(np.mean(np.exp(block_path)))
            vwap_den += weight
    log_spot = np.concatenate(([open_level], path[:-1]))
    if plan is not None:
        regimes[plan.flag_minutes] = RANGING  # the truth: the flag is a consolidation

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
            breakouts=(
                (float(plan.burst_minute * 60),)
                if plan is not None and plan.burst_minute is not None
                else ()
            ),
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
        # The opening IV spike, after ~09:23 (the chain's percentile needs a few per-minute
        # samples) and early enough to hold for several bars inside the first 30 minutes. Its
        # peak clears everything seen so far in the session by a margin the chain's measured
        # ATM IV (nearest listed strike, bid/ask mids) cannot erase, and the session's own 90th
        # percentile, so "IV above its trailing 90th percentile" holds even when the trailing
        # window spans earlier sessions generated the same way.
        start = int(rng.uniform(8.0, min(20.0, minutes - 2.0)) * CELLS_PER_MINUTE)
        peak = start + int(20.0 / DT)
        day = iv * (1.0 + bump)
        so_far = float(np.max(day[:start]))
        level = max(1.15 * so_far, 1.05 * float(np.percentile(day, 90)))
        needed = level / iv[peak] - 1.0 - bump[peak]
        amplitude = max(rng.uniform(0.25, 0.45), needed)
        # Held (and creeping up) for three minutes, as after news: several bars see it on top.
        bump += _spike_kernel(cells, start, amplitude, 240.0, hold_s=180.0, hold_growth=0.06)
        spikes.append(start * DT)
    return iv * (1.0 + bump), sorted(spikes)
