"""Accounts for tests and benchmarks: accounts files (TOML) one call per account instead of a
repeated literal, and many accounts built by index."""

from __future__ import annotations

from collections.abc import Callable

from flows.config.accounts import AccountLimits, AccountSpec, StrategyEntry

#: The built-in strategies, in the order the example accounts file lists them.
BUILT_IN = ("momentum_breakout", "vwap_reversal", "gamma_scalp")


def strategies(*names: str) -> str:
    """The ``[[accounts.strategies]]`` tables of ``names``, without parameters."""
    return "".join(f'[[accounts.strategies]]\nname = "{name}"\n' for name in names)


def account_toml(
    account_id: str, capital_rupees: int, *names: str, daily_loss_pct: float = 2.0
) -> str:
    """One ``[[accounts]]`` table: its capital, its daily-loss limit and ``names``' strategies
    (line 2 is the id, so a parse error there reads ``file:2``)."""
    return (
        f'[[accounts]]\nid = "{account_id}"\ncapital_rupees = {capital_rupees}\n\n'
        f"[accounts.limits]\ndaily_loss_pct = {daily_loss_pct}\n\n{strategies(*names)}"
    )


def varied_accounts(
    n: int, capital_rupees: Callable[[int], int], limits: Callable[[int], AccountLimits]
) -> tuple[AccountSpec, ...]:
    """``n`` accounts ``u000``, ``u001``, … running the built-in strategies, with the capital
    and limits of account ``i`` given by ``i``."""
    return tuple(
        AccountSpec(
            id=f"u{i:03d}",
            capital_rupees=capital_rupees(i),
            limits=limits(i),
            strategies=tuple(StrategyEntry(name=s) for s in BUILT_IN),
        )
        for i in range(n)
    )
