"""Pure display transforms of query rows for the monitor: no Streamlit, no SQL, so the
logic of every page (chain pivot, trade filters, per-strategy P&L, account risk state,
cooldowns, downloads) is unit-tested directly.

Why one module (~470 lines): one pure transform per monitor table, each small, tested together.

Times become IST text labelled ``(IST)`` in column names; rupees are rounded to 2 decimals.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dashboards.queries import (
    AiStateRow,
    ChainLeg,
    PositionRow,
    RegimeRow,
    RiskEventRow,
    TradeRow,
)
from operators.market.sessions import IST

RULES_PREFIX = "rules"
RESET_COMMAND = 'scalpflow risk reset --account {account} --reason "..."'


def ist_text(ts: datetime | None, fmt: str = "%d %b %Y %H:%M:%S") -> str:
    return "" if ts is None else ts.astimezone(IST).strftime(fmt)


def money(value: Decimal | float | None) -> float | None:
    return None if value is None else round(float(value), 2)


# --- option chain ---------------------------------------------------------------------


def atm_strike(legs: Sequence[ChainLeg]) -> Decimal | None:
    """The strike nearest the legs' median forward (ties: the lower strike)."""
    forwards = sorted(leg.forward for leg in legs if leg.forward is not None)
    if not forwards:
        return None
    fwd = forwards[len(forwards) // 2]
    return min({leg.strike for leg in legs}, key=lambda k: (abs(float(k) - fwd), k))


def _leg_cells(prefix: str, leg: ChainLeg | None) -> dict[str, Any]:
    def r(v: float | None, nd: int) -> float | None:
        return None if v is None else round(v, nd)

    if leg is None:
        leg_values: dict[str, Any] = dict.fromkeys(
            ("OI", "OI chg", "bid", "ask", "LTP", "IV %", "delta", "gamma", "theta/day", "vega/pt")
        )
    else:
        change = None if leg.oi is None or leg.oi_open is None else leg.oi - leg.oi_open
        leg_values = {
            "OI": leg.oi,
            "OI chg": change,
            "bid": r(leg.bid, 2),
            "ask": r(leg.ask, 2),
            "LTP": r(leg.ltp if leg.ltp is not None else leg.price, 2),
            "IV %": None if leg.iv is None else round(leg.iv * 100, 2),
            "delta": r(leg.delta, 3),
            "gamma": r(leg.gamma, 5),
            "theta/day": r(leg.theta, 2),
            "vega/pt": r(leg.vega, 2),
        }
    return {f"{prefix} {k}": v for k, v in leg_values.items()}


QUOTE_COLUMNS = frozenset({"OI", "OI chg", "bid", "ask"})


def chain_table(legs: Sequence[ChainLeg], width: int = 8) -> list[dict[str, Any]]:
    """Calls | strike | puts, ``width`` strikes either side of ATM; ATM flagged. Bid, ask
    and OI columns appear when any leg has a stored quote; LTP is the quote's last trade,
    or without a quote the price the IV was solved from."""
    atm = atm_strike(legs)
    strikes = sorted({leg.strike for leg in legs})
    if atm is None or not strikes:
        return []
    i = strikes.index(atm)
    chosen = strikes[max(0, i - width) : i + width + 1]
    by = {(leg.strike, leg.kind): leg for leg in legs}
    quoted = any(leg.bid is not None or leg.oi is not None for leg in legs)
    rows = []
    for k in chosen:
        ce = _leg_cells("CE", by.get((k, "CE")))
        pe = _leg_cells("PE", by.get((k, "PE")))
        row = {**ce, "strike": float(k), "ATM": "◆" if k == atm else "", **pe}
        if not quoted:  # no stored quotes at all: leave the empty columns out
            row = {c: v for c, v in row.items() if c.split(" ", 1)[-1] not in QUOTE_COLUMNS}
        rows.append(row)
    return rows


# --- trades ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeFilter:
    """Filters of the trade history (empty tuple: everything)."""

    accounts: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    sides: tuple[str, ...] = ()
    first_day: date | None = None  # IST trade dates, inclusive
    last_day: date | None = None

    def keep(self, t: TradeRow) -> bool:
        day = t.exit_ts.astimezone(IST).date()
        return (
            (not self.accounts or t.account in self.accounts)
            and (not self.strategies or t.strategy in self.strategies)
            and (not self.symbols or t.symbol in self.symbols)
            and (not self.sides or t.direction in self.sides)
            and (self.first_day is None or day >= self.first_day)
            and (self.last_day is None or day <= self.last_day)
        )


def filter_trades(rows: Iterable[TradeRow], f: TradeFilter) -> list[TradeRow]:
    return [t for t in rows if f.keep(t)]


TRADE_HEADERS = (
    "exit (IST)",
    "entry (IST)",
    "account",
    "strategy",
    "symbol",
    "side",
    "qty",
    "entry ₹",
    "exit ₹",
    "gross ₹",
    "costs ₹",
    "net ₹",
    "held",
    "entry reason",
    "exit reason",
    "trade id",
)


def _held(t: TradeRow) -> str:
    secs = int((t.exit_ts - t.entry_ts).total_seconds())
    return f"{secs // 60}m {secs % 60:02d}s"


def trade_records(rows: Sequence[TradeRow]) -> list[dict[str, Any]]:
    """Trades as display rows: IST times, rounded rupees, reasons in full."""
    return [
        dict(
            zip(
                TRADE_HEADERS,
                (
                    ist_text(t.exit_ts),
                    ist_text(t.entry_ts),
                    t.account,
                    t.strategy,
                    t.symbol,
                    t.direction,
                    t.qty,
                    money(t.entry_price),
                    money(t.exit_price),
                    money(t.gross),
                    money(t.costs),
                    money(t.net),
                    _held(t),
                    t.entry_reason,
                    t.exit_reason,
                    t.trade_id,
                ),
                strict=True,
            )
        )
        for t in rows
    ]


def csv_bytes(records: Sequence[dict[str, Any]], *, excel: bool = False) -> bytes:
    """CSV of display rows; ``excel``: UTF-8 with a BOM and CRLF so Excel reads ₹ and
    the columns without an import wizard."""
    buf = io.StringIO()
    if records:
        writer = csv.DictWriter(
            buf, fieldnames=list(records[0]), lineterminator="\r\n" if excel else "\n"
        )
        writer.writeheader()
        writer.writerows(records)
    text = buf.getvalue()
    return ("\ufeff" + text).encode("utf-8") if excel else text.encode("utf-8")


def drawdown(values: Sequence[float]) -> list[float]:
    """Fall from the running peak after each point (≥ 0), the curve starting at 0."""
    peak, out = 0.0, []
    for v in values:
        peak = max(peak, v)
        out.append(peak - v)
    return out


def equity_by_strategy(rows: Sequence[TradeRow]) -> dict[str, list[tuple[datetime, float]]]:
    """Cumulative net P&L (₹) after each trade, per strategy (exit order)."""
    out: dict[str, list[tuple[datetime, float]]] = {}
    totals: dict[str, Decimal] = {}
    for t in sorted(rows, key=lambda r: (r.exit_ts, r.entry_ts, r.trade_id)):
        totals[t.strategy] = totals.get(t.strategy, Decimal(0)) + t.net
        out.setdefault(t.strategy, []).append((t.exit_ts, float(totals[t.strategy])))
    return dict(sorted(out.items()))


def strategy_table(rows: Sequence[TradeRow]) -> list[dict[str, Any]]:
    """Per-strategy P&L: trades, win rate, gross/costs/net, average, best, worst, drawdown."""
    curves = equity_by_strategy(rows)
    out = []
    for name, curve in curves.items():
        mine = [t for t in rows if t.strategy == name]
        nets = [t.net for t in mine]
        wins = sum(1 for n in nets if n > 0)
        out.append(
            {
                "strategy": name,
                "trades": len(mine),
                "win rate %": round(100 * wins / len(mine), 1),
                "gross ₹": money(sum((t.gross for t in mine), Decimal(0))),
                "costs ₹": money(sum((t.costs for t in mine), Decimal(0))),
                "net ₹": money(sum(nets, Decimal(0))),
                "avg net ₹": money(sum(nets, Decimal(0)) / len(mine)),
                "best ₹": money(max(nets)),
                "worst ₹": money(min(nets)),
                "max drawdown ₹": money(max(drawdown([v for _, v in curve]))),
            }
        )
    return out


def daily_pnl(rows: Sequence[TradeRow]) -> list[dict[str, Any]]:
    """Net P&L per IST trade date (exit day)."""
    days: dict[date, list[TradeRow]] = {}
    for t in rows:
        days.setdefault(t.exit_ts.astimezone(IST).date(), []).append(t)
    return [
        {
            "date (IST)": d.strftime("%d %b %Y"),
            "trades": len(ts),
            "wins": sum(1 for t in ts if t.net > 0),
            "gross ₹": money(sum((t.gross for t in ts), Decimal(0))),
            "costs ₹": money(sum((t.costs for t in ts), Decimal(0))),
            "net ₹": money(sum((t.net for t in ts), Decimal(0))),
        }
        for d, ts in sorted(days.items())
    ]


# --- positions ------------------------------------------------------------------------


def position_records(
    rows: Sequence[PositionRow],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(open, closed) positions: closed ones without the meaningless qty 0 / average 0,
    showing what they made instead."""
    open_rows, closed = [], []
    for p in rows:
        base: dict[str, Any] = {"account": p.account, "strategy": p.strategy, "symbol": p.symbol}
        if p.qty != 0:
            open_rows.append(
                base
                | {
                    "side": "LONG" if p.qty > 0 else "SHORT",
                    "qty": abs(p.qty),
                    "avg ₹": money(p.avg_price),
                    "mark ₹": money(p.mark),
                    "unrealised ₹": money(p.unrealised),
                    "realised ₹": money(p.realised),
                    "costs ₹": money(p.costs),
                    "net ₹": money(p.net),
                    "updated (IST)": ist_text(p.updated_at),
                }
            )
        else:
            closed.append(
                base
                | {
                    "realised ₹": money(p.realised),
                    "costs ₹": money(p.costs),
                    "net ₹": money(p.net),
                    "closed (IST)": ist_text(p.updated_at),
                }
            )
    return open_rows, closed


# --- AI layer -------------------------------------------------------------------------


def is_rules_fallback(model_version: str) -> bool:
    return model_version.startswith(RULES_PREFIX)


REGIME_ORDER = ("TRENDING", "RANGING", "HIGH_VOL")


def _regime_order(name: str) -> tuple[int, str]:
    return (REGIME_ORDER.index(name) if name in REGIME_ORDER else len(REGIME_ORDER), name)


def probability_rows(probabilities: dict[str, float], chosen: str) -> list[dict[str, Any]]:
    """One row per regime (fixed order), probability in %, the published class flagged."""
    return [
        {
            "regime": k,
            "probability %": round(100 * float(probabilities[k]), 1),
            "class": "◆" if k == chosen else "",
        }
        for k in sorted(probabilities, key=_regime_order)
    ]


def probability_series(rows: Sequence[RegimeRow]) -> dict[str, list[tuple[datetime, float]]]:
    """One (minute end, probability) series per regime, over the minutes a model classified
    (rules minutes, e.g. a model's warm-up, have no probabilities and leave gaps)."""
    out: dict[str, list[tuple[datetime, float]]] = {}
    for r in rows:
        for k in sorted(r.probabilities or {}, key=_regime_order):
            out.setdefault(k, []).append((r.ts, float((r.probabilities or {})[k])))
    return out


def state_series(rows: Sequence[AiStateRow], key: str) -> dict[str, list[tuple[datetime, float]]]:
    """One (time, value) series per ``account/strategy`` for a numeric state key."""
    out: dict[str, list[tuple[datetime, float]]] = {}
    for r in rows:
        value = r.state.get(key)
        if isinstance(value, int | float):
            out.setdefault(f"{r.account}/{r.strategy}", []).append((r.ts, float(value)))
    return out


def _parse_ts(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


_UNTIL = re.compile(r"until=([0-9T:+\-. Z]+)")


def cooldowns(
    states: Sequence[AiStateRow], events: Sequence[RiskEventRow], now: datetime | None
) -> list[dict[str, Any]]:
    """Cooldowns with their end time (IST): the risk engine's COOLDOWN events (until=…)
    and the adaptive layer's paused_until; ``active`` against ``now`` (the run's clock)."""
    out = []
    for e in events:
        if e.kind != "COOLDOWN":
            continue
        m = _UNTIL.search(e.detail)
        until = _parse_ts(m.group(1).strip()) if m else None
        out.append((e.ts, e.account, e.strategy, "risk engine", until, e.detail))
    for s in states:
        until = _parse_ts(s.state.get("paused_until"))
        if until is not None:
            out.append((s.ts, s.account, s.strategy, "adaptive layer", until, "paused"))
    return [
        {
            "from (IST)": ist_text(ts),
            "until (IST)": ist_text(until) if until else "?",
            "account": acct,
            "strategy": strategy,
            "by": source,
            "active": "yes" if until and now and until > now else "",
            "detail": detail,
        }
        for ts, acct, strategy, source, until, detail in sorted(out, key=lambda x: x[0])
    ]


# --- risk -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRisk:
    """One account's trading state after replaying its state events in order."""

    account: str
    kill_switch: str  # "" or what tripped it
    kill_since: datetime | None
    halted: str
    halt_since: datetime | None
    resets: int


def account_risk(events: Sequence[RiskEventRow]) -> list[AccountRisk]:
    """Kill switch and halt per account: a KILL_SWITCH sets, a RESUME/KILL_SWITCH_RESET or
    an OPERATOR_RESET clears; a HALT sets, its RESUME (or an operator reset) clears."""
    state: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e.ts):
        if e.account in ("", "*"):
            continue
        s = state.setdefault(
            e.account, {"kill": "", "kill_ts": None, "halt": "", "halt_ts": None, "resets": 0}
        )
        if e.kind == "KILL_SWITCH":
            if e.detail == "KILL_SWITCH_RESET":
                s["kill"], s["kill_ts"] = "", None
            else:
                s["kill"], s["kill_ts"] = e.detail, e.ts
        elif e.kind == "HALT":
            s["halt"], s["halt_ts"] = e.detail, e.ts
        elif e.kind == "RESUME":
            if e.detail == "KILL_SWITCH_RESET":
                s["kill"], s["kill_ts"] = "", None
            else:
                s["halt"], s["halt_ts"] = "", None
        elif e.kind == "OPERATOR_RESET":
            s.update(kill="", kill_ts=None, halt="", halt_ts=None)
            s["resets"] += 1
    return [
        AccountRisk(a, s["kill"], s["kill_ts"], s["halt"], s["halt_ts"], s["resets"])
        for a, s in sorted(state.items())
    ]


def risk_state_records(rows: Sequence[AccountRisk]) -> list[dict[str, Any]]:
    return [
        {
            "account": r.account,
            "kill switch": "ON" if r.kill_switch else "off",
            "tripped (IST)": ist_text(r.kill_since),
            "why": r.kill_switch,
            "halted": "yes" if r.halted else "no",
            "halted since (IST)": ist_text(r.halt_since),
            "halt reason": r.halted,
            "operator resets": r.resets,
            "to reset": RESET_COMMAND.format(account=r.account)
            if r.kill_switch or r.halted
            else "",
        }
        for r in rows
    ]


def event_records(rows: Sequence[RiskEventRow]) -> list[dict[str, Any]]:
    return [
        {
            "time (IST)": ist_text(e.ts),
            "account": e.account,
            "event": e.kind,
            "strategy": e.strategy,
            "instrument": e.instrument,
            "detail": e.detail,
        }
        for e in rows
    ]
