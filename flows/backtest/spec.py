"""What a backtest is: its spec (range, strategies, parameters), environment and result.

The parsing of ``--from``/``--to``, ``--params`` and ``--sweep`` lives here too; ``scalpflow
run`` reads its strategy options with the same functions."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flows.config.accounts import AccountSpec, default_accounts
from flows.config.run_config import RunConfig
from flows.config.settings import Topics
from flows.errors import FlowError
from operators.stages.underlying import StrategySpec
from operators.strategies.base import StrategyError, parse_param_overrides
from operators.strategies.registry import create_strategy
from operators.trading.analytics import Metrics

Progress = Callable[[int], None]

RUN_PREFIX = "bt-"
# Tables a backtest writes, each keyed by run_id. The journal hash covers the decisions and
# their consequences; market data (candles, indicators, analytics) is left out.
RANK_KEYS: tuple[str, ...] = (
    "net_pnl",
    "sharpe",
    "sharpe_daily",
    "profit_factor",
    "win_rate",
    "expectancy",
    "max_drawdown",
)


class BacktestError(FlowError, RuntimeError):
    """A backtest cannot run as asked; the message is one line for the user."""


@dataclass(frozen=True)
class BacktestSpec:
    """What to backtest. Everything here (and the regime model's version) is hashed."""

    start: datetime
    end: datetime
    strategies: tuple[StrategySpec, ...]
    topic: str = "md.ticks"
    account: str = "paper"
    capital_rupees: float = 500_000.0
    allowed_lateness_ms: int = 2_000
    accounts: tuple[AccountSpec, ...] = ()  # from an accounts file; empty: the one above
    feed_lag_threshold_ms: int = 500

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            msg = f"--from/--to must carry a time zone: {self.start} .. {self.end}"
            raise BacktestError(msg)
        if self.end <= self.start:
            msg = f"empty range: --to {self.end.isoformat()} is not after --from"
            msg += f" {self.start.isoformat()}"
            raise BacktestError(msg)
        if not self.strategies:
            msg = "no strategy to backtest"
            raise BacktestError(msg)

    def run_config(self, run_id: str = "", pg_dsn: str | None = None) -> RunConfig:
        """This backtest as a :class:`~flows.config.run_config.RunConfig` (the live run's shape)."""
        accounts = self.accounts or default_accounts(
            self.account, self.capital_rupees, self.strategies
        )
        return RunConfig(
            kind="backtest",
            run_id=run_id,
            source={"from": self.start.isoformat(), "to": self.end.isoformat()},
            accounts=accounts,
            allowed_lateness_ms=self.allowed_lateness_ms,
            feed_lag_threshold_ms=self.feed_lag_threshold_ms,
            topics=Topics(ticks=self.topic),
            pg_dsn=pg_dsn,
        )

    def config(self, model_version: str | None) -> dict[str, Any]:
        """The JSON-able configuration recorded in ``runs`` and hashed into the run id: the
        run config's record (every account's whole configuration, every operator default)."""
        return self.run_config().record(model_version)


@dataclass(frozen=True)
class BacktestEnv:
    """Where a backtest reads and writes (not part of the config hash)."""

    kafka_bootstrap: str
    pg_dsn: str
    models_dir: str | None = None
    batch_size: int = 1_000
    buffer_size: int = 2_000


@dataclass(frozen=True)
class BacktestResult:
    """One finished backtest: identity, figures and fingerprints of its output."""

    run_id: str
    config_hash: str
    metrics: Metrics
    records: int
    fills: int
    fills_hash: str
    journal_hash: str
    table_hashes: Mapping[str, str]
    elapsed_s: float
    params: Mapping[str, Any] = field(default_factory=dict)
    # Σ contract-note charges − Σ per-fill estimates over the run's days, paise (issue 15):
    # the metrics are per round trip, on the estimates; the run's net as the notes have it is
    # ``metrics.net_pnl − charges_true_up``.
    charges_true_up: int = 0

    def figure(self, key: str) -> float | None:
        """A metric by ranking name (``RANK_KEYS``), None when undefined."""
        m = self.metrics
        value: float | int | None = {
            "net_pnl": m.net_pnl,
            "sharpe": m.sharpe_per_trade,
            "sharpe_daily": m.sharpe_daily,
            "profit_factor": m.profit_factor,
            "win_rate": m.win_rate,
            "expectancy": m.expectancy,
            "max_drawdown": m.max_drawdown,
        }[key]
        return None if value is None else float(value)


def derive_run_id(digest: str) -> str:
    return f"{RUN_PREFIX}{digest[:12]}"


def parse_time(value: str, flag: str) -> datetime:
    """An ISO time for --from/--to; a naive time is read as IST (the exchange's clock)."""
    from operators.market.sessions import IST

    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{flag} must be an ISO time such as 2026-07-08T09:15+05:30, got {value!r}"
        raise BacktestError(msg) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=IST)


def split_top_level(text: str) -> list[str]:
    """Split ``a,[b,c],"d,e"`` on commas outside brackets and quotes."""
    parts: list[str] = []
    depth, quoted = 0, False
    current: list[str] = []
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{":
            depth += 1
        elif not quoted and ch in "]}":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_sweep(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["stop_pct=0.2,0.3", "regimes=null,[\\"TRENDING\\"]"]`` → values per key (JSON each)."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not values.strip():
            msg = f"--sweep expects key=v1,v2,..., got {pair!r}"
            raise BacktestError(msg)
        name = key.strip()
        grid[name] = [parse_param_overrides([f"{name}={v}"])[name] for v in split_top_level(values)]
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of a sweep grid, in a stable order (keys sorted)."""
    keys = sorted(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def load_params_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        msg = f"cannot read --params file {path}: {exc.strerror or exc}"
        raise BacktestError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"--params file {path} is not JSON: {exc}"
        raise BacktestError(msg) from exc
    if not isinstance(data, dict):
        msg = f"--params file {path} must hold a JSON object, got {type(data).__name__}"
        raise BacktestError(msg)
    return data


def strategy_specs(names: Sequence[str], overrides: Mapping[str, Any]) -> tuple[StrategySpec, ...]:
    """Strategy specs with their parameter overrides, validated now (not inside the flow).

    With one strategy a key applies to it; with several, keys are ``strategy.key``.
    """
    if not names:
        msg = "name at least one --strategy"
        raise BacktestError(msg)
    if len(set(names)) != len(names):
        msg = f"a strategy is named twice: {list(names)}"
        raise BacktestError(msg)
    per: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in overrides.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix in per:
            per[prefix][rest] = value
        elif len(names) == 1:
            per[names[0]][key] = value
        else:
            msg = f"parameter {key!r} is ambiguous with several strategies: write strategy.{key}"
            raise BacktestError(msg)
    specs = tuple(StrategySpec(n, per[n]) for n in names)
    for spec in specs:
        try:
            create_strategy(spec.name, dict(spec.params))
        except (StrategyError, ValueError) as exc:
            first = str(exc).strip().splitlines()
            msg = f"strategy {spec.name!r}: {' '.join(line.strip() for line in first)}"
            raise BacktestError(msg) from exc
    return specs
