"""Settings from the environment (prefix ``SCALPFLOW_``) or a ``.env`` file, via pydantic-settings.

Secrets are ``SecretStr``: they print as ``**********`` and never reach logs or the monitor.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Topics(BaseSettings):
    """Kafka topic names (see DESIGN.md); override e.g. for a run-scoped namespace."""

    model_config = SettingsConfigDict(env_prefix="SCALPFLOW_TOPIC_", frozen=True)

    ticks: str = "md.ticks"
    dlq: str = "md.dlq"
    bars: str = "md.bars"
    regime: str = "ai.regime"
    ai_state: str = "ai.state"
    signals: str = "trade.signals"
    orders: str = "trade.orders"
    fills: str = "trade.fills"
    risk: str = "risk.events"
    control: str = "ctl.risk"  # operator commands (`scalpflow risk reset`), read by accounts


class Settings(BaseSettings):
    """Connection and run settings; every field can be set as ``SCALPFLOW_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SCALPFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    pg_dsn: SecretStr | None = Field(
        default=None, description="PostgreSQL DSN; unset means the embedded server (demo)"
    )
    data_dir: Path = Path(".scalpflow")
    models_dir: Path = Field(
        default=Path("models"), description="Regime models from `scalpflow ai train`"
    )
    recovery_dir: Path | None = Field(
        default=None, description="Recovery store; default data_dir/recovery/<run id>"
    )
    snapshot_interval_s: int = Field(
        default=5, ge=1, description="Seconds between recovery snapshots (Bytewax epochs)"
    )
    ticks_partitions: int = Field(default=3, ge=1)
    source_batch_size: int = Field(default=1000, ge=1)
    allowed_lateness_ms: int = Field(default=2000, ge=0)
    feed_lag_threshold_ms: int = Field(default=500, ge=1)
    account: str = "paper"
    capital_rupees: float = Field(default=500_000.0, gt=0)
    # How long a PostgreSQL outage is ridden out (the flow waits, then writes what it holds)
    # before the run stops with a clear message; retries back off up to 10 s apart.
    pg_retry_budget_s: float = Field(default=600.0, ge=0)
    # live runs: release by input watermarks (issue 19); False: by bounded lateness, as before
    input_watermarks: bool = True
    ui_port: int = 8501
    # Interface the monitor and the /metrics endpoints listen on; 0.0.0.0 exposes them
    bind_address: str = "127.0.0.1"
    topics: Topics = Field(default_factory=Topics)

    def dsn(self) -> str | None:
        return self.pg_dsn.get_secret_value() if self.pg_dsn is not None else None
