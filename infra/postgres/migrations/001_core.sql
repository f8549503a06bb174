-- scalpflow core schema. Prices are numeric rupees (exact); times are timestamptz (UTC).
-- Every table has a natural key so Bytewax's at-least-once output can be upserted.

CREATE TABLE IF NOT EXISTS runs (
    run_id       text PRIMARY KEY,
    kind         text NOT NULL,               -- live | demo | backtest
    started_at   timestamptz NOT NULL,
    config_hash  text NOT NULL,
    config       jsonb NOT NULL DEFAULT '{}'::jsonb,
    note         text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS instruments (
    token       text PRIMARY KEY,
    symbol      text NOT NULL,
    underlying  text NOT NULL,
    kind        text NOT NULL,
    exchange    text NOT NULL,
    strike      numeric(14,2) NOT NULL DEFAULT 0,
    expiry      date,
    lot_size    integer NOT NULL,
    tick_size   numeric(8,2) NOT NULL
);

CREATE TABLE IF NOT EXISTS candles (
    run_id    text NOT NULL DEFAULT '',
    token     text NOT NULL,
    interval  text NOT NULL,                  -- 1s | 1m | ONE_MINUTE ... for backfills
    ts        timestamptz NOT NULL,           -- window start
    open      numeric(14,2) NOT NULL,
    high      numeric(14,2) NOT NULL,
    low       numeric(14,2) NOT NULL,
    close     numeric(14,2) NOT NULL,
    volume    bigint NOT NULL,
    vwap      double precision,
    ticks     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, token, interval, ts)
);

CREATE TABLE IF NOT EXISTS indicators (
    run_id    text NOT NULL DEFAULT '',
    token     text NOT NULL,
    interval  text NOT NULL,
    ts        timestamptz NOT NULL,           -- window start of the candle they close on
    values    jsonb NOT NULL,
    PRIMARY KEY (run_id, token, interval, ts)
);

CREATE TABLE IF NOT EXISTS option_analytics (
    run_id      text NOT NULL DEFAULT '',
    token       text NOT NULL,
    ts          timestamptz NOT NULL,         -- truncated to the second
    underlying  text NOT NULL,
    price       double precision NOT NULL,
    forward     double precision,
    iv          double precision,
    delta       double precision,
    gamma       double precision,
    theta       double precision,
    vega        double precision,
    iv_percentile double precision,
    PRIMARY KEY (run_id, token, ts)
);

CREATE TABLE IF NOT EXISTS regimes (
    run_id         text NOT NULL DEFAULT '',
    underlying     text NOT NULL,
    ts             timestamptz NOT NULL,
    regime         text NOT NULL,
    features       jsonb NOT NULL,
    model_version  text NOT NULL,
    PRIMARY KEY (run_id, underlying, ts)
);

CREATE TABLE IF NOT EXISTS signals (
    run_id      text NOT NULL DEFAULT '',
    signal_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    strategy    text NOT NULL,
    underlying  text NOT NULL,
    instrument  text NOT NULL,
    side        text NOT NULL,
    action      text NOT NULL,
    reason      text NOT NULL,
    strength    double precision NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, signal_id)
);

CREATE TABLE IF NOT EXISTS risk_events (
    run_id      text NOT NULL DEFAULT '',
    ts          timestamptz NOT NULL,
    account     text NOT NULL,
    kind        text NOT NULL,
    detail      text NOT NULL,
    strategy    text NOT NULL DEFAULT '',
    instrument  text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, ts, account, kind, strategy, instrument, detail)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    reason            text NOT NULL,
    raw               bytea NOT NULL,
    PRIMARY KEY (source_topic, source_partition, source_offset)
);

CREATE TABLE IF NOT EXISTS ai_state (
    run_id      text NOT NULL DEFAULT '',
    ts          timestamptz NOT NULL,
    account     text NOT NULL,
    strategy    text NOT NULL,
    state       jsonb NOT NULL,
    PRIMARY KEY (run_id, ts, account, strategy)
);
