"""Generator of protocol/messages from Kafka's message schemas (run: python -m protocol.codegen)."""
