"""100 accounts over a 60-minute session through the account stage (issue 14): every account
finishes, and what each remembers stays bounded (it does not grow with the ticks)."""

from __future__ import annotations

import pickle
from typing import Any

from connectors.feeds.synthetic import SyntheticMarket
from flows.config.accounts import (
    AccountLimits,
    AccountSpec,
    account_configs,
    strategy_specs,
    subscribers,
)
from flows.trading import _AccountStage, _FanOut
from operators.market.candles import CandleConfig
from operators.stages.account import AccountLogic
from operators.stages.underlying import UnderlyingConfig, UnderlyingLogic
from tests.accounts import varied_accounts
from tests.markets import synthetic_market


def many_accounts(n: int) -> tuple[AccountSpec, ...]:
    """``n`` accounts, same strategies, different capital and limits."""
    return varied_accounts(
        n,
        lambda i: 200_000 + 10_000 * i,
        lambda i: AccountLimits(max_lots=1 + i % 10, daily_loss_pct=0.5 + (i % 5)),
    )


def account_stage(
    market: SyntheticMarket, accounts: tuple[AccountSpec, ...], run_id: str
) -> tuple[list[Any], _FanOut, _AccountStage]:
    """The strategy stage's outputs over the day, the fan-out to the accounts, and the
    account stage with one ``AccountLogic`` per account."""
    instruments = {i.token: i for i in market.instruments()}
    items = UnderlyingLogic(
        instruments,
        UnderlyingConfig(
            strategies=strategy_specs(accounts),
            bars_from_ticks=True,
            forward_ticks=True,
            candle=CandleConfig(intervals=("1m",)),
        ),
    ).run(market.config.underlying, market.ticks())
    fan_out = _FanOut([a.id for a in accounts], subscribers(accounts))
    configs = account_configs(accounts, run_id)
    stage = _AccountStage({k: AccountLogic(instruments, c) for k, c in configs.items()})
    return items, fan_out, stage


def run_accounts(
    market: SyntheticMarket, accounts: tuple[AccountSpec, ...], checkpoint: int
) -> tuple[dict[str, Any], dict[str, int], int]:
    """Run the strategy stage, fan out, run every account; returns the final holders, each
    account's pickled state size at output index ``checkpoint``, and the output count."""
    items, fan_out, stage = account_stage(market, accounts, "scale")
    holders: dict[str, Any] = {}
    mid: dict[str, int] = {}
    outputs = 0
    for i, item in enumerate(items):
        if i == checkpoint:
            mid = {k: len(pickle.dumps(h.runtime)) for k, h in holders.items()}
        for key, pair in fan_out([("", item)]):
            holder = holders.get(key)
            if holder is None:
                holder = holders[key] = stage.new_state()
            outputs += len(list(stage.on_item(holder, pair)))
    for holder in holders.values():
        outputs += len(list(stage.on_eof(holder)))
    return holders, mid, outputs


def test_100_accounts_over_60_minutes_finish_with_bounded_state() -> None:
    market = synthetic_market(11, minutes=60, strikes=1, rate=0.05)
    n_instruments = len(market.instruments())
    accounts = many_accounts(100)
    holders, mid, outputs = run_accounts(market, accounts, checkpoint=market.raw_count // 2)
    assert sorted(holders) == [a.id for a in accounts]
    assert outputs > 0
    for account, holder in holders.items():
        rt = holder.runtime
        assert rt.reorder.max_ts is not None  # it saw the session to its end
        assert not rt.reorder.heap, f"{account}: inputs left in the reorder buffer"
        assert not rt.reorder.queue
        assert len(rt.quotes) <= n_instruments
        assert len(rt.deltas) <= n_instruments
        end = len(pickle.dumps(rt))
        # bounded: a few kB per account, and the second half of the session (as many ticks
        # again) adds no more than its orders
        assert end < 64_000, f"{account}: {end} bytes of state"
        orders = len(rt.execution.state.orders)
        assert end <= mid[account] + 2_500 * orders + 4_000, (account, mid[account], end)


def outputs_by_account(market: SyntheticMarket, accounts: tuple[AccountSpec, ...]) -> dict:
    """Every account's outputs, in order, from one run of the account stage."""
    items, fan_out, stage = account_stage(market, accounts, "k")
    holders: dict[str, Any] = {}
    out: dict[str, list[Any]] = {a.id: [] for a in accounts}
    for key, pair in fan_out([("", i) for i in items]):
        out[key] += stage.on_item(holders.setdefault(key, stage.new_state()), pair)
    for key, holder in holders.items():
        out[key] += stage.on_eof(holder)
    return out


def test_one_accounts_kill_switch_never_touches_the_others() -> None:
    market = synthetic_market(7, minutes=60, strikes=2, rate=0.3)
    base = many_accounts(3)
    # u000 kills itself at the first 0.01% drawdown; shares fixed so solo runs are comparable
    accounts = tuple(
        a.model_copy(
            update={
                "liquidity_share": 1 / 3,
                "capital_rupees": 1_000_000 + 100_000 * i,
                "limits": a.limits.model_copy(
                    update={"max_lots": 10, "kill_drawdown_pct": 0.01 if i == 0 else 5.0}
                ),
            }
        )
        for i, a in enumerate(base)
    )
    together = outputs_by_account(market, accounts)
    kills = {
        acct
        for acct, outs in together.items()
        for e in outs
        if getattr(e, "kind", None) == "KILL_SWITCH"
    }
    assert kills == {"u000"}
    for account in accounts[1:]:
        solo = outputs_by_account(market, (account,))[account.id]
        assert together[account.id] == solo, account.id
        assert any(type(e).__name__ == "OrderFilled" for e in solo), account.id
