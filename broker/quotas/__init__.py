"""Client quotas (Kafka's ClientQuotaManager family): byte rates and request time per user and
client id, throttled as Kafka ≥ 2.0 does (KIP-219: answer at once with ``throttle_time_ms``, then
mute the connection for that long).

- :mod:`.entity`: quota entities, Kafka's Sanitizer, the precedence of the eight entity kinds;
- :mod:`.rate`: Kafka's sampled ``Rate`` and the throttle time it implies;
- :mod:`.manager`: ``ClientQuotas``, what the request path records into;
- :mod:`.store`: where the quota configs live (a file, or ZooKeeper's ``/config/users`` and
  ``/config/clients``).

Nothing here is imported while no quota is configured.
"""

#: The embedded node's quota configs, in its first log dir (see :mod:`.store`).
QUOTAS_FILE = "brook-client-quotas.json"
