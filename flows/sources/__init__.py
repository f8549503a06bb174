"""The flows' Bytewax inputs over Kafka: aligned ticks, bounded ends, controls."""
