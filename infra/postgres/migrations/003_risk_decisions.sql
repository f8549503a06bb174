-- Risk decisions on every order intent: approvals (possibly resized) and denials with the
-- machine-readable reason (DESIGN invariant 5).
CREATE TABLE IF NOT EXISTS risk_decisions (
    run_id      text NOT NULL DEFAULT '',
    order_id    text NOT NULL,
    ts          timestamptz NOT NULL,
    account     text NOT NULL,
    strategy    text NOT NULL,
    instrument  text NOT NULL,
    side        text NOT NULL,
    decision    text NOT NULL,               -- APPROVED | DENIED
    qty         integer NOT NULL,
    requested_qty integer,
    reason      text NOT NULL,
    PRIMARY KEY (run_id, order_id)
);
CREATE INDEX IF NOT EXISTS risk_decisions_ts_idx ON risk_decisions (ts);
