"""The monitor's pure display transforms (no Streamlit, no database)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

from dashboards import charts, tables
from dashboards.queries import AiStateRow, ChainLeg, RegimeRow, RiskEventRow
from tests.dashboards.conftest import SESSION_OPEN


def _leg(strike: int, kind: str, forward: float = 24040.0, iv: float | None = 0.12) -> ChainLeg:
    return ChainLeg(
        token=f"{kind}{strike}", strike=Decimal(strike), kind=kind, ts=SESSION_OPEN,
        price=101.234, forward=forward, iv=iv, delta=0.51234, gamma=0.0012345, theta=-8.456,
        vega=12.345, iv_percentile=40.0, ltp=100.35, bid=100.0, ask=100.5, oi=1500,
        oi_open=1200,
    )  # fmt: skip


def _event(minute: int, account: str, kind: str, detail: str = "") -> RiskEventRow:
    return RiskEventRow(SESSION_OPEN + timedelta(minutes=minute), account, kind, detail, "", "")


def test_chain_table_centres_on_atm_and_rounds() -> None:
    legs = [_leg(k, kind) for k in range(23800, 24300, 50) for kind in ("CE", "PE")]
    assert tables.atm_strike(legs) == Decimal(24050)  # nearest the 24040 forward
    rows = tables.chain_table(legs, width=2)
    assert [r["strike"] for r in rows] == [23950.0, 24000.0, 24050.0, 24100.0, 24150.0]
    assert [r["ATM"] for r in rows] == ["", "", "◆", "", ""]
    assert rows[0]["CE OI chg"] == 300
    assert rows[0]["CE LTP"] == 100.35  # the quote's last trade, not the IV's mid
    assert (rows[0]["CE bid"], rows[0]["CE ask"], rows[0]["CE OI"]) == (100.0, 100.5, 1500)
    assert rows[0]["PE IV %"] == 12.0
    assert rows[0]["CE gamma"] == 0.00123
    assert tables.chain_table([], 3) == []
    bare = [
        dataclasses.replace(leg, ltp=None, bid=None, ask=None, oi=None, oi_open=None)
        for leg in legs
    ]
    assert "CE bid" not in tables.chain_table(bare, 1)[0]
    assert "PE OI chg" not in tables.chain_table(bare, 1)[0]
    assert tables.chain_table(bare, 1)[0]["PE LTP"] == 101.23


def test_account_risk_replays_sets_and_resets() -> None:
    events = [
        _event(1, "a", "KILL_SWITCH", "DRAWDOWN"),
        _event(2, "b", "HALT", "DAILY_LOSS"),
        _event(3, "b", "RESUME", "DAILY_LOSS_HALT_END"),
        _event(4, "c", "KILL_SWITCH", "FEED_STALLED"),
        _event(5, "c", "HALT", "KILL_SWITCH"),
        _event(6, "c", "OPERATOR_RESET", "checked the feed"),
        _event(7, "*", "HALT", "GLOBAL"),
    ]
    got = {r.account: r for r in tables.account_risk(events)}
    assert set(got) == {"a", "b", "c"}
    assert got["a"].kill_switch == "DRAWDOWN"
    assert got["a"].kill_since == SESSION_OPEN + timedelta(minutes=1)
    assert got["b"].halted == ""
    assert (got["c"].kill_switch, got["c"].halted, got["c"].resets) == ("", "", 1)
    recs = {r["account"]: r for r in tables.risk_state_records(list(got.values()))}
    assert recs["a"]["to reset"] == 'scalpflow risk reset --account a --reason "..."'
    assert recs["c"]["to reset"] == ""


def test_cooldowns_parse_their_end_time() -> None:
    until = SESSION_OPEN + timedelta(minutes=30)
    events = [
        _event(10, "a", "COOLDOWN", f"CONSECUTIVE_LOSSES: losses=4, until={until.isoformat()}")
    ]
    states = [AiStateRow(SESSION_OPEN, "a", "s", {"paused_until": None})]
    rows = tables.cooldowns(states, events, SESSION_OPEN + timedelta(minutes=20))
    assert [(r["until (IST)"], r["active"], r["by"]) for r in rows] == [
        ("06 Jan 2025 09:45:00", "yes", "risk engine")
    ]
    assert tables.cooldowns(states, events, until)[0]["active"] == ""


def test_csv_for_excel_has_a_bom_and_crlf() -> None:
    recs = [{"net ₹": 1.5, "why": "a, b"}]
    assert tables.csv_bytes(recs) == 'net ₹,why\n1.5,"a, b"\n'.encode()
    assert tables.csv_bytes(recs, excel=True) == '\ufeffnet ₹,why\r\n1.5,"a, b"\r\n'.encode()
    assert tables.csv_bytes([]) == b""


def test_regime_segments_merge_runs_of_one_regime() -> None:
    def r(m: int, regime: str) -> RegimeRow:
        return RegimeRow("NIFTY", SESSION_OPEN + timedelta(minutes=m), regime, "rules-v1", {})

    rows = [r(0, "RANGING"), r(1, "RANGING"), r(2, "TRENDING"), r(3, "RANGING")]
    end = SESSION_OPEN + timedelta(minutes=4)
    got = [(a.minute, b.minute, k) for a, b, k in charts.regime_segments(rows, end)]
    assert got == [(45, 47, "RANGING"), (47, 48, "TRENDING"), (48, 49, "RANGING")]  # UTC minutes
    assert tables.is_rules_fallback("rules-v1")
    assert not tables.is_rules_fallback("rf-20260701")
