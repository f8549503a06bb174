"""Accounts files (TOML) for tests, one call per account instead of a repeated literal."""

from __future__ import annotations

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
