"""The synthetic market: determinism, market-shape invariants, regime truth, planted
conditions (checked with TA-Lib and vollib) and fault injection."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter, defaultdict
from datetime import UTC, date, time, timedelta

import msgspec
import numpy as np
import pytest
import talib
from vollib.black.implied_volatility import implied_volatility

from connectors.feeds.synthetic import (
    CORRUPT_KINDS,
    FAULT_KINDS,
    UNKNOWN_TOKEN,
    FaultConfig,
    SyntheticConfig,
    SyntheticMarket,
)
from operators.events import Tick
from operators.market.sessions import session_close, session_open, years_to_expiry

RATE = 0.065
SHORT = SyntheticConfig(seed=11, duration_minutes=6, strikes_each_side=3, tick_rate_scale=0.5)


def digest(market: SyntheticMarket) -> str:
    h = hashlib.sha256()
    for msg in market.raw_messages():
        h.update(msg.key)
        h.update(msg.value)
    return h.hexdigest()


@pytest.fixture(scope="module")
def short_market() -> SyntheticMarket:
    return SyntheticMarket(SHORT)


@pytest.fixture(scope="module")
def short_ticks(short_market: SyntheticMarket) -> list[Tick]:
    return list(short_market.ticks())


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes() -> None:
    assert digest(SyntheticMarket(SHORT)) == digest(SyntheticMarket(SHORT))


def test_different_seed_or_date_gives_different_bytes() -> None:
    base = digest(SyntheticMarket(SHORT))
    other_seed = SyntheticConfig(**{**SHORT.__dict__, "seed": 12})
    other_date = SyntheticConfig(**{**SHORT.__dict__, "date": date(2026, 1, 7)})
    assert digest(SyntheticMarket(other_seed)) != base
    assert digest(SyntheticMarket(other_date)) != base


def test_index_path_does_not_depend_on_chain_size() -> None:
    small = SyntheticConfig(seed=3, duration_minutes=3, strikes_each_side=1)
    large = SyntheticConfig(seed=3, duration_minutes=3, strikes_each_side=4)
    idx_small = [t for t in SyntheticMarket(small).ticks() if t.token == "26000"]
    idx_large = [t for t in SyntheticMarket(large).ticks() if t.token == "26000"]
    assert idx_small == idx_large
    assert len(idx_small) > 100


def test_ticks_are_the_wire_decoded_when_clean(
    short_market: SyntheticMarket, short_ticks: list[Tick]
) -> None:
    decoder = msgspec.json.Decoder(Tick)
    raw = list(short_market.raw_messages())
    assert [decoder.decode(m.value) for m in raw] == short_ticks
    assert [m.key.decode() for m in raw] == [t.token for t in short_ticks]
    assert all(m.fault is None for m in raw)
    first = short_ticks[0].ts_event
    assert raw[0].timestamp_ms == int(first.timestamp() * 1000)
    assert len(short_market) == len(short_ticks) == short_market.raw_count


# ---------------------------------------------------------------- instruments


def test_instrument_chain_shape() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=1, date=date(2026, 1, 8), duration_minutes=1))
    instruments = market.instruments()
    index, options = instruments[0], instruments[1:]
    assert (index.token, index.exchange, index.kind) == ("26000", "NSE", "INDEX")
    assert len(options) == 42
    assert len({i.token for i in instruments}) == 43
    strikes = sorted({o.strike for o in options})
    assert len(strikes) == 21
    assert set(np.diff(strikes)) == {50 * 100}
    for o in options:
        assert o.expiry == date(2026, 1, 13)  # next Tuesday
        assert o.lot_size == 65
        assert o.exchange == "NFO"
        assert o.token.isdigit()
        assert len(o.token) == 8
        assert o.symbol == f"NIFTY13JAN26{o.strike // 100}{o.kind}"
    atm = strikes[10] / 100
    first_index = next(iter(market.ticks()))
    assert abs(first_index.ltp / 100 - atm) <= 25


def test_expiry_is_the_day_itself_on_a_tuesday() -> None:
    tuesday = date(2026, 1, 6)
    market = SyntheticMarket(SyntheticConfig(seed=2, date=tuesday, strikes_each_side=1))
    assert {i.expiry for i in market.instruments()[1:]} == {tuesday}


# ---------------------------------------------------------------- market shape


def test_prices_on_grid_and_books_sane(short_ticks: list[Tick]) -> None:
    for t in short_ticks:
        assert t.ltp > 0
        assert t.ltp % 5 == 0
        if t.token == "26000":
            assert t.bid == t.ask == t.bid_qty == t.ask_qty == 0
            assert t.exchange == "NSE"
        else:
            assert t.bid % 5 == 0
            assert t.ask % 5 == 0
            assert 5 <= t.bid < t.ask
            assert t.bid_qty > 0
            assert t.ask_qty > 0
            assert t.bid_qty % 65 == 0
            assert t.last_qty % 65 == 0
            assert t.oi > 0


def test_timestamps_in_session_ordered_with_latency(short_ticks: list[Tick]) -> None:
    start = session_open(SHORT.date)
    end = start + timedelta(minutes=SHORT.duration_minutes or 0)
    previous = start
    for t in short_ticks:
        assert t.ts_event.tzinfo is not None
        assert t.ts_event.utcoffset() == timedelta(0)
        assert start <= t.ts_event < end
        assert t.ts_event >= previous
        previous = t.ts_event
        lag_ms = (t.ts_recv - t.ts_event) / timedelta(milliseconds=1)
        assert 5.0 <= lag_ms <= 80.0


def test_later_start_time_window() -> None:
    cfg = SyntheticConfig(
        seed=4,
        start_time=time(14, 0),
        duration_minutes=90,
        strikes_each_side=1,
        tick_rate_scale=0.2,
    )
    ticks = list(SyntheticMarket(cfg).ticks())
    assert ticks[0].ts_event == session_close(cfg.date) - timedelta(minutes=90)
    assert ticks[-1].ts_event < session_close(cfg.date)
    assert ticks[0].cum_volume > 0  # volume traded before the window is carried in


def test_cumulative_volume_and_sequence_per_instrument(short_ticks: list[Tick]) -> None:
    last: dict[str, Tick] = {}
    for t in short_ticks:
        prev = last.get(t.token)
        if prev is not None:
            assert t.seq == prev.seq + 1
            assert t.cum_volume == prev.cum_volume + t.last_qty
            if t.last_qty == 0:
                assert t.ltp == prev.ltp  # quote-only update keeps the last trade price
        last[t.token] = t


def test_put_call_parity_within_the_spread(
    short_market: SyntheticMarket, short_ticks: list[Tick]
) -> None:
    """Pair CE/PE quotes priced off the same index print; C − P ≈ S − K·e^(−rT)."""
    by_token = {i.token: i for i in short_market.instruments()}
    index_print = 0
    spot = 0.0
    last: dict[tuple[int, str], tuple[int, float, float]] = {}
    checked = 0
    for t in short_ticks:
        inst = by_token[t.token]
        if inst.kind == "INDEX":
            index_print += 1
            spot = t.ltp / 100
            continue
        assert inst.expiry is not None
        last[(inst.strike, inst.kind)] = (index_print, t.mid, (t.ask - t.bid) / 2)
        ce = last.get((inst.strike, "CE"))
        pe = last.get((inst.strike, "PE"))
        if ce is None or pe is None or not ce[0] == pe[0] == index_print:
            continue
        tau = years_to_expiry(t.ts_event, inst.expiry)
        parity = (spot - inst.strike / 100 * math.exp(-RATE * tau)) * 100
        assert abs(ce[1] - pe[1] - parity) <= ce[2] + pe[2] + 5
        checked += 1
    assert checked > 2000


def test_tick_rates_and_spreads_by_moneyness() -> None:
    cfg = SyntheticConfig(seed=5, duration_minutes=10, strikes_each_side=10)
    market = SyntheticMarket(cfg)
    instruments = market.instruments()
    counts: Counter[str] = Counter()
    spreads: dict[str, list[float]] = defaultdict(list)
    for t in market.ticks():
        counts[t.token] += 1
        if t.has_book:
            spreads[t.token].append((t.ask - t.bid) / t.mid)
    seconds = 600
    index_rate = counts["26000"] / seconds
    assert 0.7 <= index_rate <= 2.5
    atm_ce, atm_pe = instruments[21], instruments[22]
    far = [instruments[1], instruments[2], instruments[-2], instruments[-1]]
    assert min(counts[atm_ce.token], counts[atm_pe.token]) / seconds > 3.0
    assert max(counts[i.token] for i in far) < min(counts[atm_ce.token], counts[atm_pe.token]) / 5
    cheap_far = [i for i in far if i.kind == ("CE" if i.strike > atm_ce.strike else "PE")]
    for i in cheap_far:  # far OTM: cheap, so the relative spread is much wider than ATM's
        assert np.mean(spreads[i.token]) > 3 * np.mean(spreads[atm_ce.token])


# ---------------------------------------------------------------- regimes and scenarios


def test_regime_truth_covers_every_minute_and_all_regimes() -> None:
    cfg = SyntheticConfig(seed=9)
    market = SyntheticMarket(cfg)
    truth = market.true_regimes()
    start = session_open(cfg.date)
    assert list(truth) == [start + timedelta(minutes=m) for m in range(375)]
    assert set(truth.values()) == {"TRENDING", "RANGING", "HIGH_VOL"}
    assert all(k.tzinfo == UTC for k in truth)
    short = SyntheticMarket(SHORT).true_regimes()
    assert len(short) == SHORT.duration_minutes


def _minute_bars(market: SyntheticMarket) -> dict[str, np.ndarray]:
    minutes = market.config.minutes
    close = np.full(minutes, np.nan)
    high = np.full(minutes, -np.inf)
    low = np.full(minutes, np.inf)
    vol = np.zeros(minutes)
    pv = np.zeros(minutes)
    iv: list[list[float]] = [[] for _ in range(minutes)]
    ce = market.instruments()[1]
    assert ce.kind == "CE"
    assert ce.expiry is not None
    spot = 0.0
    for t in market.ticks():
        k = int((t.ts_event - market.start).total_seconds() // 60)
        if t.token == "26000":
            spot = t.ltp / 100
            close[k] = spot
            high[k] = max(high[k], spot)
            low[k] = min(low[k], spot)
            vol[k] += t.last_qty
            pv[k] += spot * t.last_qty
        elif t.token == ce.token and k < 30:
            tau = years_to_expiry(t.ts_event, ce.expiry)
            fwd = spot * math.exp(RATE * tau)
            iv[k].append(implied_volatility(t.mid / 100, fwd, ce.strike / 100, RATE, tau, "c"))
    iv_med = np.array([np.median(x) if x else np.nan for x in iv[:30]])
    vwap = np.cumsum(pv) / np.cumsum(vol)
    return {"close": close, "high": high, "low": low, "vol": vol, "vwap": vwap, "iv": iv_med}


@pytest.mark.parametrize("seed", [0, 3])
def test_full_day_plants_every_strategy_condition(seed: int) -> None:
    """EMA 9/21 crosses with volume spikes, dips below VWAP with RSI < 30 and a volume spike,
    and an ATM IV above its trailing 90th percentile within the first 30 minutes."""
    market = SyntheticMarket(SyntheticConfig(seed=seed, strikes_each_side=0, tick_rate_scale=0.5))
    bars = _minute_bars(market)
    close, vol = bars["close"], bars["vol"]
    ema9, ema21 = talib.EMA(close, 9), talib.EMA(close, 21)
    side = np.sign(ema9 - ema21)
    crosses = np.flatnonzero((side[1:] != side[:-1]) & ~np.isnan(ema21[:-1])) + 1
    vol_avg = np.concatenate(([np.nan], talib.SMA(vol, 20)[:-1]))
    spike = vol > 1.5 * vol_avg
    crosses_with_spike = [c for c in crosses if spike[c - 1 : c + 2].any()]
    assert len(crosses_with_spike) >= 3

    rsi = talib.RSI(close, 14)
    dip_minutes = np.flatnonzero((close < bars["vwap"] * 0.998) & (rsi < 30) & spike)
    dip_events = np.count_nonzero(np.diff(dip_minutes) > 5) + (len(dip_minutes) > 0)
    assert dip_events >= 2, dip_minutes

    iv = bars["iv"]
    above = [k for k in range(8, 30) if iv[k] > np.nanpercentile(iv[:k], 90)]
    assert above, iv
    spike_minute = (market.scenario().iv_spikes[0] - market.start).total_seconds() / 60
    assert 8 <= spike_minute <= 20
    assert np.nanmax(iv[int(spike_minute) :]) > 1.1 * np.nanmax(iv[: int(spike_minute)])


@pytest.mark.parametrize(("seed", "day"), [(0, date(2026, 1, 5)), (3, date(2026, 7, 7))])
def test_planted_breakout_meets_every_momentum_condition(seed: int, day: date) -> None:
    """The planted breakout bar, checked with TA-Lib: EMA 9 crosses above EMA 21 there, the
    close is > 0.5 % above VWAP, volume > 1.5 x its 20-bar average, RSI(14) in 50-70 and
    ADX(14) > 25, inside a trending stretch; the day's range stays plausible."""
    cfg = SyntheticConfig(seed=seed, date=day, strikes_each_side=0, tick_rate_scale=0.3)
    market = SyntheticMarket(cfg)
    (breakout,) = market.scenario().breakouts
    k = int((breakout - market.start).total_seconds() // 60)
    assert market.true_regimes()[breakout] == "TRENDING"
    bars = _minute_bars(market)
    close, vol = bars["close"], bars["vol"]
    ema9, ema21 = talib.EMA(close, 9), talib.EMA(close, 21)
    crosses = [j for j in (k, k + 1) if ema9[j - 1] <= ema21[j - 1] and ema9[j] > ema21[j]]
    assert crosses, ema9[k - 3 : k + 2] - ema21[k - 3 : k + 2]
    j = crosses[0]
    assert close[j] > 1.005 * bars["vwap"][j]
    assert vol[j] > 1.5 * talib.SMA(vol, 20)[j]
    assert 50 <= talib.RSI(close, 14)[j] <= 70
    assert talib.ADX(bars["high"], bars["low"], close, 14)[j] > 25
    day_range = (np.nanmax(bars["high"]) - np.nanmin(bars["low"])) / close[0]
    assert 0.005 < day_range < 0.025


def test_index_tick_rate_and_volume_do_not_follow_the_chain_scale() -> None:
    """``index_tick_rate_scale`` sets the index's print rate alone; a minute's proxy volume
    follows the market's activity, not how many prints the feed sent."""

    def market(scale: float, index_scale: float | None = None) -> SyntheticMarket:
        cfg = SyntheticConfig(
            seed=6,
            duration_minutes=20,
            strikes_each_side=1,
            tick_rate_scale=scale,
            index_tick_rate_scale=index_scale,
        )
        return SyntheticMarket(cfg)

    def index(m: SyntheticMarket) -> list[Tick]:
        return [t for t in m.ticks() if t.token == "26000"]

    thin, mixed, full = market(0.1), market(0.1, 1.0), market(1.0)
    assert len(index(full)) > 6 * len(index(thin))
    assert index(mixed) == index(full)
    assert len(list(mixed.ticks())) < len(list(full.ticks())) / 4
    volume = [sum(t.last_qty for t in index(m)) for m in (thin, full)]
    assert 0.85 < volume[0] / volume[1] < 1.15
    with pytest.raises(ValueError, match="index_tick_rate_scale"):
        SyntheticConfig(index_tick_rate_scale=0.0)


def test_every_option_quotes_at_the_open_nearest_the_money_first() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=8, duration_minutes=1, strikes_each_side=4))
    first: dict[str, Tick] = {}
    for t in market.ticks():
        first.setdefault(t.token, t)
    options = market.instruments()[1:]
    assert all(first[o.token].ts_event - market.start < timedelta(milliseconds=1) for o in options)
    spot = first["26000"].ltp
    opening_order = sorted(options, key=lambda o: first[o.token].ts_event)
    assert abs(opening_order[0].strike - spot) == min(abs(o.strike - spot) for o in options)


def test_full_day_volume_and_generation() -> None:
    """The full chain day is 2M+ ticks, time-ordered; generation only (no Tick objects)."""
    market = SyntheticMarket(SyntheticConfig(seed=1)).generate()
    assert market.raw_count > 2_000_000
    t_us = market._wire.cols.t_us
    assert np.all(np.diff(t_us) >= 0)
    assert t_us[-1] < 375 * 60 * 1_000_000


# ---------------------------------------------------------------- faults


@pytest.fixture(scope="module")
def faulty_market() -> SyntheticMarket:
    cfg = SyntheticConfig(
        seed=21,
        duration_minutes=8,
        strikes_each_side=2,
        tick_rate_scale=0.5,
        faults=FaultConfig.every_kind(rate=0.004, windows=2),
    )
    return SyntheticMarket(cfg)


def test_no_faults_when_disabled(short_market: SyntheticMarket) -> None:
    counts = short_market.fault_counts()
    assert set(counts) == set(FAULT_KINDS)
    assert sum(counts.values()) == 0
    assert short_market.fault_windows() == []


def test_every_fault_kind_is_injected(faulty_market: SyntheticMarket) -> None:
    counts = faulty_market.fault_counts()
    assert all(counts[k] > 0 for k in FAULT_KINDS), counts
    raw = list(faulty_market.raw_messages())
    on_wire = Counter(m.fault for m in raw)
    for kind in FAULT_KINDS:
        if kind != "feed_gap":
            assert on_wire[kind] == counts[kind]
    assert len(raw) == faulty_market.raw_count
    assert len(faulty_market) == len(raw) - sum(counts[k] for k in CORRUPT_KINDS)


def test_corrupt_messages_are_really_corrupt(faulty_market: SyntheticMarket) -> None:
    decoder = msgspec.json.Decoder(Tick)
    tokens = {i.token for i in faulty_market.instruments()}
    for m in faulty_market.raw_messages():
        if m.fault == "invalid_json":
            with pytest.raises(msgspec.DecodeError):
                msgspec.json.decode(m.value)
        elif m.fault == "missing_field":
            assert isinstance(msgspec.json.decode(m.value), dict)
            with pytest.raises(msgspec.ValidationError):
                decoder.decode(m.value)
        elif m.fault is not None and m.fault in CORRUPT_KINDS:
            tick = decoder.decode(m.value)
            if m.fault == "crossed":
                assert tick.bid > tick.ask > 0
            elif m.fault == "off_grid":
                assert tick.bid % 5 != 0 or tick.ltp % 5 != 0
            elif m.fault == "negative_price":
                assert tick.ltp < 0
            elif m.fault == "unknown_token":
                assert tick.token == UNKNOWN_TOKEN not in tokens
        else:
            tick = decoder.decode(m.value)
            assert tick.token in tokens
            assert tick.ltp > 0
            assert tick.ltp % 5 == 0
            assert tick.bid <= tick.ask


def test_valid_faults_in_ticks(faulty_market: SyntheticMarket) -> None:
    ticks = list(faulty_market.ticks())
    windows = faulty_market.fault_windows()
    gaps = [w for w in windows if w.kind == "feed_gap"]
    blowouts = [w for w in windows if w.kind == "spread_blowout"]
    assert len(gaps) == 2
    assert len(blowouts) == 2
    for g in gaps:
        assert g.ticks > 0
        assert not any(g.start <= t.ts_event < g.end for t in ticks)
    wide = [t for t in ticks if t.has_book and any(b.start <= t.ts_event < b.end for b in blowouts)]
    assert wide
    assert np.median([t.ask - t.bid for t in wide]) >= 100

    duplicates = sum(1 for a, b in itertools.pairwise(ticks) if a == b)
    assert duplicates == faulty_market.fault_counts()["duplicate"]
    watermark = ticks[0].ts_event
    late = 0
    for t in ticks:
        if watermark - t.ts_event > timedelta(seconds=5):
            late += 1
        watermark = max(watermark, t.ts_event)
    # a late tick emitted at the very end of the session may lag the watermark by < 5 s
    injected = faulty_market.fault_counts()["late"]
    assert 0.9 * injected <= late <= injected
    assert all(t.bid <= t.ask and t.ltp > 0 for t in ticks)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="outside"):
        SyntheticConfig(start_time=time(8, 0))
    with pytest.raises(ValueError, match="ends after close"):
        SyntheticConfig(start_time=time(15, 0), duration_minutes=60)
    with pytest.raises(ValueError, match="crossed_rate"):
        FaultConfig(crossed_rate=0.9)
    with pytest.raises(ValueError, match="seed"):
        SyntheticConfig(seed=-1)


def test_the_same_strike_in_another_expiry_is_another_contract_token() -> None:
    """Tokens key Kafka, flow state and the instrument master: contracts must not share one."""
    this_week = {i.symbol: i.token for i in SyntheticMarket(SyntheticConfig(seed=1)).instruments()}
    next_week = SyntheticMarket(SyntheticConfig(seed=1, date=date(2026, 1, 14))).instruments()
    assert next_week[1].expiry != date(2026, 1, 13)
    assert not set(this_week.values()) & {i.token for i in next_week[1:]}
    again = {i.symbol: i.token for i in SyntheticMarket(SyntheticConfig(seed=9)).instruments()}
    common = this_week.keys() & again.keys()
    assert len(common) > 30
    assert all(again[k] == this_week[k] for k in common)  # a function of the contract only


def test_session_shorthand_and_the_index_candles() -> None:
    cfg = SyntheticConfig.session(3, date(2026, 7, 8), 5, strikes=1, rate=0.5, index_rate=1.0)
    assert cfg == SyntheticConfig(
        seed=3,
        date=date(2026, 7, 8),
        duration_minutes=5,
        strikes_each_side=1,
        tick_rate_scale=0.5,
        index_tick_rate_scale=1.0,
    )
    market = SyntheticMarket(cfg)
    candles = market.index_candles()
    # one closed candle a minute, the last one flushed by the last index tick
    assert [c.start for c in candles] == [market.start + timedelta(minutes=i) for i in range(5)]
    assert {(c.token, c.interval) for c in candles} == {(cfg.index_token, "1m")}
    index_ticks = [t for t in market.ticks() if t.token == cfg.index_token]
    assert sum(c.ticks for c in candles) == len(index_ticks)
