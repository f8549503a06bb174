"""Replay one full synthetic trading day from Kafka through the whole pipeline, and backtrader
on the same 1-minute data with the same momentum rules.

    SCALPFLOW_PG_DSN=... .venv/bin/python -m benchmarks.bench_replay_day [--partitions 6]

Prints: ticks, wall time, ticks/s and peak RSS of the scalpflow backtest (momentum_breakout,
Kafka replay → market stage → strategies → risk → execution → PostgreSQL), then backtrader's
time on the index's 1-minute candles of that run (EMA 9/21 cross, close > VWAP + 0.5 %,
volume > 1.5 × 20-bar average, 50 < RSI 14 < 70; target 0.5 %, stop 0.3 %, 2-minute exit) and
the ratio. backtrader trades the index itself, scalpflow the ATM option, so trade counts are
shown side by side rather than asserted equal.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import backtrader as bt

from benchmarks._common import ensure_ticks_topic, market_for, peak_rss_mb, pg_server
from connectors.postgres.db import connect, migrate, scratch_database
from connectors.postgres.instruments import save_instruments
from flows.backtest.engine import run_backtest
from flows.backtest.spec import BacktestEnv, BacktestSpec
from operators import _native
from operators.events import Bar, SignalGenerated
from operators.market.candles import CandleConfig
from operators.stages.market import MarketLogic, MarketState
from operators.stages.underlying import StrategySpec, UnderlyingConfig, UnderlyingLogic


class CandleFeed(bt.feed.DataBase):
    """Rows (naive UTC time, open, high, low, close, volume, session vwap) from a list."""

    lines = ("vwap",)
    params = (("rows", None),)

    def start(self) -> None:
        super().start()
        self._i = 0

    def _load(self) -> bool:
        rows = self.p.rows
        if self._i >= len(rows):
            return False
        ts, o, h, low, c, v, vw = rows[self._i]
        self._i += 1
        line: Any = self.lines  # backtrader builds the line objects in its metaclass
        line.datetime[0] = bt.date2num(ts)
        line.open[0], line.high[0], line.low[0] = o, h, low
        line.close[0], line.volume[0] = c, v
        line.openinterest[0] = 0.0
        line.vwap[0] = vw
        return True


class Momentum(bt.Strategy):
    """The issue's momentum breakout on bars (long only, like the built-in's CE leg)."""

    def __init__(self) -> None:
        self.fast = bt.ind.EMA(self.data.close, period=9)
        self.slow = bt.ind.EMA(self.data.close, period=21)
        self.cross = bt.ind.CrossOver(self.fast, self.slow)
        self.rsi = bt.ind.RSI(self.data.close, period=14)
        self.vol_avg = bt.ind.SMA(self.data.volume, period=20)
        self.entry_price = 0.0
        self.entry_bar = 0
        self.trades = 0

    def next(self) -> None:
        close = self.data.close[0]
        if self.position:
            up = close >= self.entry_price * 1.005
            down = close <= self.entry_price * 0.997
            if up or down or len(self) - self.entry_bar >= 2:
                self.close()
            return
        if (
            self.cross[0] > 0
            and close > self.data.vwap[0] * 1.005
            and self.data.volume[0] > 1.5 * self.vol_avg[0]
            and 50 < self.rsi[0] < 70
        ):
            self.buy(size=65)
            self.entry_price = close
            self.entry_bar = len(self)
            self.trades += 1


def index_candles(dsn: str, run_id: str, token: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT ts, open, high, low, close, volume, vwap FROM candles"
            " WHERE run_id = %s AND token = %s AND interval = '1m' ORDER BY ts",
            (run_id, token),
        ).fetchall()
    out, pv, vol = [], 0.0, 0
    for ts, o, h, low, c, v, vwap in rows:
        pv += float(vwap or c) * v
        vol += v
        session_vwap = pv / vol if vol else float(c)
        out.append((ts.replace(tzinfo=None), float(o), float(h), float(low), float(c), v,
                    session_vwap))  # fmt: skip
    return out


def run_scalpflow_on_bars(market: Any, instruments: list[Any]) -> tuple[float, int, int]:
    """scalpflow's momentum strategy stage alone over the index's 1-minute bars (built from
    its ticks by the market logic): like for like with backtrader (no regime gate, plain 0.3 %
    stop, bar data only). Returns (seconds, bars, entry signals)."""
    index = instruments[0].token
    candles = MarketLogic(CandleConfig(intervals=("1m",)))
    state = MarketState()
    bars = [
        b
        for t in market.ticks()
        if t.token == index
        for b in candles.on_tick(state, t)
        if isinstance(b, Bar)
    ]
    if state.candles.max_ts is not None:
        bars += candles.on_eof(state, ts_recv=state.candles.max_ts)
    spec = StrategySpec("momentum_breakout", {"regimes": None, "stop_atr_mult": 0.0})
    logic = UnderlyingLogic({i.token: i for i in instruments}, UnderlyingConfig(strategies=(spec,)))
    t0 = time.perf_counter()
    runtime = logic.new_runtime(instruments[0].underlying)
    out = [o for bar in bars for o in logic.on_item(runtime, bar)]
    out += logic.on_eof(runtime)
    elapsed = time.perf_counter() - t0
    entries = sum(1 for o in out if isinstance(o, SignalGenerated) and o.action == "ENTRY")
    return elapsed, len(bars), entries


def run_backtrader(rows: list[tuple[Any, ...]]) -> tuple[float, int]:
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(CandleFeed(rows=rows))
    cerebro.addstrategy(Momentum)
    cerebro.broker.setcash(10_000_000)
    (strategy,) = cerebro.run()
    return time.perf_counter() - t0, strategy.trades


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--topic", default=None)
    ap.add_argument("--minutes", type=int, default=375, help="session length (375 = full day)")
    ap.add_argument("--batch-size", type=int, default=BacktestEnv.batch_size)
    ap.add_argument(
        "--keep", action="store_true", help="write into SCALPFLOW_PG_DSN's database and keep it"
    )
    args = ap.parse_args()
    server = pg_server()
    # A fresh database per run (dropped afterwards): measuring into a database that earlier
    # runs filled, and that autovacuum is cleaning, made repeated runs drift by ~10%.
    with run_database(server, keep=args.keep) as dsn:
        run(args, dsn)


@contextmanager
def run_database(server_dsn: str, *, keep: bool) -> Iterator[str]:
    """A scratch database for the run, or with ``keep`` the server's own (migrated, kept)."""
    if keep:
        migrate(server_dsn)
        yield server_dsn
        return
    with scratch_database(server_dsn, "scalpflow_bench") as dsn:
        yield dsn


def run(args: argparse.Namespace, dsn: str) -> None:
    market = market_for(args.minutes, seed=args.seed)
    length = "" if args.minutes == 375 else f".m{args.minutes}"
    topic = args.topic or f"bench.day.s{args.seed}{length}.p{args.partitions}.md.ticks"
    total = ensure_ticks_topic(args.bootstrap, topic, market, args.partitions)
    instruments = market.instruments()
    save_instruments(dsn, instruments)
    spec = BacktestSpec(
        start=market.start,
        end=market.end + timedelta(minutes=1),
        strategies=(StrategySpec("momentum_breakout"),),
        topic=topic,
    )
    env = BacktestEnv(kafka_bootstrap=args.bootstrap, pg_dsn=dsn, batch_size=args.batch_size)
    run_id = f"bench-day-{datetime.now().strftime('%H%M%S')}"  # noqa: DTZ005 (a label)
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    result = run_backtest(spec, env, run_id=run_id, instruments={i.token: i for i in instruments})
    wall = time.perf_counter() - t0
    print(f"scalpflow replay: {total:,} messages ({result.records:,} replayed), "
          f"{len(instruments)} instruments, {args.partitions} partitions")  # fmt: skip
    print(f"  wall {wall:.1f}s (flow {result.elapsed_s:.1f}s), {total / wall:,.0f} ticks/s, "
          f"peak RSS {peak_rss_mb():.0f} MB (before {rss0:.0f} MB)")  # fmt: skip
    compiled = _native.compiled_modules()
    if compiled:
        form = f"{len(compiled)} modules compiled (mypyc)"
    else:
        form = f"pure Python ({_native.stale_reason() or 'SCALPFLOW_NATIVE=0'})"
    print(f"  operators: {form}")
    print(f"  momentum_breakout: {result.metrics.trades} trades, {result.fills} fills, "
          f"net Rs {result.metrics.net_pnl / 100:,.2f}")  # fmt: skip
    rows = index_candles(dsn, run_id, instruments[0].token)
    bt_time, bt_trades = run_backtrader(rows)
    print(f"backtrader on the same {len(rows)} index 1-min bars: {bt_time:.2f}s, "
          f"{bt_trades} trades")  # fmt: skip
    print(
        f"ratio scalpflow/backtrader wall time: {wall / bt_time:,.0f}x "
        f"(scalpflow replays every tick of 43 instruments; backtrader reads {len(rows)} bars)"
    )
    sf_time, sf_bars, sf_entries = run_scalpflow_on_bars(market, instruments)
    print(
        f"like for like on {sf_bars} index 1-min bars: scalpflow strategy stage {sf_time:.3f}s "
        f"({sf_entries} entries), backtrader {bt_time:.3f}s ({bt_trades} trades), "
        f"ratio {sf_time / bt_time:.2f}x"
    )


if __name__ == "__main__":
    main()
