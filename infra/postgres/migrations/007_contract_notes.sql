-- Contract notes (issue 15): one row per run, account, trade date and scrip, written by the
-- flow's PostgreSQL sink when the account stage closes the day (operators.cost_ledger).
-- Money is numeric rupees (exact: paise / 100). charges = brokerage + exchange_charge + ipft +
-- sebi_fee + stamp_duty + stt + gst, computed on the scrip's day totals as a broker's note
-- does; estimated = the per-fill charges the simulator booked in fills.total_costs; true_up =
-- charges - estimated is the session-close adjustment, so a day's net P&L in the journal is
-- SUM(trades.net) - SUM(contract_notes.true_up). net_amount > 0: receivable by the client.
CREATE TABLE IF NOT EXISTS contract_notes (
    run_id           text NOT NULL DEFAULT '',
    account          text NOT NULL,
    trade_date       date NOT NULL,
    token            text NOT NULL,
    symbol           text NOT NULL DEFAULT '',
    issued_at        timestamptz NOT NULL,          -- session close (or the late fill's time)
    buy_qty          integer NOT NULL,
    buy_value        numeric(16,2) NOT NULL,
    sell_qty         integer NOT NULL,
    sell_value       numeric(16,2) NOT NULL,
    orders           integer NOT NULL,
    brokerage        numeric(14,2) NOT NULL,
    exchange_charge  numeric(14,2) NOT NULL,
    ipft             numeric(14,2) NOT NULL,
    sebi_fee         numeric(14,2) NOT NULL,
    stamp_duty       numeric(14,2) NOT NULL,
    stt              numeric(14,2) NOT NULL,
    gst              numeric(14,2) NOT NULL,
    charges          numeric(14,2) NOT NULL,
    estimated        numeric(14,2) NOT NULL,
    true_up          numeric(14,2) NOT NULL,
    net_amount       numeric(16,2) NOT NULL,
    PRIMARY KEY (run_id, account, trade_date, token)
);
CREATE INDEX IF NOT EXISTS contract_notes_day_idx ON contract_notes (account, trade_date);
