"""The transaction coordinator on ``__transaction_state`` (Kafka 3.9's, transaction version 0).

* :mod:`broker.txn.state`: a transactional id's metadata and the state machine;
* :mod:`broker.txn.records`: the topic's records in Kafka's format;
* :mod:`broker.txn.store` / :mod:`broker.txn.loader`: the topic, its partitions' ownership and
  loading, the cache, durable writes;
* :mod:`broker.txn.markers`: COMMIT/ABORT markers to each partition leader;
* :mod:`broker.txn.coordinator`: the apis' logic and the timers.

Nothing is imported here: the broker loads the coordinator at its first use
(``Broker.txn_coordinator``).
"""

TRANSACTION_STATE_TOPIC = "__transaction_state"
