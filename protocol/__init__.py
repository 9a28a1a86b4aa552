"""Kafka wire protocol, sans I/O: generated message codecs, framing, record batches."""
