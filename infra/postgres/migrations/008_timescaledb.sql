-- Tables ready to be TimescaleDB hypertables (issue 18); the same schema in plain mode.
-- A hypertable needs its time column in every unique index, so fills are keyed by
-- (run_id, fill_id, ts): a fill's time is part of the immutable event, so a redelivered
-- fill still meets its own row (connectors/journal.py upserts on this key).
ALTER TABLE fills DROP CONSTRAINT IF EXISTS fills_pkey;
ALTER TABLE fills ADD PRIMARY KEY (run_id, fill_id, ts);

-- Raw ticks as the exchange reported them (paise, like operators.events.Tick). Nothing in
-- the flows writes here yet: the replayable record of ticks is Kafka (md.ticks, unlimited
-- retention). With TimescaleDB the table is compressed and may get a retention policy.
CREATE TABLE IF NOT EXISTS ticks (
    token       text NOT NULL,
    ts          timestamptz NOT NULL,         -- exchange time (ts_event)
    seq         bigint NOT NULL DEFAULT 0,
    exchange    text NOT NULL,
    ltp         bigint NOT NULL,
    last_qty    bigint NOT NULL DEFAULT 0,
    cum_volume  bigint NOT NULL DEFAULT 0,
    bid         bigint NOT NULL DEFAULT 0,
    ask         bigint NOT NULL DEFAULT 0,
    bid_qty     bigint NOT NULL DEFAULT 0,
    ask_qty     bigint NOT NULL DEFAULT 0,
    oi          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (token, ts, seq)
);
