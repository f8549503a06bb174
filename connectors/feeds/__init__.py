"""Market data feeds: Angel One, the synthetic market, publishing to Kafka."""
