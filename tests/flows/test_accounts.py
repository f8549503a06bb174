"""Accounts file (issue 14): validation with file/line/field errors, the single-account
default, hashing, fan-out routing and the liquidity shared across accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.postgres.runs import config_hash
from flows.config.accounts import (
    AccountsFileError,
    account_configs,
    accounts_config,
    default_accounts,
    from_config,
    load_accounts,
    parse_accounts,
    strategy_specs,
    subscribers,
)
from flows.trading import _FanOut
from operators.events import RiskEvent, SignalGenerated, Tick
from operators.stages.underlying import StrategySpec
from operators.trading.execution import ExecutionConfig, ExecutionLogic, SharedExecutionState
from operators.trading.orders import FillEvent
from operators.trading.risk_limits import RiskLimits
from tests.accounts import account_toml
from tests.events import buy, option, tick

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "accounts.toml"

T0 = datetime(2026, 1, 5, 4, tzinfo=UTC)  # 09:30 IST


def quote(ms: int, cum: int) -> Tick:
    """A 99.95/100.05 quote on the 26000 CE, ``ms`` after T0, ``cum`` traded so far."""
    at = T0 + timedelta(milliseconds=ms)
    return tick(at, "43650", 10_000, 9_995, 10_005, bid_qty=1000, ask_qty=1000, cum_volume=cum)


ONE = account_toml("a", 100000, "momentum_breakout")


def error_of(text: str) -> str:
    with pytest.raises(AccountsFileError) as info:
        parse_accounts(text, "acc.toml")
    return str(info.value)


def test_example_file_loads_three_accounts_with_different_capital_and_strategies() -> None:
    accounts = load_accounts(EXAMPLE).accounts
    assert [a.id for a in accounts] == ["asha", "bala", "chitra"]
    assert len({a.capital_rupees for a in accounts}) == 3
    assert len({tuple(s.name for s in a.strategies) for a in accounts}) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ONE.replace("daily_loss_pct = 2.0", "daily_loss_pct = 300"),
            "acc.toml:6: accounts.0.limits.daily_loss_pct: Input should be less than or equal",
        ),
        (
            ONE.replace("daily_loss_pct", "dayly_loss_pct"),
            "acc.toml:6: accounts.0.limits.dayly_loss_pct: Extra inputs are not permitted",
        ),
        (
            ONE.replace("capital_rupees = 100000", "capital_rupees = -5"),
            "acc.toml:3: accounts.0.capital_rupees: Input should be greater than 0",
        ),
        (
            ONE.replace('"momentum_breakout"', '"nope"'),
            "acc.toml:8: accounts.0.strategies.0: unknown strategy 'nope'",
        ),
        (
            ONE + 'params = { target_pct = "x" }\n',
            "acc.toml:8: accounts.0.strategies.0: params.target_pct of strategy",
        ),
        (ONE + ONE, "acc.toml:1: (file): duplicate account ids: ['a']"),
        (ONE.replace('id = "a"', 'id = "a b"'), "acc.toml:2: accounts.0.id: String should match"),
        (ONE.replace("[accounts.limits]", "[accounts.limits"), "acc.toml: not valid TOML"),
    ],
)
def test_errors_name_file_line_and_field_in_one_line(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_same_strategy_twice_in_one_account_is_refused() -> None:
    message = error_of(ONE + '[[accounts.strategies]]\nname = "momentum_breakout"\n')
    assert "each strategy at most once per account" in message


def test_liquidity_shares_may_not_exceed_the_whole() -> None:
    two = ONE + ONE.replace('id = "a"', 'id = "b"')
    assert len(parse_accounts(two).accounts) == 2
    message = error_of(
        two.replace("capital_rupees = 100000", "capital_rupees = 1\nliquidity_share = 0.8")
    )
    assert "liquidity_share of all accounts sums to 1.6000 > 1" in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AccountsFileError, match="cannot read the accounts file"):
        load_accounts(tmp_path / "nope.toml")


def test_default_single_account_equals_the_settings_path() -> None:
    """No file: one account with the settings' id, capital and strategies, the whole volume,
    and exactly the limits the single-account flow always used."""
    (account,) = default_accounts("paper", 500_000.0, (StrategySpec("vwap_reversal"),))
    config = account_configs((account,), "r")["paper"]
    assert config.limits == RiskLimits(
        account="paper", capital=50_000_000, strategies=("vwap_reversal",)
    )
    assert config.execution.fill == ExecutionConfig().fill  # the whole volume cap
    assert account.liquidity_share == 1.0


def test_every_field_of_every_account_changes_the_config_hash() -> None:
    base = parse_accounts(ONE + ONE.replace('id = "a"', 'id = "b"')).accounts
    digest = config_hash({"accounts": accounts_config(base)})
    for old, new in [
        ("daily_loss_pct = 2.0", "daily_loss_pct = 2.5"),
        ("capital_rupees = 100000", "capital_rupees = 100001"),
        ('name = "momentum_breakout"', 'name = "gamma_scalp"'),
    ]:
        text = ONE + ONE.replace('id = "a"', 'id = "b"').replace(old, new)
        changed = parse_accounts(text).accounts
        assert config_hash({"accounts": accounts_config(changed)}) != digest
    assert from_config(accounts_config(base)) == base  # the flow processes' copy is the same


def test_signals_fan_out_only_to_accounts_running_that_strategy_instance() -> None:
    accounts = load_accounts(EXAMPLE).accounts
    specs = strategy_specs(accounts)
    # chitra's tuned momentum is its own instance; gamma_scalp is shared by asha and chitra
    assert [s.name for s in specs].count("momentum_breakout") == 2
    subs = subscribers(accounts)
    fan = _FanOut([a.id for a in accounts], subs)
    ts = datetime(2026, 7, 8, 4, tzinfo=UTC)
    gamma = next(k for k in subs if k.startswith("gamma_scalp-"))
    signal = SignalGenerated(
        ts_event=ts,
        ts_recv=ts,
        strategy="gamma_scalp",
        underlying="NIFTY",
        instrument="1",
        side="BUY",
        action="ENTRY",
        reason="r",
        signal_id=f"{gamma}:NIFTY:1:ENTRY:t",
    )
    assert [k for k, _ in fan([("NIFTY", signal)])] == ["asha", "chitra"]
    tick = Tick(ts_event=ts, ts_recv=ts, token="1", exchange="NFO", ltp=1, bid=1, ask=2)
    assert [k for k, _ in fan([("NIFTY", (tick, 0.0))])] == ["asha", "bala", "chitra"]
    failed = RiskEvent(
        ts_event=ts, ts_recv=ts, account="", kind="STRATEGY_FAILED", strategy=gamma, detail="x"
    )
    routed = fan([("NIFTY", failed)])
    assert [(k, ev.account, ev.strategy) for k, [(_, _, ev, _)] in routed] == [
        ("asha", "asha", "gamma_scalp"),
        ("chitra", "chitra", "gamma_scalp"),
    ]


def test_two_accounts_on_one_tick_together_take_no_more_than_the_volume_cap() -> None:
    """Each account's simulator takes only its share of a tick's volume cap: two accounts
    hitting the same quote with big orders split it, and neither depends on the other."""
    inst = option()
    two = parse_accounts(ONE + ONE.replace('id = "a"', 'id = "b"')).accounts
    configs = account_configs(two, "r")
    taken = {}
    for account, config in configs.items():
        ex = ExecutionLogic({inst.token: inst}, config.execution)
        ex.on_tick(quote(-1000, 10_000))
        ex.on_command(buy(T0, f"o-{account}", account, inst.token, 6_500))
        events = ex.on_tick(quote(100, 12_600))  # 2,600 traded; cap 25% = 650 = 10 lots
        taken[account] = sum(e.fill_qty for e in events if isinstance(e, FillEvent))
    assert taken == {"a": 325, "b": 325}  # half the cap each, whole lots
    assert sum(taken.values()) <= 650
    assert configs["a"].execution.fill.share == Decimal("0.5")
    assert account_configs(two[:1], "r")["a"].execution.fill.share == 1  # alone: all of it


def test_a_share_too_small_for_a_lot_per_tick_carries_until_one_lot_fits() -> None:
    """10 accounts: 1,000 traded × 25% × 1/10 = 25 units a tick; the 65-unit lot fills on the
    third tick (25, 50, 75) and 10 units carry on; nothing carries once no order waits."""
    inst = option()
    ten = parse_accounts("".join(ONE.replace('id = "a"', f'id = "a{i}"') for i in range(10)))
    config = account_configs(ten.accounts, "r")["a0"]

    ex = ExecutionLogic({inst.token: inst}, config.execution)
    ex.on_tick(quote(-1000, 10_000))
    ex.on_command(buy(T0, "o", "a0", inst.token, 130))
    filled = []
    for i in range(1, 7):
        events = ex.on_tick(quote(100 * i, 10_000 + 1_000 * i))
        filled.append(sum(e.fill_qty for e in events if isinstance(e, FillEvent)))
    assert filled == [0, 0, 65, 0, 0, 65]  # 25, 50, 75→10, 35, 60, 85→0 (order done)
    assert isinstance(ex.state, SharedExecutionState)
    assert ex.state.carried == {}


@pytest.mark.parametrize("command", ["run", "demo", "backtest"])
def test_cli_accounts_errors_are_one_line(command: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli.app import app

    bad = tmp_path / "accounts.toml"
    bad.write_text(ONE.replace("capital_rupees = 100000", "capital_rupees = 0"))
    extra = (
        ["--from", "2026-07-08T09:15", "--to", "2026-07-08T10:15"] if command == "backtest" else []
    )
    done = CliRunner().invoke(
        app,
        [command, "--accounts", str(bad), *extra],
        env={"SCALPFLOW_PG_DSN": "postgresql://x@127.0.0.1:1/x"},
    )
    assert done.exit_code == 1, done.output
    assert f"{bad}:3: accounts.0.capital_rupees: Input should be greater than 0" in " ".join(
        done.output.split()
    )
    assert "Traceback" not in done.output
