"""Accounts as configuration: who trades, with what capital, limits and strategies.

An accounts file (TOML) declares each user's paper book::

    [[accounts]]
    id = "alice"
    owner = "Alice"
    capital_rupees = 500000

    [accounts.limits]            # static risk limits (defaults = the single-account defaults)
    loss_per_trade_pct = 1.0
    daily_loss_pct = 3.0
    max_lots = 10
    gross_exposure_rupees = 500000
    net_delta = 1000

    [accounts.adaptive]          # any AdaptiveConfig field except account/strategies
    min_trades = 5

    [[accounts.strategies]]
    name = "momentum_breakout"
    params = { target_pct = 0.6 }

Without a file the run trades one account built from the settings (``SCALPFLOW_ACCOUNT``,
``SCALPFLOW_CAPITAL_RUPEES``, ``--strategy``): :func:`default_accounts`.

Liquidity across accounts (see NOTES.md): each account's simulator may take only its
``liquidity_share`` of a tick's volume cap (default ``1 / number of accounts``), so accounts
together never take more than one account could, and no account's fills depend on another's.

Errors name the file, the line and the field (:class:`AccountsFileError`); tomllib gives no
positions, so :func:`_line_of` finds the line of a pydantic error location in the text.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from flows.errors import FlowError
from operators.ai.adaptive import AdaptiveConfig
from operators.stages.account import AccountConfig
from operators.stages.underlying import StrategySpec
from operators.strategies.base import StrategyError, strategy_key
from operators.strategies.registry import load_strategy_class
from operators.trading.execution import ExecutionConfig
from operators.trading.feed_health import FeedHealthConfig
from operators.trading.risk_limits import RiskLimits

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class AccountsFileError(FlowError, ValueError):
    """An accounts file that cannot be used; the message is one line: file:line: field: why."""


class AccountLimits(BaseModel):
    """The static limits of one account (names as a user would say them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loss_per_trade_pct: float = Field(default=1.0, gt=0, le=100)
    daily_loss_pct: float = Field(default=3.0, gt=0, le=100)
    max_lots: int = Field(default=10, gt=0)
    gross_exposure_rupees: float | None = Field(default=None, gt=0)  # None: the capital
    net_delta: float = Field(default=1000.0, gt=0)
    kill_drawdown_pct: float = Field(default=5.0, gt=0, le=100)


class StrategyEntry(BaseModel):
    """One strategy an account runs: registry name (or ``module:Class``) and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _loadable(self) -> StrategyEntry:
        try:
            load_strategy_class(self.name).validate_params(self.params)
        except StrategyError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):  # name the parameter, in one line
                err = cause.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                msg = f"params.{where} of strategy {self.name!r}: {err['msg']}"
                raise ValueError(msg) from exc
            raise ValueError(str(exc)) from exc
        return self

    @property
    def spec(self) -> StrategySpec:
        return StrategySpec(self.name, dict(self.params))

    @property
    def strategy_name(self) -> str:
        """The name signals carry (a plug-in's class ``name``, not its import path)."""
        return load_strategy_class(self.name).name

    @property
    def key(self) -> str:
        """Which strategy instance of the strategy stage this is (name + parameter hash)."""
        cls = load_strategy_class(self.name)
        return strategy_key(cls.name, cls.validate_params(self.params).params_hash)


_NOT_SETTINGS = {"account", "strategies", "strategy_underlyings"}
if TYPE_CHECKING:
    AdaptiveSettings = BaseModel
else:  # one source of truth: AdaptiveConfig's own fields, minus what the account fills in
    AdaptiveSettings = create_model(
        "AdaptiveSettings",
        __config__=ConfigDict(frozen=True, extra="forbid"),
        **{
            name: (f.annotation, f)
            for name, f in AdaptiveConfig.model_fields.items()
            if name not in _NOT_SETTINGS
        },
    )


class AccountSpec(BaseModel):
    """One user's paper book."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    owner: str = ""
    capital_rupees: float = Field(gt=0)
    limits: AccountLimits = Field(default_factory=AccountLimits)
    strategies: tuple[StrategyEntry, ...] = Field(min_length=1)
    adaptive: AdaptiveSettings = Field(default_factory=AdaptiveSettings)
    liquidity_share: float | None = Field(default=None, gt=0, le=1)  # None: 1 / accounts

    @model_validator(mode="after")
    def _check(self) -> AccountSpec:
        names = [s.strategy_name for s in self.strategies]
        if len(set(names)) != len(names):
            msg = f"strategies: each strategy at most once per account, got {names}"
            raise ValueError(msg)
        try:
            AdaptiveConfig(account=self.id, **self.adaptive.model_dump())
        except ValidationError as exc:
            msg = f"adaptive: {exc.errors()[0]['msg']}"
            raise ValueError(msg) from exc
        return self


class Isolation(BaseModel):
    """Opt-in wall-clock budget per strategy call (see ``operators.stages.underlying``).

    Off by default: with a budget, whether a slow strategy is disabled depends on the machine,
    so a replay no longer reproduces a run exactly. Meant for live forward testing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_budget_ms: float | None = Field(default=None, gt=0)
    max_overruns: int = Field(default=10, gt=0)


class AccountsFile(BaseModel):
    """The whole file: accounts, plus the opt-in strategy time budget (live use)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: tuple[AccountSpec, ...] = Field(min_length=1)
    isolation: Isolation = Field(default_factory=Isolation)

    @model_validator(mode="after")
    def _check(self) -> AccountsFile:
        ids = [a.id for a in self.accounts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            msg = f"duplicate account ids: {dupes}"
            raise ValueError(msg)
        total = sum(share_of(a, len(self.accounts)) for a in self.accounts)
        if total > 1 + 1e-9:
            msg = f"liquidity_share of all accounts sums to {total:.4f} > 1"
            raise ValueError(msg)
        return self


def share_of(account: AccountSpec, n_accounts: int) -> float:
    return account.liquidity_share if account.liquidity_share is not None else 1.0 / n_accounts


def default_accounts(
    account: str, capital_rupees: float, strategies: Sequence[StrategySpec]
) -> tuple[AccountSpec, ...]:
    """The single account of a run without an accounts file (today's settings)."""
    return (
        AccountSpec(
            id=account,
            capital_rupees=capital_rupees,
            strategies=tuple(StrategyEntry(name=s.name, params=dict(s.params)) for s in strategies),
            liquidity_share=1.0,
        ),
    )


def load_accounts(path: Path) -> AccountsFile:
    """Read and validate an accounts file; any problem is an :class:`AccountsFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the accounts file: {exc.strerror or exc}"
        raise AccountsFileError(msg) from exc
    return parse_accounts(text, str(path))


def parse_accounts(text: str, source: str = "<accounts>") -> AccountsFile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise AccountsFileError(msg) from exc
    try:
        return AccountsFile.model_validate(raw)
    except ValidationError as exc:
        # a failed item also empties its tuple: "too short" follows from the first error
        errors = [e for e in exc.errors() if e["type"] != "too_short"] or exc.errors()
        err = errors[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(file)"
        why = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        msg = f"{source}:{_line_of(text, loc)}: {field}: {why}{more}"
        raise AccountsFileError(msg) from exc


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def _line_of(text: str, loc: tuple[Any, ...]) -> int:
    """The 1-based line that best matches a pydantic location such as
    ``("accounts", 1, "limits", "daily_loss_pct")``: the key's own line when found, else the
    header of the deepest table on its path, else 1. Understands ``[t]``, ``[[t]]`` and
    ``key =`` lines (enough for this file's shape; an inline table resolves to its key's line).
    """
    best, best_depth = 1, 0
    counts: dict[tuple[str, ...], int] = {}
    table: tuple[Any, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            names = tuple(p.strip().strip("\"'") for p in header.group(2).split("."))
            parent = _resolve(names[:-1], counts)
            if header.group(1) == "[[":
                index = counts.get(names, -1) + 1
                counts[names] = index
                table = (*parent, names[-1], index)
            else:
                table = (*parent, names[-1])
            if loc[: len(table)] == table and len(table) > best_depth:
                best, best_depth = number, len(table)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, key.group(1).strip("\"'"))
            if loc[: len(path)] == path:
                return number
    return best


def _resolve(names: tuple[str, ...], counts: Mapping[tuple[str, ...], int]) -> tuple[Any, ...]:
    """A dotted table prefix with each array-of-tables part at its latest index."""
    out: list[Any] = []
    for i, name in enumerate(names):
        out.append(name)
        index = counts.get(names[: i + 1])
        if index is not None:
            out.append(index)
    return tuple(out)


def resolved_accounts(config: Any) -> tuple[AccountSpec, ...]:
    """The accounts a pipeline config trades: its ``accounts`` (from a file), else the one
    account its single-account settings describe."""
    accounts: tuple[AccountSpec, ...] = tuple(getattr(config, "accounts", ()) or ())
    return accounts or default_accounts(config.account, config.capital_rupees, config.strategies)


def record(dsn: str, run_id: str, config: Any) -> None:
    """Write the accounts a pipeline config trades to the ``accounts`` table."""
    from connectors.postgres.runs import record_accounts

    record_accounts(dsn, run_id, accounts_config(resolved_accounts(config)))


def accounts_config(accounts: Sequence[AccountSpec]) -> list[dict[str, Any]]:
    """The JSON-able form of every account, for the run's config (and its hash)."""
    return [a.model_dump(mode="json") for a in accounts]


def from_config(raw: Sequence[Mapping[str, Any]]) -> tuple[AccountSpec, ...]:
    """Inverse of :func:`accounts_config` (e.g. the ``accounts`` of a recorded run config);
    empty stays empty."""
    if not raw:
        return ()
    return AccountsFile.model_validate({"accounts": list(raw)}).accounts


def strategy_specs(accounts: Sequence[AccountSpec]) -> tuple[StrategySpec, ...]:
    """The distinct strategy instances the strategy stage runs for these accounts, in order
    of first appearance (accounts with equal name and parameters share one instance)."""
    seen: dict[str, StrategySpec] = {}
    for account in accounts:
        for entry in account.strategies:
            seen.setdefault(entry.key, entry.spec)
    return tuple(seen.values())


def subscribers(accounts: Sequence[AccountSpec]) -> dict[str, tuple[str, ...]]:
    """Strategy instance key → the accounts that trade its signals."""
    out: dict[str, list[str]] = {}
    for account in accounts:
        for entry in account.strategies:
            out.setdefault(entry.key, []).append(account.id)
    return {k: tuple(v) for k, v in out.items()}


def account_configs(
    accounts: Sequence[AccountSpec], run_id: str, *, feed_lag_threshold_ms: float | None = None
) -> dict[str, AccountConfig]:
    """Each account's operator configuration (risk limits, adaptive layer, liquidity share,
    feed-lag threshold: None keeps the operator's default)."""
    out: dict[str, AccountConfig] = {}
    base = ExecutionConfig()
    feed = (
        FeedHealthConfig(lag_threshold_ms=feed_lag_threshold_ms)
        if feed_lag_threshold_ms is not None
        else FeedHealthConfig()
    )
    for account in accounts:
        names = tuple(sorted(s.strategy_name for s in account.strategies))
        lim = account.limits
        capital = round(account.capital_rupees * 100)
        share = Decimal(str(share_of(account, len(accounts))))
        execution = base
        if share != 1:
            execution = ExecutionConfig(
                latency=base.latency,
                slippage=base.slippage,
                fill=msgspec.structs.replace(base.fill, share=share),
                costs=base.costs,
            )
        out[account.id] = AccountConfig(
            account=account.id,
            run_id=run_id,
            limits=RiskLimits(
                account=account.id,
                capital=capital,
                max_loss_per_trade_pct=lim.loss_per_trade_pct,
                max_daily_loss_pct=lim.daily_loss_pct,
                max_position_lots=lim.max_lots,
                max_gross_exposure=(
                    round(lim.gross_exposure_rupees * 100)
                    if lim.gross_exposure_rupees is not None
                    else None
                ),
                max_net_delta=lim.net_delta,
                kill_drawdown_pct=lim.kill_drawdown_pct,
                strategies=names,
            ),
            adaptive=AdaptiveConfig(
                account=account.id, strategies=names, **account.adaptive.model_dump()
            ),
            execution=execution,
            feed_health=feed,
            contract_notes=True,  # a ContractNote per day at session close (the true-up)
        )
    return out
