-- Issue 14: the accounts of a run (one user's paper book each) with the configuration they
-- traded under: capital, static limits, strategies and parameters, adaptive settings. The
-- journal tables already carry an account column; this is what the monitor's account
-- selector and leaderboard read the limits and strategies from.
CREATE TABLE IF NOT EXISTS accounts (
    run_id        text NOT NULL,
    account       text NOT NULL,
    owner         text NOT NULL DEFAULT '',
    capital       numeric(16, 2) NOT NULL,   -- rupees
    limits        jsonb NOT NULL DEFAULT '{}'::jsonb,
    strategies    jsonb NOT NULL DEFAULT '[]'::jsonb,
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, account)
);
-- The account selector filters every journal table by (run_id, account).
CREATE INDEX IF NOT EXISTS fills_run_account_idx ON fills (run_id, account);
CREATE INDEX IF NOT EXISTS risk_events_run_account_idx ON risk_events (run_id, account);
