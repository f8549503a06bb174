-- The quote of each instrument at the end of every event-time minute of a run (issue 17):
-- the minute's last tick (operators.quotes), for the option chain's bid/ask/LTP/OI. Rupees,
-- like candles; open_oi is the OI of the minute's first tick (the day's first minute gives
-- the OI change since the open).
CREATE TABLE IF NOT EXISTS quotes (
    run_id   text NOT NULL DEFAULT '',
    token    text NOT NULL,
    minute   timestamptz NOT NULL,          -- event-time minute start
    ts       timestamptz NOT NULL,          -- exchange time of that minute's last tick
    seq      bigint NOT NULL DEFAULT 0,
    ltp      numeric(14,2) NOT NULL,
    bid      numeric(14,2) NOT NULL,        -- 0: no bid
    ask      numeric(14,2) NOT NULL,        -- 0: no ask
    bid_qty  bigint NOT NULL DEFAULT 0,
    ask_qty  bigint NOT NULL DEFAULT 0,
    oi       bigint NOT NULL DEFAULT 0,
    open_oi  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, token, minute)
);
