"""Every SQL statement the dashboards run: small typed read-only queries.

Why one module (~790 lines): every SQL statement the dashboards run in one place, so a schema
change is checked against one file, and the monitor and the PDF report share one tested layer.

Each function takes an open psycopg connection and returns a list of frozen dataclasses (or a
scalar), so the monitor and the PDF report share one tested data layer. Money comes back as
``Decimal`` rupees exactly as stored (the schema keeps prices as numeric rupees); indicator
values are floats. Nothing here writes: :func:`open_pool` and :func:`connect_readonly` make the
server refuse writes too (``default_transaction_read_only``), so the monitor cannot mutate
trading state even by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from connectors.postgres.candle_store import StoredCandle
from connectors.postgres.timescale import AGGREGATE_FOR_INTERVAL
from dashboards.errors import DashboardError
from operators.market.sessions import IST
from operators.trading.analytics import Metrics, SimpleTrade, compute_metrics

READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"
CONNECT_TIMEOUT_S = 5


T = TypeVar("T")


class MonitorDatabaseError(DashboardError, RuntimeError):
    """The monitor's database is unreachable or lacks a table; the message says which."""


def redact(dsn: str) -> str:
    """The DSN without its password, for messages shown to a user."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **info)


def connect_readonly(dsn: str) -> psycopg.Connection[Any]:
    """One autocommit connection whose every statement runs in a read-only transaction."""
    try:
        return psycopg.connect(
            dsn, autocommit=True, options=READ_ONLY_OPTIONS, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        msg = f"cannot connect to PostgreSQL at {redact(dsn)}: {exc}".strip()
        raise MonitorDatabaseError(msg) from exc


def open_pool(dsn: str, *, max_size: int = 4) -> ConnectionPool:
    """A small read-only pool, opened and checked.

    One direct connection is tried first so an unreachable or misconfigured server fails at
    once with :class:`MonitorDatabaseError` (a pool would keep retrying in the background).
    """
    connect_readonly(dsn).close()
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        kwargs={
            "autocommit": True,
            "options": READ_ONLY_OPTIONS,
            "connect_timeout": CONNECT_TIMEOUT_S,
        },
        open=False,
        name="scalpflow-monitor",
    )
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 1)
    except Exception as exc:
        pool.close()
        msg = f"cannot open a connection pool to {redact(dsn)}: {exc}".strip()
        raise MonitorDatabaseError(msg) from exc
    return pool


def _rows(
    conn: psycopg.Connection[Any], cls: type[T], sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> list[T]:
    with conn.cursor(row_factory=class_row(cls)) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    """Whether ``table`` exists (journal tables arrive with a later migration)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def column_exists(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (a database not yet migrated by a newer flow)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s)",
        (table, column),
    ).fetchone()
    return bool(row and row[0])


# --- runs and instruments ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run known to the database; ``kind`` is empty for a run seen only in candles."""

    run_id: str
    kind: str
    started_at: datetime | None
    config_hash: str
    note: str

    @property
    def label(self) -> str:
        kind = self.kind or "unregistered"
        when = (
            self.started_at.astimezone(IST).strftime("%d %b %Y %H:%M IST")
            if self.started_at
            else "?"
        )
        return f"{self.run_id or '(default)'} · {kind} · {when}"


@dataclass(frozen=True, slots=True)
class RunMeta:
    """A registered run with its configuration (the report's title page)."""

    kind: str
    started_at: datetime
    note: str
    config: dict[str, Any]


def run_meta(conn: psycopg.Connection[Any], run_id: str) -> RunMeta | None:
    found = _rows(
        conn,
        RunMeta,
        "SELECT kind, started_at, note, config FROM runs WHERE run_id = %s",
        (run_id,),
    )
    return found[0] if found else None


def list_runs(conn: psycopg.Connection[Any]) -> list[RunInfo]:
    """Registered runs plus run ids that only appear in candles, newest first."""
    return _rows(
        conn,
        RunInfo,
        """
        WITH RECURSIVE ids AS (  -- distinct candle run ids by index skip scan, not a scan
            SELECT min(run_id) AS run_id FROM candles
            UNION ALL
            SELECT (SELECT min(c.run_id) FROM candles c WHERE c.run_id > ids.run_id)
              FROM ids WHERE ids.run_id IS NOT NULL)
        SELECT run_id, kind, started_at, config_hash, note FROM runs
        UNION ALL
        SELECT ids.run_id, '' AS kind,
               (SELECT min(c.ts) FROM candles c WHERE c.run_id = ids.run_id) AS started_at,
               '' AS config_hash, '' AS note
          FROM ids
         WHERE ids.run_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = ids.run_id)
        ORDER BY started_at DESC NULLS LAST, run_id
        """,
        (),
    )


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """An instrument with candles in a run (symbol falls back to the token when unknown)."""

    token: str
    symbol: str
    underlying: str
    kind: str
    strike: Decimal
    expiry: date | None

    @property
    def label(self) -> str:
        if self.kind in ("CE", "PE"):
            return f"{self.symbol} ({self.kind} {self.strike.normalize():f})"
        return f"{self.symbol} ({self.kind or 'token ' + self.token})"


def list_instruments(conn: psycopg.Connection[Any], run_id: str) -> list[InstrumentInfo]:
    """Instruments that have candles in ``run_id``: indices first, then by strike and kind."""
    return _rows(
        conn,
        InstrumentInfo,
        """
        SELECT t.token, coalesce(i.symbol, t.token) AS symbol,
               coalesce(i.underlying, '') AS underlying, coalesce(i.kind, '') AS kind,
               coalesce(i.strike, 0) AS strike, i.expiry
          FROM (SELECT DISTINCT token FROM candles WHERE run_id = %s) t
          LEFT JOIN instruments i ON i.token = t.token
         ORDER BY (i.kind IN ('CE', 'PE')), i.underlying, i.strike, i.kind, t.token
        """,
        (run_id,),
    )


def list_intervals(conn: psycopg.Connection[Any], run_id: str, token: str) -> list[str]:
    """Candle intervals stored for one instrument of a run, 1-minute first; then 5m when
    TimescaleDB's aggregate builds it from the instrument's 1 s candles."""
    rows = conn.execute(
        "SELECT DISTINCT interval FROM candles WHERE run_id = %s AND token = %s",
        (run_id, token),
    ).fetchall()
    order = {"1m": 0, "ONE_MINUTE": 1, "1s": 2}
    intervals = sorted((r[0] for r in rows), key=lambda x: (order.get(x, 9), x))
    if "1s" in intervals and table_exists(conn, AGGREGATE_FOR_INTERVAL["5m"]):
        intervals.append("5m")
    return intervals


# --- market data ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandleBar(StoredCandle):
    """One candle with the indicator overlays the chart draws (None during warm-up)."""

    vwap: float | None
    ema9: float | None
    ema21: float | None
    ind_vwap: float | None
    rsi14: float | None = None
    atr14: float | None = None


_CANDLES_SQL = """
        SELECT c.ts, c.open, c.high, c.low, c.close, c.volume::bigint AS volume, c.vwap,
               (i.values ->> 'ema9')::float8 AS ema9,
               (i.values ->> 'ema21')::float8 AS ema21,
               (i.values ->> 'vwap')::float8 AS ind_vwap,
               (i.values ->> 'rsi14')::float8 AS rsi14,
               (i.values ->> 'atr14')::float8 AS atr14
          FROM {source} c
          LEFT JOIN indicators i
            ON i.run_id = c.run_id AND i.token = c.token AND i.interval = %s AND i.ts = c.ts
         WHERE c.run_id = %s AND c.token = %s {only_interval}
         ORDER BY c.ts DESC
         LIMIT %s
        """


def candles(
    conn: psycopg.Connection[Any],
    run_id: str,
    token: str,
    interval: str = "1m",
    limit: int = 400,
) -> list[CandleBar]:
    """The latest ``limit`` candles of one instrument, oldest first, joined to indicators.

    Under TimescaleDB, 1- and 5-minute history comes from the continuous aggregates of the
    1 s candles (equal to the flow's own 1-minute candles, tested) when they have the
    instrument; otherwise, and in plain PostgreSQL, from the stored candles.
    """
    view = AGGREGATE_FOR_INTERVAL.get(interval)
    rows: list[CandleBar] = []
    if view is not None and table_exists(conn, view):
        sql = _CANDLES_SQL.format(source=view, only_interval="")
        rows = _rows(conn, CandleBar, sql, (interval, run_id, token, limit))
    if not rows:
        sql = _CANDLES_SQL.format(source="candles", only_interval="AND c.interval = %s")
        rows = _rows(conn, CandleBar, sql, (interval, run_id, token, interval, limit))
    rows.reverse()
    return rows


# --- journal ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillRow:
    """One fill (``costs`` = the fill's total statutory + brokerage costs, rupees)."""

    ts: datetime
    fill_id: str
    order_id: str
    account: str
    strategy: str
    symbol: str
    side: str
    qty: int
    price: Decimal
    costs: Decimal
    liquidity: str
    reason: str


def fills(conn: psycopg.Connection[Any], run_id: str, limit: int = 500) -> list[FillRow]:
    """The run's latest fills, newest first."""
    return _rows(
        conn,
        FillRow,
        """
        SELECT f.ts, f.fill_id, f.order_id, f.account, f.strategy,
               coalesce(i.symbol, f.token) AS symbol, f.side, f.qty, f.price,
               f.total_costs AS costs, f.liquidity, f.reason
          FROM fills f LEFT JOIN instruments i ON i.token = f.token
         WHERE f.run_id = %s
         ORDER BY f.ts DESC, f.fill_id DESC
         LIMIT %s
        """,
        (run_id, limit),
    )


@dataclass(frozen=True, slots=True)
class PositionRow:
    """The latest state of one position (unrealised and net are marked to mid)."""

    updated_at: datetime
    account: str
    strategy: str
    symbol: str
    qty: int
    avg_price: Decimal
    mark: Decimal
    realised: Decimal
    unrealised: Decimal
    costs: Decimal
    net: Decimal


def positions(conn: psycopg.Connection[Any], run_id: str) -> list[PositionRow]:
    """Every (account, strategy, instrument) position of the run, open ones first."""
    return _rows(
        conn,
        PositionRow,
        """
        SELECT p.updated_at, p.account, p.strategy, coalesce(i.symbol, p.token) AS symbol,
               p.qty, p.avg_price, p.mark, p.realised, p.unrealised, p.costs, p.net
          FROM positions p LEFT JOIN instruments i ON i.token = p.token
         WHERE p.run_id = %s
         ORDER BY p.qty = 0, p.account, p.strategy, symbol
        """,
        (run_id,),
    )


@dataclass(frozen=True, slots=True)
class PnlSummary:
    """Run totals in rupees: realised + unrealised − costs = net."""

    realised: Decimal
    unrealised: Decimal
    costs: Decimal
    net: Decimal
    open_positions: int


def pnl_summary(rows: Sequence[PositionRow]) -> PnlSummary:
    """Totals over the latest positions (pure: no SQL, so it is shared with tests)."""
    zero = Decimal(0)
    return PnlSummary(
        realised=sum((r.realised for r in rows), zero),
        unrealised=sum((r.unrealised for r in rows), zero),
        costs=sum((r.costs for r in rows), zero),
        net=sum((r.net for r in rows), zero),
        open_positions=sum(1 for r in rows if r.qty != 0),
    )


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One round trip from the journal, with why it was entered and exited."""

    trade_id: str
    account: str
    strategy: str
    symbol: str
    direction: str
    qty: int
    entry_ts: datetime
    exit_ts: datetime
    entry_price: Decimal
    exit_price: Decimal
    gross: Decimal
    costs: Decimal
    net: Decimal
    entry_reason: str
    exit_reason: str
    token: str = ""
    underlying: str = ""


def trades(conn: psycopg.Connection[Any], run_id: str, limit: int = 10_000) -> list[TradeRow]:
    """The run's closed round trips in exit order."""
    return _rows(
        conn,
        TradeRow,
        """
        SELECT t.trade_id, t.account, t.strategy, coalesce(i.symbol, t.token) AS symbol,
               t.direction, t.qty, t.entry_ts, t.exit_ts, t.entry_price, t.exit_price,
               t.gross, t.costs, t.net, t.entry_reason, t.exit_reason, t.token, t.underlying
          FROM trades t LEFT JOIN instruments i ON i.token = t.token
         WHERE t.run_id = %s
         ORDER BY t.exit_ts, t.entry_ts, t.trade_id
         LIMIT %s
        """,
        (run_id, limit),
    )


def _paise(rupees: Decimal) -> int:
    return int((rupees * 100).to_integral_value())


def trade_metrics(rows: Sequence[TradeRow]) -> Metrics:
    """Run metrics (operators.trading.analytics) of journal trades; money converted to exact
    paise."""
    return compute_metrics(
        SimpleTrade(
            entry_ts=r.entry_ts,
            exit_ts=r.exit_ts,
            gross=_paise(r.gross),
            costs=_paise(r.costs),
            net=_paise(r.net),
        )
        for r in rows
    )


def equity_points(rows: Sequence[TradeRow]) -> list[tuple[datetime, float]]:
    """Cumulative net P&L in rupees after each trade (exit order), for equity charts."""
    out: list[tuple[datetime, float]] = []
    total = Decimal(0)
    for r in sorted(rows, key=lambda t: (t.exit_ts, t.entry_ts)):
        total += r.net
        out.append((r.exit_ts, float(total)))
    return out


# --- AI layer, risk and errors ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegimeRow:
    """One classification; ``probabilities`` (regime → p) only from a trained model."""

    underlying: str
    ts: datetime
    regime: str
    model_version: str
    features: dict[str, Any]
    probabilities: dict[str, float] | None = None


def _probabilities(conn: psycopg.Connection[Any]) -> str:
    """The regimes' probability column, or NULL before migration 009."""
    if column_exists(conn, "regimes", "probabilities"):
        return "probabilities"
    return "NULL::jsonb AS probabilities"


def latest_regimes(conn: psycopg.Connection[Any], run_id: str) -> list[RegimeRow]:
    """The most recent regime classification per underlying."""
    return _rows(
        conn,
        RegimeRow,
        f"""
        SELECT DISTINCT ON (underlying) underlying, ts, regime, model_version, features,
               {_probabilities(conn)}
          FROM regimes WHERE run_id = %s
         ORDER BY underlying, ts DESC
        """,
        (run_id,),
    )


@dataclass(frozen=True, slots=True)
class AiStateRow:
    ts: datetime
    account: str
    strategy: str
    state: dict[str, Any]


def latest_ai_state(conn: psycopg.Connection[Any], run_id: str) -> list[AiStateRow]:
    """The adaptive layer's latest state per (account, strategy)."""
    return _rows(
        conn,
        AiStateRow,
        """
        SELECT DISTINCT ON (account, strategy) ts, account, strategy, state
          FROM ai_state WHERE run_id = %s
         ORDER BY account, strategy, ts DESC
        """,
        (run_id,),
    )


@dataclass(frozen=True, slots=True)
class RiskEventRow:
    ts: datetime
    account: str
    kind: str
    detail: str
    strategy: str
    instrument: str


def risk_events(conn: psycopg.Connection[Any], run_id: str, limit: int = 200) -> list[RiskEventRow]:
    """The run's latest risk events (halts, cooldowns, kill switch ...), newest first."""
    return _rows(
        conn,
        RiskEventRow,
        """
        SELECT ts, account, kind, detail, strategy, instrument
          FROM risk_events WHERE run_id = %s
         ORDER BY ts DESC, kind
         LIMIT %s
        """,
        (run_id, limit),
    )


@dataclass(frozen=True, slots=True)
class DeadLetterCount:
    reason: str
    count: int


def dead_letter_counts(
    conn: psycopg.Connection[Any], run_id: str | None = None
) -> list[DeadLetterCount]:
    """Dead letters by reason prefix (the part before ':') of one run, or of every run when
    ``run_id`` is None."""
    return _rows(
        conn,
        DeadLetterCount,
        """
        SELECT split_part(reason, ':', 1) AS reason, count(*)::int AS count
          FROM dead_letters WHERE %(run)s::text IS NULL OR run_id = %(run)s::text
         GROUP BY 1 ORDER BY 2 DESC, 1
        """,
        {"run": run_id},
    )


# --- reports ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunReport:
    """A backtest run with its metrics (computed from the journal, display form)."""

    run: RunInfo
    metrics: dict[str, float | int | None]


def backtest_reports(conn: psycopg.Connection[Any], limit: int = 50) -> list[RunReport]:
    """The latest backtest runs, each with metrics computed from its trades."""
    runs = _rows(
        conn,
        RunInfo,
        """
        SELECT run_id, kind, started_at, config_hash, note FROM runs
         WHERE kind = 'backtest' ORDER BY started_at DESC, run_id LIMIT %s
        """,
        (limit,),
    )
    has_trades = table_exists(conn, "trades")
    return [
        RunReport(
            run=r,
            metrics=trade_metrics(trades(conn, r.run_id) if has_trades else []).summary(),
        )
        for r in runs
    ]


# --- option chain and IV (issue 17) -----------------------------------------------------


def chain_expiries(conn: psycopg.Connection[Any], run_id: str, underlying: str) -> list[date]:
    """Expiries of ``underlying``'s options that have analytics in the run, nearest first."""
    rows = conn.execute(
        """
        SELECT DISTINCT i.expiry FROM instruments i
         WHERE i.underlying = %s AND i.kind IN ('CE', 'PE') AND i.expiry IS NOT NULL
           AND EXISTS (SELECT 1 FROM option_analytics o WHERE o.run_id = %s AND o.token = i.token)
         ORDER BY i.expiry
        """,
        (underlying, run_id),
    ).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True, slots=True)
class ChainLeg:
    """The latest analytics of one option at or before a time, with its quote when known.

    ``price`` is what the IV was solved from (the mid of a two-sided book, else the LTP).
    ``ltp``/``bid``/``ask``/``oi`` come from the run's per-minute ``quotes`` (rupees,
    contracts; migration 010) and are None when none is stored (a run recorded before it);
    ``oi_open`` is the OI of the option's first tick of the day in the run.
    """

    token: str
    strike: Decimal
    kind: str
    ts: datetime
    price: float
    forward: float | None
    iv: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    iv_percentile: float | None
    ltp: float | None
    bid: float | None
    ask: float | None
    oi: int | None
    oi_open: int | None


_CHAIN_SQL = """
        SELECT l.token, l.strike, l.kind, a.ts, a.price, a.forward, a.iv, a.delta, a.gamma,
               a.theta, a.vega, a.iv_percentile, {quote}
          FROM instruments l
          JOIN LATERAL (
                SELECT o.ts, o.price, o.forward, o.iv, o.delta, o.gamma, o.theta, o.vega,
                       o.iv_percentile
                  FROM option_analytics o
                 WHERE o.run_id = %(run)s AND o.token = l.token AND o.ts <= %(at)s
                 ORDER BY o.ts DESC LIMIT 1) a ON true
          {quote_join}
         WHERE l.underlying = %(u)s AND l.expiry = %(e)s AND l.kind IN ('CE', 'PE')
         ORDER BY l.strike, l.kind
        """
# A side quoted at 0 has no order on it: shown blank, not as ₹0.
_QUOTE_COLUMNS = (
    "q.ltp::float8 AS ltp, nullif(q.bid, 0)::float8 AS bid, nullif(q.ask, 0)::float8 AS ask,"
    " q.oi, q0.open_oi AS oi_open"
)
_QUOTE_JOIN = """
          LEFT JOIN LATERAL (
                SELECT k.ltp, k.bid, k.ask, k.oi FROM quotes k
                 WHERE k.run_id = %(run)s AND k.token = l.token AND k.minute <= %(at)s
                   AND k.ts <= %(at)s AND k.minute >= %(day)s
                 ORDER BY k.minute DESC LIMIT 1) q ON true
          LEFT JOIN LATERAL (
                SELECT k.open_oi FROM quotes k
                 WHERE k.run_id = %(run)s AND k.token = l.token AND k.minute >= %(day)s
                   AND k.minute <= %(at)s
                 ORDER BY k.minute LIMIT 1) q0 ON true"""
_NO_QUOTE = (
    "NULL::float8 AS ltp, NULL::float8 AS bid, NULL::float8 AS ask, NULL::bigint AS oi,"
    " NULL::bigint AS oi_open"
)


def option_chain(
    conn: psycopg.Connection[Any], run_id: str, underlying: str, expiry: date, at: datetime
) -> list[ChainLeg]:
    """Every option of one expiry as of ``at``: latest IV/Greeks, quote and OI of the run."""
    day = datetime.combine(at.astimezone(IST).date(), datetime.min.time(), IST)
    quotes = table_exists(conn, "quotes")
    sql = _CHAIN_SQL.format(
        quote=_QUOTE_COLUMNS if quotes else _NO_QUOTE, quote_join=_QUOTE_JOIN if quotes else ""
    )
    params = {"run": run_id, "at": at, "u": underlying, "e": expiry, "day": day}
    with conn.cursor(row_factory=class_row(ChainLeg)) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@dataclass(frozen=True, slots=True)
class AtmIvPoint:
    """ATM IV at the end of one minute and the chain's trailing IV percentile then."""

    minute: datetime
    strike: Decimal
    atm_iv: float
    iv_percentile: float | None


def atm_iv_series(
    conn: psycopg.Connection[Any],
    run_id: str,
    index_token: str,
    underlying: str,
    expiry: date,
) -> list[AtmIvPoint]:
    """Per index minute: the strike nearest the index close (the chain's ATM rule), the
    mean of its CE and PE IVs as of the minute's end, and the stored IV percentile.

    Two index look-ups per minute and leg instead of a scan of the run's analytics."""
    return _rows(
        conn,
        AtmIvPoint,
        """
        WITH strikes AS (
            SELECT DISTINCT strike FROM instruments
             WHERE underlying = %(u)s AND expiry = %(e)s AND kind IN ('CE', 'PE')),
        minutes AS (
            SELECT c.ts + interval '1 minute' AS at,
                   (SELECT s.strike FROM strikes s
                     ORDER BY abs(s.strike - c.close), s.strike LIMIT 1) AS strike
              FROM candles c
             WHERE c.run_id = %(run)s AND c.token = %(idx)s AND c.interval = '1m')
        SELECT m.at AS minute, m.strike, avg(a.iv) AS atm_iv,
               max(a.iv_percentile) AS iv_percentile
          FROM minutes m
          JOIN instruments i
            ON i.underlying = %(u)s AND i.expiry = %(e)s AND i.strike = m.strike
           AND i.kind IN ('CE', 'PE')
          JOIN LATERAL (
                SELECT o.iv, o.iv_percentile FROM option_analytics o
                 WHERE o.run_id = %(run)s AND o.token = i.token AND o.ts < m.at
                 ORDER BY o.ts DESC LIMIT 1) a ON true
         WHERE a.iv IS NOT NULL
         GROUP BY m.at, m.strike
         ORDER BY m.at
        """,
        {"run": run_id, "idx": index_token, "u": underlying, "e": expiry},
    )


# --- AI layer and risk history (issue 17) -----------------------------------------------


def regime_history(conn: psycopg.Connection[Any], run_id: str) -> list[RegimeRow]:
    """Every regime classification of the run, oldest first."""
    return _rows(
        conn,
        RegimeRow,
        f"""
        SELECT underlying, ts, regime, model_version, features, {_probabilities(conn)}
          FROM regimes WHERE run_id = %s ORDER BY underlying, ts
        """,
        (run_id,),
    )


def ai_state_history(conn: psycopg.Connection[Any], run_id: str) -> list[AiStateRow]:
    """Every adaptive-state change of the run, oldest first."""
    return _rows(
        conn,
        AiStateRow,
        "SELECT ts, account, strategy, state FROM ai_state WHERE run_id = %s"
        " ORDER BY ts, account, strategy",
        (run_id,),
    )


RISK_STATE_KINDS = ("KILL_SWITCH", "HALT", "RESUME", "COOLDOWN", "OPERATOR_RESET")


def risk_state_events(conn: psycopg.Connection[Any], run_id: str) -> list[RiskEventRow]:
    """The events that set or clear an account's trading state, oldest first."""
    return _rows(
        conn,
        RiskEventRow,
        """
        SELECT ts, account, kind, detail, strategy, instrument
          FROM risk_events WHERE run_id = %s AND kind = ANY(%s)
         ORDER BY ts, kind
        """,
        (run_id, list(RISK_STATE_KINDS)),
    )


def latest_candle_ts(
    conn: psycopg.Connection[Any], run_id: str, token: str, interval: str
) -> datetime | None:
    """Newest candle of one instrument (index-only look-up): how far a run has got."""
    row = conn.execute(
        "SELECT max(ts) FROM candles WHERE run_id = %s AND token = %s AND interval = %s",
        (run_id, token, interval),
    ).fetchone()
    return row[0] if row else None
