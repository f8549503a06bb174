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

Per tick the hot path is a few comparisons: each interval's current window bounds are cached in
the state (recomputed only when a tick leaves them), a window that is still open takes the tick
without any lateness test (an open window can be neither behind the watermark nor already
closed), and open windows are only scanned when the watermark passes the earliest open end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mypy_extensions import mypyc_attr

from operators import _native
from operators.events import Candle, Interval, Tick

INTERVAL_SECONDS: dict[Interval, int] = {"1s": 1, "1m": 60}
DEFAULT_INTERVALS: tuple[Interval, ...] = ("1s", "1m")
STATE_VERSION = 2

# Between these instants ``int(ts.timestamp())`` is the exact floor of a UTC timestamp (the
# float keeps every microsecond and int() truncates towards the floor), so window starts can be
# derived by plain datetime arithmetic there (window_start's fast path, CandleState.spans).
_EXACT_FROM = datetime(1970, 1, 1, tzinfo=UTC)
_EXACT_UNTIL = datetime(2200, 1, 1, tzinfo=UTC)


@mypyc_attr(allow_interpreted_subclasses=True)
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


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class _Window:
    """A candle under construction; the open/close are the earliest/latest ticks by ts_event."""

    interval: Interval
    start: datetime
    end: datetime
    open: int
    high: int
    low: int
    close: int
    open_ts: datetime
    close_ts: datetime
    volume: int = 0
    notional: int = 0  # Σ price × volume, paise × units (exact)
    ticks: int = 0


@mypyc_attr(allow_interpreted_subclasses=True)
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
    # max_ts - allowed lateness (None before the first tick).
    watermark: datetime | None = None
    # Earliest end among open windows: nothing can close before the watermark reaches it.
    next_end: datetime | None = None
    # Per interval, the last UTC window computed: (start, end, open_windows key); a tick inside
    # it (or in the next one) needs no window_start call.
    spans: dict[Interval, tuple[datetime, datetime, tuple[Interval, datetime]]] = field(
        default_factory=dict
    )


def window_start(ts: datetime, interval: Interval) -> datetime:
    """Floor ``ts`` to its window start (aligned to whole seconds / minutes of the epoch)."""
    step = INTERVAL_SECONDS[interval]
    if ts.tzinfo is UTC and type(ts) is datetime and _EXACT_FROM <= ts < _EXACT_UNTIL:
        # Same value, tzinfo and fold (0) as the epoch formula below, without the float trip.
        if step == 1:
            return ts - timedelta(microseconds=ts.microsecond)
        if step == 60:
            return ts - timedelta(seconds=ts.second, microseconds=ts.microsecond)
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=ts.tzinfo)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class CandleConfig:
    intervals: tuple[Interval, ...] = DEFAULT_INTERVALS
    allowed_lateness: timedelta = timedelta(seconds=2)


@mypyc_attr(allow_interpreted_subclasses=True)
class CandleLogic:
    """Pure transition function ``(state, tick) -> (candles, late ticks)``."""

    def __init__(self, config: CandleConfig | None = None) -> None:
        self.config = config or CandleConfig()
        self._lateness = self.config.allowed_lateness
        self._steps = tuple(
            (interval, timedelta(seconds=INTERVAL_SECONDS[interval]))
            for interval in self.config.intervals
        )

    def on_tick(self, state: CandleState, tick: Tick) -> tuple[list[Candle], list[LateTick]]:
        late: list[LateTick] = []
        state.token = tick.token
        ts = tick.ts_event
        price = tick.ltp
        cum = tick.cum_volume
        top = state.max_cum_volume
        if top is None:
            state.max_cum_volume = cum
            volume = max(tick.last_qty, 0)
        elif cum > top:
            state.max_cum_volume = cum
            volume = cum - top
        else:
            volume = 0
        watermark = state.watermark
        windows = state.open_windows
        spans = state.spans
        utc = ts.tzinfo is UTC  # spans hold UTC windows within [_EXACT_FROM, _EXACT_UNTIL) only
        for interval, step in self._steps:
            span = spans.get(interval)
            if utc and span is not None and span[0] <= ts < span[1]:
                start, end, key = span
            else:
                if utc and span is not None and span[1] <= ts < span[1] + step:
                    start = span[1]  # the next window: its start is this one's end
                else:
                    start = window_start(ts, interval)
                end = start + step
                key = (interval, start)
                if utc and _EXACT_FROM <= ts < _EXACT_UNTIL:
                    spans[interval] = (start, end, key)
            window = windows.get(key)
            if window is not None:  # open, hence neither behind the watermark nor closed
                # the window update, inline: this runs for every tick and interval
                if ts < window.open_ts:
                    window.open, window.open_ts = price, ts
                if ts >= window.close_ts:
                    window.close, window.close_ts = price, ts
                if price > window.high:
                    window.high = price
                elif price < window.low:
                    window.low = price
                window.volume += volume
                window.notional += price * volume
                window.ticks += 1
                continue
            if watermark is not None:
                closed = state.closed_through.get(interval)
                if end <= watermark or (closed is not None and start <= closed):
                    late.append(LateTick(tick=tick, interval=interval, watermark=watermark))
                    continue
            windows[key] = _Window(
                interval=interval,
                start=start,
                end=end,
                open=price,
                high=price,
                low=price,
                close=price,
                open_ts=ts,
                close_ts=ts,
                volume=volume,
                notional=price * volume,
                ticks=1,
            )
            if state.next_end is None or end < state.next_end:
                state.next_end = end
        if late:
            state.late_ticks += 1
        if state.max_ts is None or ts > state.max_ts:
            state.max_ts = ts
            watermark = state.watermark = ts - self._lateness
            if state.next_end is not None and state.next_end <= watermark:
                return self._close(state, tick.ts_recv, watermark), late
        return [], late

    def flush(self, state: CandleState, ts_recv: datetime) -> list[Candle]:
        """Close every open window (end of input)."""
        return self._close(state, ts_recv, None)

    def close_through(self, state: CandleState, at: datetime) -> list[Candle]:
        """Close the windows ending at or before ``at``, each received at its own end.

        For a caller whose ticks are already released in event-time order (the strategy
        stage): nothing before ``at`` can still come, so a window has no lateness to wait
        out, and a decision on it is taken at its end, on what was known before it (not on
        the ticks of the lateness after it)."""
        if state.next_end is None or state.next_end > at:
            return []
        return self._close(state, None, at)

    @staticmethod
    def _close(
        state: CandleState, ts_recv: datetime | None, watermark: datetime | None
    ) -> list[Candle]:
        """Emit the windows ending at or before ``watermark`` (all if None), by end then size;
        ``ts_recv`` None: each candle's is its window's end."""
        windows = state.open_windows
        ready: list[_Window] = []
        next_end: datetime | None = None
        for w in windows.values():
            if watermark is None or w.end <= watermark:
                ready.append(w)
            elif next_end is None or w.end < next_end:
                next_end = w.end
        state.next_end = next_end
        if len(ready) > 1:
            ready.sort(key=lambda w: (w.end, INTERVAL_SECONDS[w.interval]))
        out = []
        closed_through = state.closed_through
        token = state.token
        for w in ready:
            del windows[(w.interval, w.start)]
            previous = closed_through.get(w.interval)
            if previous is None or w.start > previous:
                closed_through[w.interval] = w.start
            out.append(_to_candle(w, token, w.end if ts_recv is None else ts_recv))
        return out


def _to_candle(w: _Window, token: str, ts_recv: datetime) -> Candle:
    vwap = w.notional / w.volume if w.volume > 0 else float(w.close)
    return Candle(
        ts_event=w.end,
        ts_recv=ts_recv,
        token=token,
        interval=w.interval,
        start=w.start,
        open=w.open,
        high=w.high,
        low=w.low,
        close=w.close,
        volume=w.volume,
        vwap=vwap,
        ticks=w.ticks,
    )


_native.picklable(LateTick, _Window, CandleState, CandleConfig, CandleLogic)
