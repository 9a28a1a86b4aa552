"""Topic and broker config changes from ZooKeeper, as Kafka's ZkConfigManager and its
ZkNodeChangeNotificationListener on ``/config/changes``.

Every broker runs one :class:`ConfigChangeWatcher`. At start it applies every topic's
``/config/topics/<t>`` and its own dynamic broker configs (``/config/brokers/<default>``, then
``/config/brokers/<id>``), then it watches ``/config/changes``: each ``config_change_<seq>`` newer
than the last one processed names an entity (``topics/<t>``, ``brokers/<id>``), whose config is
read and applied, in sequence order; a broker entity applies only to that broker (``<default>`` to
all), as Kafka's BrokerConfigHandler. After each pass, notifications older than
``change_expiration_ms`` (Kafka: 15 minutes) are deleted. The watch and a new session (watches die
with an expired one) both trigger a pass; passes never overlap. ``users/<user>`` goes to
``apply_user`` (SCRAM credentials) and, as every ``users/...`` and ``clients/...`` entity, to
``apply_quota_entity`` (client quotas); both read the same znode and keep each other's keys.

Everything runs on the event loop: kazoo's watch callbacks are handed to it by KafkaZkClient.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from kazoo.exceptions import ZookeeperError
from kazoo.protocol.states import WatchedEvent

from broker.cluster.zk import data, paths
from broker.cluster.zk.client import KafkaZkClient
from broker.cluster.zk.errors import ZkError, ZkUnavailableError

log = logging.getLogger(__name__)

#: Kafka's ZkConfigManager changeExpirationMs.
CHANGE_EXPIRATION_MS = 15 * 60 * 1000
TOPIC_CONFIG_TYPE = "topics"
TOPICS_PREFIX = f"{TOPIC_CONFIG_TYPE}/"
BROKER_CONFIG_TYPE = "brokers"
BROKERS_PREFIX = f"{BROKER_CONFIG_TYPE}/"
USER_CONFIG_TYPE = "users"
USERS_PREFIX = f"{USER_CONFIG_TYPE}/"
#: The pause before passing again after a pass failed while ZooKeeper still looked connected.
RETRY_BACKOFF_S = 1.0

TopicConfigApplier = Callable[[str, Mapping[str, str]], None]
#: (broker entity: an id or ``<default>``, its dynamic configs).
BrokerConfigApplier = Callable[[str, Mapping[str, str]], object]
#: (sanitized user name, the user's config: SCRAM credentials and quotas).
UserConfigApplier = Callable[[str, Mapping[str, str]], object]
#: (client quota entity path: ``users/<u>``, ``clients/<c>``, ``users/<u>/clients/<c>``).
QuotaEntityApplier = Callable[[str], Awaitable[None]]
QUOTA_PREFIXES = ("users/", "clients/")


def sequence_of(name: str) -> int | None:
    """The sequence number of ``config_change_0000000042``, None for other names."""
    if not name.startswith(paths.CONFIG_CHANGE_PREFIX):
        return None
    digits = name[len(paths.CONFIG_CHANGE_PREFIX) :]
    return int(digits) if digits.isdigit() else None


class ConfigChangeWatcher:
    """Applies topic config changes written by any broker to this broker (``apply(topic, overrides)``)."""

    def __init__(
        self,
        zk: KafkaZkClient,
        apply: TopicConfigApplier,
        *,
        apply_broker: BrokerConfigApplier | None = None,
        broker_entities: tuple[str, ...] = (),
        apply_user: UserConfigApplier | None = None,
        apply_quota_entity: QuotaEntityApplier | None = None,
        change_expiration_ms: int = CHANGE_EXPIRATION_MS,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        retry_backoff_s: float = RETRY_BACKOFF_S,
    ) -> None:
        self.zk = zk
        self.apply = apply
        self.apply_broker = apply_broker
        #: The broker entities this broker follows, in the order they apply at start.
        self.broker_entities = broker_entities
        self.apply_user = apply_user
        self.apply_quota_entity = apply_quota_entity
        self.change_expiration_ms = change_expiration_ms
        self.now_ms = now_ms
        self.retry_backoff_s = retry_backoff_s
        #: Kafka's lastExecutedChange: the sequence of the last notification processed.
        self.last_processed = -1
        self._pass: asyncio.Task[None] | None = None
        self._again = False
        self._stopped = False
        #: Set after every completed pass (tests wait on it rather than sleeping).
        self.processed = asyncio.Event()

    async def start(self) -> None:
        """Apply every topic's stored config, then process the pending notifications."""
        self.zk.add_new_session_callback(self._on_new_session)
        topics = await self.zk.get_children(paths.config_entity_type(TOPIC_CONFIG_TYPE)) or []
        configs = await asyncio.gather(*(self.zk.get_entity_config(TOPIC_CONFIG_TYPE, t) for t in topics))
        for topic, config in zip(topics, configs, strict=True):
            self._apply(topic, config)
        for entity in self.broker_entities:
            await self._broker_changed(entity)
        # As Kafka at start: every pending notification is processed too (re-applying is
        # harmless), which also purges the expired ones.
        await self._run_pass()

    def stop(self) -> None:
        self._stopped = True
        if self._pass is not None:
            self._pass.cancel()

    async def _on_new_session(self) -> None:
        self.trigger()

    def _on_watch(self, _event: WatchedEvent) -> None:
        self.trigger()

    def trigger(self) -> None:
        """Run a pass now, or right after the one running."""
        if self._stopped:
            return
        if self._pass is not None and not self._pass.done():
            self._again = True
            return
        self._pass = asyncio.get_running_loop().create_task(self._run_pass())

    async def _run_pass(self) -> None:
        while True:
            self._again = False
            try:
                await self._process()
            except (ZkError, ZookeeperError) as exc:
                # The changes stay in ZooKeeper, and the watch may be gone (kazoo drops every
                # watch with the connection; a request that failed set none): pass again, once
                # connected. A failure seen while still connected (a request deadline passed on a
                # slow server, or the loss not yet reported to the loop) must retry as well, or no
                # later change would ever reach this broker.
                log.warning("cannot read config changes from ZooKeeper: %s", exc)
                if self._stopped:
                    break
                if isinstance(exc, ZkUnavailableError) or not self.zk.connected:
                    if self.zk.connected:
                        await asyncio.sleep(self.retry_backoff_s)
                    await self.zk.wait_connected()
                    self._again = True
            if not self._again or self._stopped:
                break
        self.processed.set()

    async def _process(self) -> None:
        zk = self.zk
        children = await zk.get_children(paths.CONFIG_CHANGES, self._on_watch) or []
        numbered = sorted((seq, name) for name in children if (seq := sequence_of(name)) is not None)
        now = self.now_ms()
        for seq, name in numbered:
            if seq <= self.last_processed:
                continue
            got = await zk.get_data(f"{paths.CONFIG_CHANGES}/{name}")
            if got is not None:
                try:
                    entity = data.decode_config_change(got[0])
                except data.ZkDataError as exc:
                    log.error("ignoring config change %s: %s", name, exc)
                else:
                    await self._entity_changed(entity)
            self.last_processed = seq
        await self._purge(now, [name for _, name in numbered])

    async def _purge(self, now: int, names: list[str]) -> None:
        """Kafka's purgeObsoleteNotifications: delete the notifications (processed or not, by any
        broker) created more than ``change_expiration_ms`` before this pass began."""
        for name in names:
            path = f"{paths.CONFIG_CHANGES}/{name}"
            stat = await self.zk.exists(path)
            if stat is not None and now - stat.ctime > self.change_expiration_ms:
                await self.zk.delete(path)  # False when another broker purged it first

    async def _entity_changed(self, entity: str) -> None:
        user = entity[len(USERS_PREFIX) :] if entity.startswith(USERS_PREFIX) else None
        if user is not None and "/" not in user and self.apply_user is not None:
            config = await self.zk.get_entity_config(USER_CONFIG_TYPE, user)
            try:
                self.apply_user(user, config)
            except Exception:
                log.exception("applying the config of user %s failed", user)
        if entity.startswith(BROKERS_PREFIX):
            name = entity[len(BROKERS_PREFIX) :]
            if name in self.broker_entities:
                await self._broker_changed(name)
            return
        if entity.startswith(QUOTA_PREFIXES) and self.apply_quota_entity is not None:
            try:
                await self.apply_quota_entity(entity)
            except (ZkError, ZookeeperError):
                raise
            except Exception:
                log.exception("applying the client quotas of %s failed", entity)
            return
        if not entity.startswith(TOPICS_PREFIX):
            log.debug("config change of %s: no dynamic configs of that kind in Brook", entity)
            return
        topic = entity[len(TOPICS_PREFIX) :]
        self._apply(topic, await self.zk.get_entity_config(TOPIC_CONFIG_TYPE, topic))

    async def _broker_changed(self, entity: str) -> None:
        if self.apply_broker is None:
            return
        config = await self.zk.get_entity_config(BROKER_CONFIG_TYPE, entity)
        try:
            self.apply_broker(entity, config)
        except Exception:
            log.exception("applying the dynamic config of broker entity %s failed", entity)

    def _apply(self, topic: str, config: Mapping[str, str]) -> None:
        try:
            self.apply(topic, config)
        except Exception:
            log.exception("applying the config of topic %s failed", topic)
