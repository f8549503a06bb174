-- scalpflow trade journal (issue 4): orders, fills, round-trip trades, positions.
-- Money is numeric rupees (exact: paise / 100); times are timestamptz (UTC).
-- Natural keys include run_id so a backtest and a live session never collide; every write is
-- an upsert (connectors/journal.py) so Bytewax's at-least-once output is idempotent.

-- One row per order: its latest terms and its latest status. Two kinds of event write here:
-- terms events (accepted / rejected / modified) and status events (triggered, fills,
-- cancelled, expired). A redelivered older event never overwrites a newer one: terms are
-- guarded by terms_at, status by (updated_at, status_rank).
CREATE TABLE IF NOT EXISTS orders (
    run_id          text NOT NULL DEFAULT '',
    order_id        text NOT NULL,
    account         text NOT NULL DEFAULT '',
    strategy        text NOT NULL DEFAULT '',
    token           text NOT NULL DEFAULT '',
    side            text NOT NULL DEFAULT '',
    order_type      text NOT NULL DEFAULT '',      -- MARKET | LIMIT | SL | SL-M | BRACKET
    validity        text NOT NULL DEFAULT '',      -- DAY | IOC
    qty             integer NOT NULL DEFAULT 0,
    price           numeric(14,2) NOT NULL DEFAULT 0,
    trigger_price   numeric(14,2) NOT NULL DEFAULT 0,
    target_price    numeric(14,2) NOT NULL DEFAULT 0,
    stop_price      numeric(14,2) NOT NULL DEFAULT 0,
    parent_id       text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',      -- entry / exit reason text
    submitted_at    timestamptz,
    terms_at        timestamptz,
    status          text NOT NULL,                 -- ACCEPTED | TRIGGERED | PARTIALLY_FILLED |
                                                   -- FILLED | CANCELLED | EXPIRED | REJECTED
    status_rank     smallint NOT NULL,
    status_reason   text NOT NULL DEFAULT '',
    filled_qty      integer NOT NULL DEFAULT 0,
    avg_fill_price  numeric(18,6),
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (run_id, order_id)
);
CREATE INDEX IF NOT EXISTS orders_updated_at_idx ON orders (updated_at);
CREATE INDEX IF NOT EXISTS orders_account_idx ON orders (account, strategy);

CREATE TABLE IF NOT EXISTS fills (
    run_id           text NOT NULL DEFAULT '',
    fill_id          text NOT NULL,               -- <order_id>#<n>
    order_id         text NOT NULL,
    ts               timestamptz NOT NULL,
    account          text NOT NULL,
    strategy         text NOT NULL,
    token            text NOT NULL,
    side             text NOT NULL,
    qty              integer NOT NULL,
    price            numeric(14,2) NOT NULL,
    cum_qty          integer NOT NULL,
    leaves_qty       integer NOT NULL,
    liquidity        text NOT NULL,               -- MAKER | TAKER
    brokerage        numeric(14,2) NOT NULL,
    stt              numeric(14,2) NOT NULL,
    exchange_charge  numeric(14,2) NOT NULL,
    ipft             numeric(14,2) NOT NULL,
    sebi_fee         numeric(14,2) NOT NULL,
    stamp_duty       numeric(14,2) NOT NULL,
    gst              numeric(14,2) NOT NULL,
    total_costs      numeric(14,2) NOT NULL,
    parent_id        text NOT NULL DEFAULT '',
    reason           text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, fill_id)
);
CREATE INDEX IF NOT EXISTS fills_ts_idx ON fills (ts);
CREATE INDEX IF NOT EXISTS fills_order_idx ON fills (run_id, order_id);

-- Round trips (flat -> flat) with their entry and exit reasons.
CREATE TABLE IF NOT EXISTS trades (
    run_id        text NOT NULL DEFAULT '',
    trade_id      text NOT NULL,
    account       text NOT NULL,
    strategy      text NOT NULL,
    token         text NOT NULL,
    underlying    text NOT NULL DEFAULT '',
    direction     text NOT NULL,                  -- LONG | SHORT
    qty           integer NOT NULL,
    entry_ts      timestamptz NOT NULL,
    exit_ts       timestamptz NOT NULL,
    entry_price   numeric(18,6) NOT NULL,         -- average, rupees
    exit_price    numeric(18,6) NOT NULL,
    gross         numeric(14,2) NOT NULL,
    costs         numeric(14,2) NOT NULL,
    net           numeric(14,2) NOT NULL,
    entry_reason  text NOT NULL DEFAULT '',
    exit_reason   text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, trade_id)
);
CREATE INDEX IF NOT EXISTS trades_exit_ts_idx ON trades (exit_ts);
CREATE INDEX IF NOT EXISTS trades_strategy_idx ON trades (account, strategy);

-- Latest state of each position; (updated_at, seq) keeps a redelivered older state out.
CREATE TABLE IF NOT EXISTS positions (
    run_id       text NOT NULL DEFAULT '',
    account      text NOT NULL,
    strategy     text NOT NULL,
    token        text NOT NULL,
    underlying   text NOT NULL DEFAULT '',
    qty          integer NOT NULL,
    avg_price    numeric(18,6) NOT NULL,
    realised     numeric(14,2) NOT NULL,
    unrealised   numeric(16,3) NOT NULL,          -- marked to mid: a half paisa is 0.005
    costs        numeric(14,2) NOT NULL,
    net          numeric(16,3) NOT NULL,
    mark         numeric(16,3) NOT NULL,
    seq          bigint NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (run_id, account, strategy, token)
);
