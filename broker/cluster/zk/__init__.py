"""Brook's side of Kafka's ZooKeeper: the layout (``paths``, ``data``) and an asyncio client."""
