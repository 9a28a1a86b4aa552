"""The ``brook`` command line: Kafka 3.9's admin and console tools on Brook's own protocol codec."""
