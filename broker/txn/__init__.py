"""The transaction coordinator on ``__transaction_state`` (Kafka 3.9's, transaction version 0).

* :mod:`broker.txn.state`: a transactional id's metadata and the state machine;
* :mod:`broker.txn.records`: the topic's records in Kafka's format;
* :mod:`broker.txn.store` / :mod:`broker.txn.loader`: the topic, its partitions' ownership and
  loading, the cache, durable writes;
* :mod:`broker.txn.markers`: COMMIT/ABORT markers to each partition leader;
* :mod:`broker.txn.coordinator`: the apis' logic and the timers.
"""

from broker.txn.coordinator import ProducerIdAndEpoch, TransactionCoordinator
from broker.txn.store import TRANSACTION_STATE_TOPIC

__all__ = ["TRANSACTION_STATE_TOPIC", "ProducerIdAndEpoch", "TransactionCoordinator"]
