"""Cluster mode's ACL store: ZooKeeper in Kafka's AclAuthorizer layout, so a Kafka cluster's ACLs
and Brook's are the same znodes.

- ``/kafka-acl/<ResourceType>/<name>``: LITERAL patterns; ``/kafka-acl-extended/prefixed/
  <ResourceType>/<name>``: PREFIXED ones. Data: AclEntry's JSON (:mod:`acl_json`). Writes are
  conditional on the znode version and retried on a conflict, as Kafka's updateResourceAcls.
- After each write a sequential change node: ``/kafka-acl-changes/acl_changes_`` with
  ``TOPIC:name`` (LITERAL) or ``/kafka-acl-extended-changes/acl_changes_`` with an
  ExtendedAclChangeEvent. Every broker watches both and re-reads the named resource.

Watches fire on kazoo's threads; :class:`KafkaZkClient` hands them to the loop, where the
re-read runs as a task (ZooKeeper calls are coroutines, never blocking the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from broker.cluster.zk.client import KafkaZkClient
from broker.cluster.zk.errors import BadVersionError, NodeExistsError, NoNodeError
from broker.security.acl import AccessControlEntry, PatternType, ResourcePattern, pascal, resource_type_named
from broker.security.acl_json import (
    AclJsonError,
    decode_change,
    decode_entries,
    encode_entries,
    encode_extended_change,
    encode_literal_change,
)

log = logging.getLogger(__name__)

LITERAL_ROOT = "/kafka-acl"
EXTENDED_ROOT = "/kafka-acl-extended"
PREFIXED_ROOT = f"{EXTENDED_ROOT}/prefixed"
LITERAL_CHANGES = "/kafka-acl-changes"
EXTENDED_CHANGES = "/kafka-acl-extended-changes"
CHANGE_PREFIX = "acl_changes_"
#: Kafka's AclAuthorizer changeExpirationMs (ZkNodeChangeNotificationListener's default).
CHANGE_EXPIRATION_MS = 15 * 60 * 1000
Entries = frozenset[AccessControlEntry]


def resource_path(pattern: ResourcePattern) -> str:
    root = PREFIXED_ROOT if pattern.pattern_type is PatternType.PREFIXED else LITERAL_ROOT
    return f"{root}/{pascal(pattern.resource_type.name)}/{pattern.name}"


class ZkAclStore:
    def __init__(self, zk: KafkaZkClient, on_change: Callable[[ResourcePattern, Entries], None]) -> None:
        self.zk = zk
        self.on_change = on_change
        self._last_seen = {LITERAL_CHANGES: "", EXTENDED_CHANGES: ""}
        self._locks = {LITERAL_CHANGES: asyncio.Lock(), EXTENDED_CHANGES: asyncio.Lock()}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def load(self) -> dict[ResourcePattern, Entries]:
        for path in (LITERAL_ROOT, PREFIXED_ROOT, LITERAL_CHANGES, EXTENDED_CHANGES):
            await self.zk.ensure_path(path)
        # Changes already queued are covered by the full read below: start after them.
        for changes in (LITERAL_CHANGES, EXTENDED_CHANGES):
            children = await self.zk.get_children(changes, watch=self._watcher(changes)) or []
            self._last_seen[changes] = children[-1] if children else ""
        acls: dict[ResourcePattern, Entries] = {}
        for root, pattern_type in (
            (LITERAL_ROOT, PatternType.LITERAL),
            (PREFIXED_ROOT, PatternType.PREFIXED),
        ):
            for type_name in await self.zk.get_children(root) or []:
                try:
                    resource_type = resource_type_named(type_name)
                except ValueError:
                    log.warning("ignoring ACL znodes under %s/%s: unknown resource type", root, type_name)
                    continue
                for name in await self.zk.get_children(f"{root}/{type_name}") or []:
                    pattern = ResourcePattern(resource_type, name, pattern_type)
                    entries = await self._read(pattern)
                    if entries:
                        acls[pattern] = entries
        return acls

    async def _read(self, pattern: ResourcePattern) -> Entries:
        got = await self.zk.get_data(resource_path(pattern))
        if got is None:
            return frozenset()
        try:
            return decode_entries(got[0])
        except AclJsonError as exc:
            log.error("ignoring the ACLs of %s: %s", resource_path(pattern), exc)
            return frozenset()

    async def update(
        self, changes: Mapping[ResourcePattern, Callable[[Entries], Entries]]
    ) -> dict[ResourcePattern, Entries]:
        """Each resource's znode in turn, as Kafka's AclAuthorizer.updateResourceAcls."""
        return {pattern: await self._update_one(pattern, change) for pattern, change in changes.items()}

    async def _update_one(self, pattern: ResourcePattern, change: Callable[[Entries], Entries]) -> Entries:
        path = resource_path(pattern)
        while True:
            got = await self.zk.get_data(path)
            current = decode_entries(got[0]) if got is not None else frozenset()
            new = change(current)
            if new == current:
                return current
            try:
                if got is None:
                    await self.zk.create(path, encode_entries(new))
                elif new:
                    await self.zk.set_data(path, encode_entries(new), got[1].version)
                else:
                    await self.zk.delete(path, got[1].version)
            except (BadVersionError, NodeExistsError, NoNodeError):
                continue  # another writer was first: apply the change to its result
            break
        if pattern.pattern_type is PatternType.LITERAL:
            await self.zk.create(
                f"{LITERAL_CHANGES}/{CHANGE_PREFIX}", encode_literal_change(pattern), sequential=True
            )
        else:
            await self.zk.create(
                f"{EXTENDED_CHANGES}/{CHANGE_PREFIX}", encode_extended_change(pattern), sequential=True
            )
        return new

    # -- change notifications ---------------------------------------------------------------------

    def _watcher(self, changes: str) -> Callable[[Any], None]:
        def fired(_event: Any) -> None:  # on the loop (KafkaZkClient bridges kazoo's thread)
            if self._closed:
                return
            task = asyncio.get_running_loop().create_task(self._process(changes))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return fired

    async def _process(self, changes: str) -> None:
        """Re-arm the watch, then re-read each resource named by a change newer than the last seen.
        A failure (ZooKeeper away) is retried: a lost notification would leave stale ACLs."""
        async with self._locks[changes]:
            delay = 0.1
            while not self._closed:
                try:
                    children = await self.zk.get_children(changes, watch=self._watcher(changes)) or []
                    for child in children:
                        if child <= self._last_seen[changes]:
                            continue
                        got = await self.zk.get_data(f"{changes}/{child}")
                        if got is not None:
                            try:
                                pattern = decode_change(got[0], extended=changes == EXTENDED_CHANGES)
                            except AclJsonError as exc:
                                log.error("ignoring ACL change %s/%s: %s", changes, child, exc)
                            else:
                                self.on_change(pattern, await self._read(pattern))
                        self._last_seen[changes] = child
                    await self._purge(changes, children)
                    return
                except Exception:
                    log.warning("processing ACL changes under %s failed; retrying", changes, exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def _purge(self, changes: str, children: list[str]) -> None:
        """ZkNodeChangeNotificationListener.purgeObsoleteNotifications: change nodes older than
        15 minutes (every broker has long applied them) are deleted, by whichever broker sees
        them first."""
        cutoff_ms = time.time() * 1000 - CHANGE_EXPIRATION_MS
        for child in children:
            stat = await self.zk.exists(f"{changes}/{child}")
            if stat is None:
                continue
            if stat.ctime >= cutoff_ms:
                break  # sequential: the rest are younger
            await self.zk.delete(f"{changes}/{child}")

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
