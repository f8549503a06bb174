"""Backtests: a Kafka range replayed through the live flows (engine), spec, sweeps."""
