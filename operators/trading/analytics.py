"""Trading metrics from closed round trips, incrementally (live) and on demand (a run).

Input is any object with entry/exit times and gross, costs and net P&L in integer paise
(:class:`TradeRecord`; the portfolio's ``TradeClosed`` fits it, :class:`SimpleTrade` is a
minimal concrete record). Money sums stay exact integers; ratios are floats.

Definitions (``net`` = gross − costs of one round trip):

- trades, wins (net > 0), losses (net < 0); a break-even trade is neither;
- win rate = wins / trades;
- profit factor = Σ winning net / |Σ losing net| (``inf`` with wins and no losses; None when
  there are neither);
- expectancy = mean net per trade (= win rate × average win − loss rate × average loss);
- Sharpe, two flavours, neither scaled by capital (the ratio is scale-free):
  * ``sharpe_per_trade`` = mean(net) / stdev(net) over trades (sample stdev, n − 1), not
    annualised — comparable between runs with similar trade counts;
  * ``sharpe_daily`` = mean / stdev (n − 1) of the daily net P&L (by IST date of the exit,
    days with at least one closed trade) × √252 — the conventional annualised figure;
  both None with fewer than two observations or zero dispersion;
- max drawdown = the largest fall of cumulative net P&L from its running peak, with the
  curve starting at 0 before the first trade; trades are taken in exit-time order
  (``compute_metrics`` sorts; ``LiveMetrics`` takes them in the order given, which in a flow
  is event-time order).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec

from operators.events import to_rupees
from operators.market.sessions import ist_date

TRADING_DAYS_PER_YEAR = 252
METRICS_STATE_VERSION = 1


class TradeRecord(Protocol):
    """The minimum a round trip must expose for metrics (money in integer paise)."""

    @property
    def entry_ts(self) -> datetime: ...

    @property
    def exit_ts(self) -> datetime: ...

    @property
    def gross(self) -> int: ...

    @property
    def costs(self) -> int: ...

    @property
    def net(self) -> int: ...


class SimpleTrade(msgspec.Struct, frozen=True, kw_only=True):
    """A minimal concrete :class:`TradeRecord` (tests, reports, imports from the journal)."""

    entry_ts: datetime
    exit_ts: datetime
    gross: int
    costs: int
    net: int


@dataclass(frozen=True, slots=True)
class Metrics:
    """Run metrics; money in paise (``summary()`` gives rupees for display)."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    gross_pnl: int
    costs: int
    net_pnl: int
    avg_win: float | None
    avg_loss: float | None
    profit_factor: float | None
    expectancy: float | None
    sharpe_per_trade: float | None
    sharpe_daily: float | None
    max_drawdown: int
    days: int

    def summary(self) -> dict[str, float | int | None]:
        """Display form: money in rupees, rates as fractions."""

        def rs(x: float | None) -> float | None:
            return None if x is None else round(to_rupees(x), 2)

        return {
            "trades": self.trades,
            "wins": self.wins,
            "losses": self.losses,
            "win_rate": self.win_rate,
            "profit_factor": self.profit_factor,
            "sharpe_per_trade": self.sharpe_per_trade,
            "sharpe_daily": self.sharpe_daily,
            "max_drawdown_rs": rs(self.max_drawdown),
            "expectancy_rs": rs(self.expectancy),
            "avg_win_rs": rs(self.avg_win),
            "avg_loss_rs": rs(self.avg_loss),
            "gross_pnl_rs": rs(self.gross_pnl),
            "costs_rs": rs(self.costs),
            "net_pnl_rs": rs(self.net_pnl),
            "days": self.days,
        }


def _ratio_sharpe(total: int, total_sq: int, n: int) -> float | None:
    """mean / sample stdev from exact integer sums; None if n < 2 or no dispersion."""
    if n < 2:
        return None
    var_num = n * total_sq - total * total  # = n(n-1) * sample variance, exact
    if var_num <= 0:
        return None
    return (total / n) / math.sqrt(var_num / (n * (n - 1)))


def _profit_factor(won: int, lost: int) -> float | None:
    if lost == 0:
        return math.inf if won > 0 else None
    return won / lost


class MetricsState(msgspec.Struct, kw_only=True):
    """Running sums behind :class:`LiveMetrics` (small, serialisable, versioned)."""

    version: int = METRICS_STATE_VERSION
    trades: int = 0
    wins: int = 0
    losses: int = 0
    won: int = 0
    lost: int = 0
    gross: int = 0
    costs: int = 0
    net: int = 0
    net_sq: int = 0
    peak: int = 0
    max_drawdown: int = 0
    daily: dict[str, int] = msgspec.field(default_factory=dict)


def update_metrics_state(state: MetricsState, trade: TradeRecord) -> MetricsState:
    """Fold one closed trade into ``state`` (in place) and return it."""
    net = int(trade.net)
    state.trades += 1
    if net > 0:
        state.wins += 1
        state.won += net
    elif net < 0:
        state.losses += 1
        state.lost += -net
    state.gross += int(trade.gross)
    state.costs += int(trade.costs)
    state.net += net
    state.net_sq += net * net
    state.peak = max(state.peak, state.net)
    state.max_drawdown = max(state.max_drawdown, state.peak - state.net)
    day = ist_date(trade.exit_ts).isoformat()
    state.daily[day] = state.daily.get(day, 0) + net
    return state


def metrics_from_state(state: MetricsState) -> Metrics:
    n = state.trades
    days = list(state.daily.values())
    daily_sharpe = _ratio_sharpe(sum(days), sum(d * d for d in days), len(days))
    return Metrics(
        trades=n,
        wins=state.wins,
        losses=state.losses,
        win_rate=state.wins / n if n else None,
        gross_pnl=state.gross,
        costs=state.costs,
        net_pnl=state.net,
        avg_win=state.won / state.wins if state.wins else None,
        avg_loss=state.lost / state.losses if state.losses else None,
        profit_factor=_profit_factor(state.won, state.lost),
        expectancy=state.net / n if n else None,
        sharpe_per_trade=_ratio_sharpe(state.net, state.net_sq, n),
        sharpe_daily=(
            daily_sharpe * math.sqrt(TRADING_DAYS_PER_YEAR) if daily_sharpe is not None else None
        ),
        max_drawdown=state.max_drawdown,
        days=len(days),
    )


class LiveMetrics:
    """Metrics updated one closed trade at a time: O(1) per trade, O(days) to read."""

    def __init__(self, state: MetricsState | None = None) -> None:
        self.state = state if state is not None else MetricsState()

    def update(self, trade: TradeRecord) -> Metrics:
        update_metrics_state(self.state, trade)
        return self.metrics()

    def metrics(self) -> Metrics:
        return metrics_from_state(self.state)

    def snapshot(self) -> MetricsState:
        """A deep copy of the running state."""
        return msgspec.json.decode(msgspec.json.encode(self.state), type=MetricsState)


def _sharpe(values: Sequence[int]) -> float | None:
    if len(values) < 2:
        return None
    sd = statistics.stdev(values)
    return statistics.fmean(values) / sd if sd > 0 else None


def compute_metrics(trades: Iterable[TradeRecord]) -> Metrics:
    """Metrics of a whole run, computed directly (two-pass) from its trades."""
    ordered = sorted(trades, key=lambda t: (t.exit_ts, t.entry_ts))
    nets = [int(t.net) for t in ordered]
    n = len(nets)
    winners = [x for x in nets if x > 0]
    losers = [-x for x in nets if x < 0]
    by_day: dict[str, int] = {}
    for t in ordered:
        day = ist_date(t.exit_ts).isoformat()
        by_day[day] = by_day.get(day, 0) + int(t.net)
    daily = _sharpe(list(by_day.values()))
    equity, peak, max_dd = 0, 0, 0
    for x in nets:
        equity += x
        peak = max(peak, equity)
        max_dd = max(max_dd, peak - equity)
    return Metrics(
        trades=n,
        wins=len(winners),
        losses=len(losers),
        win_rate=len(winners) / n if n else None,
        gross_pnl=sum(int(t.gross) for t in ordered),
        costs=sum(int(t.costs) for t in ordered),
        net_pnl=sum(nets),
        avg_win=statistics.fmean(winners) if winners else None,
        avg_loss=statistics.fmean(losers) if losers else None,
        profit_factor=_profit_factor(sum(winners), sum(losers)),
        expectancy=statistics.fmean(nets) if nets else None,
        sharpe_per_trade=_sharpe(nets),
        sharpe_daily=daily * math.sqrt(TRADING_DAYS_PER_YEAR) if daily is not None else None,
        max_drawdown=max_dd,
        days=len(by_day),
    )


def equity_curve(trades: Iterable[TradeRecord]) -> list[tuple[datetime, int, int]]:
    """(exit time, cumulative net P&L, drawdown from peak) per trade, in exit order — for
    the report's equity and drawdown charts."""
    out: list[tuple[datetime, int, int]] = []
    equity, peak = 0, 0
    for t in sorted(trades, key=lambda t: (t.exit_ts, t.entry_ts)):
        equity += int(t.net)
        peak = max(peak, equity)
        out.append((t.exit_ts, equity, peak - equity))
    return out
