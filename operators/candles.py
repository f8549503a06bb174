"""1 s and 1 min OHLCV candles built by event time, closed by a data-driven watermark.

One ``CandleState`` per instrument. The watermark is the largest ``ts_event`` seen for that
instrument minus the allowed lateness; a window closes once the watermark passes its end, so a
replay closes windows exactly as the live run did, however fast the machine is (DESIGN
invariant 1). A tick older than the watermark whose window already closed is *late*: it is
returned as a ``LateTick`` (the flow routes it to the DLQ and counts it), never dropped
silently and never allowed to change a published candle.

Volume of a tick is the increase of the instrument's cumulative volume over the largest value
seen so far (the exchange's own count, robust to ticks that aggregate several trades); the
first tick of an instrument contributes its ``last_qty``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from operators.events import Candle, Interval, Tick

INTERVAL_SECONDS: dict[Interval, int] = {"1s": 1, "1m": 60}
DEFAULT_INTERVALS: tuple[Interval, ...] = ("1s", "1m")
STATE_VERSION = 1


@dataclass(frozen=True)
class LateTick:
    """A tick that arrived after its window had closed; kept with the reason."""

    tick: Tick
    interval: Interval
    watermark: datetime

    @property
    def reason(self) -> str:
        return (
            f"LATE_TICK: ts_event={self.tick.ts_event.isoformat()} is before watermark "
            f"{self.watermark.isoformat()} and its {self.interval} window is closed"
        )


@dataclass
class _Window:
    """A candle under construction; the open/close are the earliest/latest ticks by ts_event."""

    start: datetime
    open: int
    high: int
    low: int
    close: int
    open_ts: datetime
    close_ts: datetime
    volume: int = 0
    notional: int = 0  # Σ price × volume, paise × units (exact)
    ticks: int = 0

    def add(self, price: int, ts: datetime, volume: int) -> None:
        if ts < self.open_ts:
            self.open, self.open_ts = price, ts
        if ts >= self.close_ts:
            self.close, self.close_ts = price, ts
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += volume
        self.notional += price * volume
        self.ticks += 1


@dataclass
class CandleState:
    """Per-instrument candle state: open windows, watermark, cumulative-volume high mark."""

    version: int = STATE_VERSION
    token: str = ""
    max_ts: datetime | None = None
    max_cum_volume: int | None = None
    open_windows: dict[tuple[Interval, datetime], _Window] = field(default_factory=dict)
    # Start of the latest window already emitted per interval: older ticks are late.
    closed_through: dict[Interval, datetime] = field(default_factory=dict)
    late_ticks: int = 0


def window_start(ts: datetime, interval: Interval) -> datetime:
    """Floor ``ts`` to its window start (aligned to whole seconds / minutes of the epoch)."""
    step = INTERVAL_SECONDS[interval]
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=ts.tzinfo)


@dataclass(frozen=True)
class CandleConfig:
    intervals: tuple[Interval, ...] = DEFAULT_INTERVALS
    allowed_lateness: timedelta = timedelta(seconds=2)


class CandleLogic:
    """Pure transition function ``(state, tick) -> (candles, late ticks)``."""

    def __init__(self, config: CandleConfig | None = None) -> None:
        self.config = config or CandleConfig()

    def on_tick(self, state: CandleState, tick: Tick) -> tuple[list[Candle], list[LateTick]]:
        late: list[LateTick] = []
        state.token = tick.token
        volume = self._tick_volume(state, tick)
        watermark = self._watermark(state)
        for interval in self.config.intervals:
            start = window_start(tick.ts_event, interval)
            end = start + timedelta(seconds=INTERVAL_SECONDS[interval])
            closed = state.closed_through.get(interval)
            already_closed = closed is not None and start <= closed
            if watermark is not None and (end <= watermark or already_closed):
                late.append(LateTick(tick=tick, interval=interval, watermark=watermark))
                continue
            key = (interval, start)
            window = state.open_windows.get(key)
            if window is None:
                state.open_windows[key] = _Window(
                    start=start,
                    open=tick.ltp,
                    high=tick.ltp,
                    low=tick.ltp,
                    close=tick.ltp,
                    open_ts=tick.ts_event,
                    close_ts=tick.ts_event,
                    volume=volume,
                    notional=tick.ltp * volume,
                    ticks=1,
                )
            else:
                window.add(tick.ltp, tick.ts_event, volume)
        if late:
            state.late_ticks += 1
        if state.max_ts is None or tick.ts_event > state.max_ts:
            state.max_ts = tick.ts_event
        return self._close_ready(state, tick), late

    def flush(self, state: CandleState, ts_recv: datetime) -> list[Candle]:
        """Close every open window (end of input)."""
        return self._close(state, ts_recv=ts_recv, everything=True)

    @staticmethod
    def _tick_volume(state: CandleState, tick: Tick) -> int:
        if state.max_cum_volume is None:
            state.max_cum_volume = tick.cum_volume
            return max(tick.last_qty, 0)
        increase = tick.cum_volume - state.max_cum_volume
        if increase > 0:
            state.max_cum_volume = tick.cum_volume
            return increase
        return 0

    def _watermark(self, state: CandleState) -> datetime | None:
        return None if state.max_ts is None else state.max_ts - self.config.allowed_lateness

    def _close_ready(self, state: CandleState, tick: Tick) -> list[Candle]:
        return self._close(state, ts_recv=tick.ts_recv, everything=False)

    def _close(self, state: CandleState, ts_recv: datetime, everything: bool) -> list[Candle]:
        watermark = self._watermark(state)
        ready = []
        for (interval, start), window in state.open_windows.items():
            end = start + timedelta(seconds=INTERVAL_SECONDS[interval])
            if everything or (watermark is not None and end <= watermark):
                ready.append((interval, start, end, window))
        ready.sort(key=lambda item: (item[2], INTERVAL_SECONDS[item[0]]))
        out = []
        for interval, start, end, window in ready:
            del state.open_windows[(interval, start)]
            previous = state.closed_through.get(interval)
            if previous is None or start > previous:
                state.closed_through[interval] = start
            out.append(_to_candle(window, interval, end, state.token, ts_recv))
        return out


def _to_candle(
    w: _Window, interval: Interval, end: datetime, token: str, ts_recv: datetime
) -> Candle:
    vwap = w.notional / w.volume if w.volume > 0 else float(w.close)
    return Candle(
        ts_event=end,
        ts_recv=ts_recv,
        token=token,
        interval=interval,
        start=w.start,
        open=w.open,
        high=w.high,
        low=w.low,
        close=w.close,
        volume=w.volume,
        vwap=vwap,
        ticks=w.ticks,
    )
