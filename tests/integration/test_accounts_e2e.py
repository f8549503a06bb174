"""Issue 14 end to end on the real services: one session, three accounts over Kafka into
PostgreSQL. One trips its daily-loss halt, one runs a plug-in that raises on its 50th call;
each account's fills equal a run of that account alone, and the flow runs to the end."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
import pytest
from psycopg.rows import dict_row

from flows.config.accounts import AccountsFile, parse_accounts
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from operators.market.sessions import IST
from tests.accounts import BUILT_IN, strategies
from tests.integration.helpers import (
    consume_all,
    create_topics,
    produce_market,
    unique_topics,
)
from tests.markets import synthetic_market

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

# Each account's liquidity share is explicit, so a run of one account alone is the same
# account (same share of each tick's volume), only without the others.
ACCOUNTS = f"""
[[accounts]]
id = "halts"
owner = "trips its daily-loss halt"
capital_rupees = 1_000_000
liquidity_share = 0.3333
[accounts.limits]
daily_loss_pct = 0.01        # Rs 100: the first losing trade halts the day
{strategies(*BUILT_IN)}
[[accounts]]
id = "plugin"
owner = "runs a buggy plug-in"
capital_rupees = 500_000
liquidity_share = 0.3333
[[accounts.strategies]]
name = "tests.plugin_strategies:FailsOnNthCall"
params = {{ fail_on_call = 50 }}
{strategies("gamma_scalp")}
[[accounts]]
id = "steady"
capital_rupees = 300_000
liquidity_share = 0.3333
{strategies(*BUILT_IN)}"""

FILLS = (
    "SELECT fill_id, order_id, ts, account, strategy, token, side, qty, price, cum_qty,"
    " leaves_qty, liquidity, brokerage, stt, exchange_charge, ipft, sebi_fee, stamp_duty, gst"
    " FROM fills WHERE run_id = %s AND account = %s ORDER BY fill_id"
)


def risk_events(conn, run_id: str) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "SELECT * FROM risk_events WHERE run_id = %s ORDER BY ts, account, kind", (run_id,)
    ).fetchall()


def rows_after(conn, rows: str, run_id: str, ts: datetime) -> int:
    """How many of ``rows`` ("table WHERE condition") the run wrote after ``ts``."""
    sql = f"SELECT count(*) FROM {rows} AND run_id = %s AND ts > %s"
    return conn.execute(sql, (run_id, ts)).fetchone()[0]


def test_three_accounts_one_halted_one_failing_plugin_match_their_solo_runs(
    kafka_bootstrap, pg_dsn, pg_conn
) -> None:
    market = synthetic_market(7, minutes=60, strikes=3, rate=0.5)
    topics = unique_topics("it-accounts")
    create_topics(kafka_bootstrap, topics)
    produce_market(kafka_bootstrap, topics.ticks, market)
    instruments = {i.token: i for i in market.instruments()}
    parsed: AccountsFile = parse_accounts(ACCOUNTS)
    tag = uuid.uuid4().hex[:8]

    def run(run_id: str, accounts: tuple, kafka_out: bool) -> None:
        config = PipelineConfig(
            run_id=run_id,
            pg_dsn=pg_dsn,
            kafka_bootstrap=kafka_bootstrap if kafka_out else None,
            topics=topics,
            accounts=accounts,
        )
        source = kafka_source(kafka_bootstrap, topics.ticks, tail=False)
        run_flow(build_flow(source, instruments, config, flow_id=f"acc-{run_id}"))

    together = f"acc-all-{tag}"
    run(together, parsed.accounts, kafka_out=True)

    # every account traded, and each one's fills equal its run alone
    for account in parsed.accounts:
        alone = f"acc-{account.id}-{tag}"
        run(alone, (account,), kafka_out=False)
        mine = pg_conn.execute(FILLS, (together, account.id)).fetchall()
        solo = pg_conn.execute(FILLS, (alone, account.id)).fetchall()
        assert mine, f"account {account.id} has no fills"
        assert mine == solo, f"account {account.id} traded differently beside the others"

    events = risk_events(pg_conn, together)
    by_kind = {(e["account"], e["kind"]) for e in events}
    # the halted account is halted (and only it)
    halts = [e for e in events if e["kind"] == "HALT"]
    assert halts, "no daily-loss halt"
    assert {e["account"] for e in halts} == {"halts"}
    assert all(e["detail"].startswith("DAILY_LOSS_LIMIT") for e in halts)
    halt_ts = halts[0]["ts"]
    # entries are option BUYs (exits and square-offs SELL): none approved after the halt
    entries = "risk_decisions WHERE account = 'halts' AND decision = 'APPROVED' AND side = 'BUY'"
    assert rows_after(pg_conn, entries, together, halt_ts) == 0
    # the failing plug-in is disabled for its account with the exception text
    failed = [e for e in events if e["kind"] == "STRATEGY_FAILED"]
    assert [(e["account"], e["strategy"]) for e in failed] == [("plugin", "fails_on_nth_call")]
    assert "ZeroDivisionError: plug-in bug on call 50" in failed[0]["detail"]
    failed_ts = failed[0]["ts"]
    signals = "signals WHERE strategy = 'fails_on_nth_call'"
    assert rows_after(pg_conn, signals, together, failed_ts) == 0
    # no other account was touched: no halt, kill switch or strategy failure elsewhere
    assert not {k for k in by_kind if k[0] == "steady" and k[1] in ("HALT", "KILL_SWITCH")}
    assert ("plugin", "HALT") not in by_kind
    # the flow ran to the end of the session: the index has its last minute's candle
    last = pg_conn.execute(
        "SELECT max(ts) FROM candles WHERE run_id = %s AND interval = '1m' AND token = %s",
        (together, market.config.index_token),
    ).fetchone()
    assert last is not None
    assert last[0] is not None
    assert last[0].astimezone(IST).strftime("%H:%M") == "10:14"
    # the risk event reached Kafka as the plug-in account's own event
    risk_topic = [msgspec.json.decode(m.value()) for m in consume_all(kafka_bootstrap, topics.risk)]
    assert any(r["kind"] == "STRATEGY_FAILED" and r["account"] == "plugin" for r in risk_topic)
    # every account's orders are its own rows
    owners = pg_conn.execute(
        "SELECT DISTINCT account FROM orders WHERE run_id = %s", (together,)
    ).fetchall()
    assert {r[0] for r in owners} == {"halts", "plugin", "steady"}
