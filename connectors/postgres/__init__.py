"""PostgreSQL I/O: connection and migrations, the sink and its row functions, the
journal, runs, readers used by the monitor and backtests."""
