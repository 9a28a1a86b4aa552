"""What the group and the transaction coordinators share about their internal topics
(``__consumer_offsets``, ``__transaction_state``), as Kafka's coordinators do:
:mod:`~broker.coordinator.partitions` (creation, leadership, load tasks, acks=all writes) and
:mod:`~broker.coordinator.replay` (reading a partition back at load)."""
