"""Where client quota configs live.

- ZooKeeper mode: Kafka's layout, ``/config/users/<user>``, ``/config/clients/<client-id>`` and
  ``/config/users/<user>/clients/<client-id>`` (``{"version":1,"config":{...}}``, sanitized
  names, ``<default>``), each write followed by a ``/config/changes/config_change_`` notification
  (entity path such as ``users/alice/clients/app``) that every broker applies. A user's znode
  also holds its SCRAM credentials (SCRAM-SHA-256/512 keys, owned by SASL): a write reads the
  znode and keeps every key it does not change, as Kafka's AdminZkClient does.
- Embedded node: ``brook-client-quotas.json`` in the first log dir, ``{"version": 1,
  "entities": {"users/alice": {"producer_byte_rate": "1024"}}}``, written whole to a temporary
  file, fsync'd, renamed over the old one and the directory fsync'd (a crash leaves the old or
  the new file, never a torn one), in a disk worker; writes are serialised by a lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from broker.quotas import QUOTAS_FILE
from broker.quotas.entity import QuotaEntity

if TYPE_CHECKING:
    from broker.cluster.zk.client import KafkaZkClient
    from storage.fs import FileSystem

log = logging.getLogger(__name__)

__all__ = ["QUOTAS_FILE", "FileQuotaStore", "QuotaStore", "ZkQuotaStore"]

DiskRunner = Callable[..., Awaitable[Any]]


class QuotaStore(Protocol):
    async def load_all(self) -> dict[QuotaEntity, dict[str, str]]:
        """Every stored entity's config (all its keys)."""
        ...

    async def read(self, entity: QuotaEntity) -> dict[str, str]:
        """One entity's stored config, every key kept (empty when there is none)."""
        ...

    async def write(self, entity: QuotaEntity, config: Mapping[str, str]) -> None:
        """Store ``config`` as the entity's whole config and tell every broker."""
        ...


class FileQuotaStore:
    """The embedded node's quota configs, in one JSON file."""

    def __init__(self, path: Path, fs: FileSystem, run: DiskRunner) -> None:
        self.path = path
        self.fs = fs
        self.run = run
        self._entities: dict[str, dict[str, str]] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.path.exists():
            return
        try:
            doc = json.loads(self.fs.read_file(self.path))
            entities = doc["entities"]
            if not isinstance(entities, dict):
                raise ValueError("entities is not an object")
            self._entities = {
                str(path): {str(k): str(v) for k, v in config.items()} for path, config in entities.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # As a corrupt dynamic config in Kafka: logged, and the broker serves without it.
            log.error("ignoring the client quota file %s: %s", self.path, exc)

    async def load_all(self) -> dict[QuotaEntity, dict[str, str]]:
        await self.run(self._load)
        loaded: dict[QuotaEntity, dict[str, str]] = {}
        for path, config in self._entities.items():
            try:
                loaded[QuotaEntity.from_path(path)] = dict(config)
            except ValueError as exc:
                log.error("ignoring a stored client quota: %s", exc)
        return loaded

    async def read(self, entity: QuotaEntity) -> dict[str, str]:
        await self.run(self._load)
        return dict(self._entities.get(entity.path, {}))

    async def write(self, entity: QuotaEntity, config: Mapping[str, str]) -> None:
        async with self._lock:
            await self.run(self._load)
            if config:
                self._entities[entity.path] = dict(config)
            else:
                self._entities.pop(entity.path, None)
            doc = {"version": 1, "entities": self._entities}
            data = json.dumps(doc, indent=1, sort_keys=True).encode()
            await self.run(self.fs.write_file_atomically, self.path, data)


class ZkQuotaStore:
    """Kafka's ``/config/users`` and ``/config/clients`` in ZooKeeper."""

    def __init__(self, zk: KafkaZkClient) -> None:
        self.zk = zk

    @staticmethod
    def _split(entity: QuotaEntity) -> tuple[str, str]:
        entity_type, _, name = entity.path.partition("/")
        return entity_type, name

    async def load_all(self) -> dict[QuotaEntity, dict[str, str]]:
        zk = self.zk
        paths: list[str] = []
        for user in await zk.get_children("/config/users") or []:
            paths.append(f"users/{user}")
            for client in await zk.get_children(f"/config/users/{user}/clients") or []:
                paths.append(f"users/{user}/clients/{client}")
        paths.extend(f"clients/{client}" for client in await zk.get_children("/config/clients") or [])
        entities = []
        for path in paths:
            try:
                entities.append(QuotaEntity.from_path(path))
            except ValueError as exc:
                log.error("ignoring a stored client quota: %s", exc)
        configs = await asyncio.gather(*(self.read(e) for e in entities))
        return dict(zip(entities, configs, strict=True))

    async def read(self, entity: QuotaEntity) -> dict[str, str]:
        return await self.zk.get_entity_config(*self._split(entity))

    async def write(self, entity: QuotaEntity, config: Mapping[str, str]) -> None:
        await self.zk.change_entity_config(*self._split(entity), config)
