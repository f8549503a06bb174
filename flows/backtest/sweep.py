"""Parameter sweeps: one backtest per grid point in spawned processes, then ranked."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import replace
from typing import Any

from flows.backtest.engine import run_backtest
from flows.backtest.spec import (
    RANK_KEYS,
    BacktestEnv,
    BacktestError,
    BacktestResult,
    BacktestSpec,
    grid_points,
    strategy_specs,
)


def sweep_specs(
    spec: BacktestSpec, base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]
) -> list[tuple[dict[str, Any], BacktestSpec]]:
    """One spec per grid point: ``base`` overrides updated by the point, validated."""
    names = [s.name for s in spec.strategies]
    out = []
    for point in grid_points(grid):
        strategies = strategy_specs(names, {**base, **point})
        out.append((point, replace(spec, strategies=strategies)))
    return out


def _sweep_worker(spec: BacktestSpec, env: BacktestEnv, params: dict[str, Any]) -> BacktestResult:
    return run_backtest(spec, env, params=params)


def run_sweep(
    points: Sequence[tuple[dict[str, Any], BacktestSpec]],
    env: BacktestEnv,
    *,
    processes: int = 2,
    on_done: Callable[[BacktestResult], None] | None = None,
) -> list[BacktestResult]:
    """Run every grid point as its own backtest, ``processes`` at a time (spawned processes:
    Bytewax and librdkafka threads do not survive a fork). Results in grid order."""
    if processes < 1:
        msg = f"--processes must be ≥ 1, got {processes}"
        raise BacktestError(msg)
    results: dict[int, BacktestResult] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        futures: dict[Future[BacktestResult], int] = {
            pool.submit(_sweep_worker, s, env, p): i for i, (p, s) in enumerate(points)
        }
        for fut in as_completed(futures):
            result = fut.result()
            results[futures[fut]] = result
            if on_done is not None:
                on_done(result)
    return [results[i] for i in range(len(points))]


def rank(results: Iterable[BacktestResult], by: str = "net_pnl") -> list[BacktestResult]:
    """Best first by ``by`` (smallest first for max_drawdown); undefined figures last; ties
    broken by net P&L, then run id, so the order is stable."""
    if by not in RANK_KEYS:
        msg = f"cannot rank by {by!r}; choose one of {', '.join(RANK_KEYS)}"
        raise BacktestError(msg)
    sign = 1.0 if by == "max_drawdown" else -1.0

    def key(r: BacktestResult) -> tuple[int, float, float, str]:
        value = r.figure(by)
        return (value is None, sign * (value or 0.0), -float(r.metrics.net_pnl), r.run_id)

    return sorted(results, key=key)
