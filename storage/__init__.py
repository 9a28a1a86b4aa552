"""Partition logs on disk, byte-compatible with Apache Kafka's log directories."""
