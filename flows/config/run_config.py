"""One run's whole configuration, built once and passed whole to every worker process.

``scalpflow run`` (live), ``scalpflow backtest`` and ``scalpflow demo`` all build a
:class:`RunConfig` with :func:`build_run_config` from the settings (``SCALPFLOW_*``), their
command-line options and an optional accounts file. Live workers get it as JSON in
``SCALPFLOW_FLOW_CONFIG`` and read it back with :meth:`RunConfig.from_json`, so no default is
repeated on the worker side; :meth:`RunConfig.pipeline` turns it into the flow's
``PipelineConfig``.

:meth:`RunConfig.record` is what the ``runs`` table stores and hashes: every parameter that can
change a decision (source range, accounts with their risk limits, adaptive settings and
strategies, candle lateness, feed-lag threshold, strategy isolation, the regime model's
version, and the operator defaults of execution, costs, fills, reorder lateness and feed
health that the flows do not yet expose as settings). Where a run reads and writes (DSN,
broker, processes, batch size, metrics address) is left out of the hash: it cannot change a
decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from flows.config.accounts import (
    AccountsFile,
    AccountSpec,
    Isolation,
    accounts_config,
    default_accounts,
)
from flows.config.accounts import strategy_specs as accounts_strategies
from flows.config.settings import Settings, Topics
from operators.stages.underlying import StrategySpec

if TYPE_CHECKING:
    from flows.pipeline import PipelineConfig
    from operators.ai.regime import RegimeModel

RunKind = Literal["live", "backtest", "demo"]


class RunConfig(BaseModel):
    """Frozen: built once per run (see module doc); equal configs record equal hashes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RunKind
    run_id: str
    # what the run reads: kind-specific and hashed (backtest: topic/from/to; demo: seed, ...)
    source: dict[str, Any] = Field(default_factory=dict)
    accounts: tuple[AccountSpec, ...] = Field(min_length=1)
    isolation: Isolation = Field(default_factory=Isolation)
    allowed_lateness_ms: int = Field(ge=0)
    feed_lag_threshold_ms: int = Field(ge=1)
    trading: bool = True
    tail: bool = False  # live: keep consuming, with the wall-clock heartbeat
    input_watermarks: bool = (
        True  # live Kafka: release by input watermarks (operators.stages.reorder)
    )
    # where the run reads and writes: not hashed
    pg_dsn: str | None = None
    kafka_bootstrap: str | None = None  # None: no Kafka outputs (demo, backtest)
    topics: Topics = Field(default_factory=Topics)
    processes: int = Field(default=1, ge=1)
    batch_size: int = Field(default=1000, ge=1)
    models_dir: str | None = None
    bind_address: str = "127.0.0.1"
    # PostgreSQL outages are ridden out this long, then the run stops (not a decision: unhashed)
    pg_retry_budget_s: float = Field(default=600.0, gt=0)

    # ------------------------------------------------------------------ serialisation
    def to_json(self) -> str:
        """For the worker processes (carries the DSN: an environment variable, not a log)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.model_validate_json(text)

    @property
    def strategies(self) -> tuple[StrategySpec, ...]:
        return accounts_strategies(self.accounts)

    def record(self, model_version: str | None) -> dict[str, Any]:
        """The JSON-able configuration stored in ``runs`` and hashed (see module doc)."""
        return {
            "kind": self.kind,
            **self.source,
            "topic": self.topics.ticks,
            "tail": self.tail,
            "trading": self.trading,
            "strategies": [
                {"name": s.name, "params": dict(sorted(s.params.items()))} for s in self.strategies
            ],
            "accounts": accounts_config(self.accounts),
            "isolation": self.isolation.model_dump(mode="json"),
            "allowed_lateness_ms": self.allowed_lateness_ms,
            "feed_lag_threshold_ms": self.feed_lag_threshold_ms,
            "input_watermarks": self.input_watermarks,
            "regime_model": model_version,
            "operator_defaults": operator_defaults(),
        }

    # ------------------------------------------------------------------ the flow's view
    def pipeline(
        self, *, regime_model: RegimeModel | None = None, metrics: bool = False
    ) -> PipelineConfig:
        """The dataflow's configuration (``flows.pipeline``) for this run."""
        from flows.pipeline import PipelineConfig
        from operators.market.candles import CandleConfig

        first = self.accounts[0]
        return PipelineConfig(
            run_id=self.run_id,
            pg_dsn=self.pg_dsn,
            kafka_bootstrap=self.kafka_bootstrap,
            topics=self.topics,
            candle=CandleConfig(allowed_lateness=timedelta(milliseconds=self.allowed_lateness_ms)),
            trading=self.trading,
            account=first.id,
            capital_rupees=first.capital_rupees,
            strategies=self.strategies,
            accounts=self.accounts,
            isolation=self.isolation,
            regime_model=regime_model,
            heartbeat=timedelta(seconds=1) if self.tail else None,
            db_partitions=self.processes,
            workers=self.processes,
            metrics=metrics,
            feed_lag_threshold_ms=float(self.feed_lag_threshold_ms),
            pg_retry_budget_s=self.pg_retry_budget_s,
            input_watermarks=self.input_watermarks,
        )


def operator_defaults() -> dict[str, Any]:
    """The operators' built-in parameters a run uses without a setting for them (execution
    latency, slippage, fill and cost models, the account stage's lateness, entry size,
    square-off time and feed-health rules), so a change of a default changes the hash."""
    from operators.stages.account import AccountConfig
    from operators.trading.execution import ExecutionConfig
    from operators.trading.feed_health import FeedHealthConfig

    fields = AccountConfig.__dataclass_fields__
    feed = FeedHealthConfig()
    return {
        "execution": _plain(ExecutionConfig()),
        "account_lateness_ms": fields["lateness"].default.total_seconds() * 1000,  # type: ignore[union-attr]
        "entry_lots": fields["entry_lots"].default,
        "square_off_at": fields["square_off_at"].default.isoformat(),  # type: ignore[union-attr]
        "mark_every_s": fields["mark_every"].default.total_seconds(),  # type: ignore[union-attr]
        "feed_lag_ticks": feed.lag_ticks,
        "feed_stall_after_s": feed.stall_after_s,
    }


def _plain(value: Any) -> Any:
    """Dataclasses and msgspec structs as dicts (with their type names), for hashing."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, **out}
    if isinstance(value, msgspec.Struct):
        names = value.__struct_fields__
        return {"type": type(value).__name__, **{n: _plain(getattr(value, n)) for n in names}}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if hasattr(value, "__dict__") and not callable(value):  # a plain model object
        return {"type": type(value).__name__, **_plain(dict(vars(value)))}
    return str(value)  # Decimal, date, time: their text is their value


def build_run_config(
    settings: Settings,
    *,
    kind: RunKind,
    run_id: str,
    strategies: Sequence[StrategySpec] = (),
    accounts_file: AccountsFile | None = None,
    source: dict[str, Any] | None = None,
    tail: bool = False,
    trading: bool = True,
    processes: int = 1,
    kafka_outputs: bool = False,
    pg_dsn: str | None = None,
    topics: Topics | None = None,
) -> RunConfig:
    """The one way every command builds its run config: settings + options + accounts file.

    Without an accounts file the run trades one account from ``SCALPFLOW_ACCOUNT`` and
    ``SCALPFLOW_CAPITAL_RUPEES`` with ``strategies`` (default: every built-in strategy).
    """
    if accounts_file is not None:
        accounts = accounts_file.accounts
        isolation = accounts_file.isolation
    else:
        from flows.pipeline import DEFAULT_STRATEGIES

        chosen = tuple(strategies) or DEFAULT_STRATEGIES
        accounts = default_accounts(settings.account, settings.capital_rupees, chosen)
        isolation = Isolation()
    return RunConfig(
        kind=kind,
        run_id=run_id,
        source=dict(source or {}),
        accounts=accounts,
        isolation=isolation,
        allowed_lateness_ms=settings.allowed_lateness_ms,
        feed_lag_threshold_ms=settings.feed_lag_threshold_ms,
        trading=trading,
        tail=tail,
        pg_dsn=pg_dsn if pg_dsn is not None else settings.dsn(),
        kafka_bootstrap=settings.kafka_bootstrap if kafka_outputs else None,
        topics=topics or settings.topics,
        processes=processes,
        batch_size=settings.source_batch_size,
        models_dir=str(settings.models_dir) if settings.models_dir else None,
        bind_address=settings.bind_address,
        pg_retry_budget_s=settings.pg_retry_budget_s,
        input_watermarks=settings.input_watermarks,
    )
