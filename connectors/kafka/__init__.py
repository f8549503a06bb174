"""Kafka I/O: admin and inspection, serde, the sink, the replay source."""
