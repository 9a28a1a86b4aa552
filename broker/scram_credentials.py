"""SCRAM credentials of the broker: loaded at start, changed by AlterUserScramCredentials (api 51),
described by DescribeUserScramCredentials (api 50), as Kafka's ZkAdminManager.

Where they live is described in :mod:`broker.security.credentials`: ZooKeeper's
``/config/users/<sanitized user>`` (read-modify-write keeping the quota keys, a
``/config/changes`` notification ``users/<user>``, applied by every broker through
:class:`~broker.cluster.config_changes.ConfigChangeWatcher`), or the owner-only file in the first
log dir on the embedded node.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from broker.security.credentials import (
    USER_ENTITY_TYPE,
    ScramCredentialStore,
    credentials_of_config,
    credentials_path,
    read_credentials_file,
    write_credentials_file,
)
from broker.security.scram import MECHANISM_NAMES, MECHANISMS, credential_from_salted_password
from protocol.error_codes import ErrorCode

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

#: Kafka's ZkAdminManager limit on upsertions.
MAX_ITERATIONS = 16384
USERNAME_EMPTY = "Username must not be empty"


def sanitize(user: str) -> str:
    """Kafka's Sanitizer.sanitize: URL-encoding with ``%20`` for a space and ``%2A`` for ``*``."""
    return quote(user, safe="-_.").replace("~", "%7E")


def desanitize(name: str) -> str:
    return unquote(name)


class AlterResult:
    __slots__ = ("error_code", "message", "user")

    def __init__(self, user: str, error_code: int = ErrorCode.NONE, message: str | None = None) -> None:
        self.user = user
        self.error_code = error_code
        self.message = message


class ScramCredentials:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.store = ScramCredentialStore()
        self._loaded = False

    async def ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            await self.load()

    @property
    def _zk(self) -> Any:
        cluster = self.broker.zk_cluster
        return None if cluster is None else cluster.zk

    # -- loading -----------------------------------------------------------------------------------

    async def load(self) -> None:
        """Every user's credentials: from ZooKeeper, or from the file (in a disk worker)."""
        zk = self._zk
        if zk is not None:
            for name in await zk.get_children(f"/config/{USER_ENTITY_TYPE}") or []:
                self.store.apply_user_config(
                    desanitize(name), await zk.get_entity_config(USER_ENTITY_TYPE, name)
                )
            return
        raw = await self.broker.disk.run(read_credentials_file, self._path())
        if raw is not None:
            try:
                self.store.load_document(raw)
            except (ValueError, AttributeError, TypeError) as exc:
                log.error("cannot read %s: %s; no SCRAM credentials loaded", self._path(), type(exc).__name__)

    def user_changed(self, sanitized: str, config: Mapping[str, str]) -> None:
        """A ``users/<user>`` config change notification (every broker applies it)."""
        self.store.apply_user_config(desanitize(sanitized), config)

    def _path(self) -> Any:
        return credentials_path(self.broker.log_dirs[0])

    # -- DescribeUserScramCredentials ----------------------------------------------------------------

    async def describe(
        self, users: Sequence[str] | None
    ) -> list[tuple[str, int, str | None, list[tuple[int, int]]]]:
        """(user, error code, message, [(mechanism type, iterations)]) per result, as Kafka."""
        configs = await self._all_configs() if not users else {}
        if not users:
            out: list[tuple[str, int, str | None, list[tuple[int, int]]]] = []
            for user in sorted(configs):
                infos = _infos(configs[user])
                if infos:
                    out.append((user, 0, None, infos))
            return out
        results: dict[str, tuple[str, int, str | None, list[tuple[int, int]]]] = {}
        counts: dict[str, int] = {}
        for user in users:
            counts[user] = counts.get(user, 0) + 1
        for user in users:
            if user in results:
                continue
            if not user:
                results[user] = (user, ErrorCode.RESOURCE_NOT_FOUND, USERNAME_EMPTY, [])
            elif counts[user] > 1:
                results[user] = (
                    user,
                    ErrorCode.DUPLICATE_RESOURCE,
                    f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}",
                    [],
                )
            else:
                infos = _infos(await self._user_config(user))
                if infos:
                    results[user] = (user, 0, None, infos)
                else:
                    results[user] = (
                        user,
                        ErrorCode.RESOURCE_NOT_FOUND,
                        f"Attempt to describe a user credential that does not exist: {user}",
                        [],
                    )
        return [results[user] for user in dict.fromkeys(users)]

    async def _all_configs(self) -> dict[str, dict[str, str]]:
        zk = self._zk
        if zk is None:
            return {
                user: {m: c.to_config() for m, c in self.store.of_user(user).items()}
                for user in self.store.users()
            }
        names = await zk.get_children(f"/config/{USER_ENTITY_TYPE}") or []
        return {desanitize(n): await zk.get_entity_config(USER_ENTITY_TYPE, n) for n in names}

    async def _user_config(self, user: str) -> dict[str, str]:
        zk = self._zk
        if zk is None:
            return {m: c.to_config() for m, c in self.store.of_user(user).items()}
        config: dict[str, str] = await zk.get_entity_config(USER_ENTITY_TYPE, sanitize(user))
        return config

    # -- AlterUserScramCredentials ---------------------------------------------------------------------

    async def alter(self, upsertions: Sequence[Any], deletions: Sequence[Any]) -> list[AlterResult]:
        """Kafka's ZkAdminManager.alterUserScramCredentials, result for result."""
        results: list[AlterResult] = []
        illegal: dict[str, str] = {}
        for deletion in deletions:
            if not deletion.name:
                illegal[deletion.name] = USERNAME_EMPTY
            elif deletion.mechanism not in MECHANISM_NAMES:
                illegal[deletion.name] = "Unknown SCRAM mechanism"
        for upsertion in upsertions:
            if not upsertion.name:
                illegal[upsertion.name] = USERNAME_EMPTY
            elif upsertion.mechanism not in MECHANISM_NAMES:
                illegal[upsertion.name] = "Unknown SCRAM mechanism"
            elif upsertion.iterations > MAX_ITERATIONS:
                illegal[upsertion.name] = "Too many iterations"
            elif upsertion.iterations < MECHANISMS[MECHANISM_NAMES[upsertion.mechanism]][1]:
                illegal[upsertion.name] = "Too few iterations"
        for user, message in illegal.items():
            code = (
                ErrorCode.UNSUPPORTED_SASL_MECHANISM
                if message == "Unknown SCRAM mechanism"
                else ErrorCode.UNACCEPTABLE_CREDENTIAL
            )
            results.append(AlterResult(user, code, message))
        pairs = [(u.name, u.mechanism) for u in upsertions if u.name not in illegal] + [
            (d.name, d.mechanism) for d in deletions if d.name not in illegal
        ]
        duplicated = {pair[0] for pair in pairs if pairs.count(pair) > 1}
        for user in sorted(duplicated):
            results.append(
                AlterResult(
                    user,
                    ErrorCode.DUPLICATE_RESOURCE,
                    "A user credential cannot be altered twice in the same request",
                )
            )
        users = list(dict.fromkeys(name for name, _ in pairs if name not in duplicated))
        configs = {user: dict(await self._user_config(user)) for user in users}
        missing = {
            d.name
            for d in deletions
            if d.name in configs and MECHANISM_NAMES[d.mechanism] not in configs[d.name]
        }
        for user in users:
            if user in missing:
                results.append(
                    AlterResult(
                        user,
                        ErrorCode.RESOURCE_NOT_FOUND,
                        "Attempt to delete a user credential that does not exist",
                    )
                )
        to_alter = [user for user in users if user not in missing]
        for d in deletions:
            if d.name in to_alter:
                configs[d.name].pop(MECHANISM_NAMES[d.mechanism], None)
        for u in upsertions:
            if u.name in to_alter:
                name = MECHANISM_NAMES[u.mechanism]
                credential = credential_from_salted_password(name, u.salt, u.salted_password, u.iterations)
                configs[u.name][name] = credential.to_config()
        for user in to_alter:
            try:
                await self._persist(user, configs[user])
            except Exception as exc:
                log.info(
                    "Error encountered while altering user SCRAM credentials of %s: %s",
                    user,
                    type(exc).__name__,
                )
                results.append(AlterResult(user, ErrorCode.UNKNOWN_SERVER_ERROR, None))
                continue
            results.append(AlterResult(user))
        return results

    async def _persist(self, user: str, config: dict[str, str]) -> None:
        zk = self._zk
        if zk is not None:
            await self._persist_zk(zk, user, config)
            return
        self.store.set_user(user, credentials_of_config(user, config))
        await self.broker.disk.run(write_credentials_file, self._path(), self.store.document())

    async def _persist_zk(self, zk: Any, user: str, scram_config: dict[str, str]) -> None:
        """Read-modify-write of ``/config/users/<user>``: the SCRAM keys replaced, every other key
        (quotas) kept as it is in ZooKeeper at the moment of the write (a conditional set, retried
        when another writer came in between), then the change notification."""
        from kazoo.exceptions import BadVersionError, NodeExistsError

        from broker.cluster.zk import data, paths

        path = paths.config_entity(USER_ENTITY_TYPE, sanitize(user))
        for _ in range(10):
            got = await zk.get_data(path)
            current = data.decode_config(got[0]) if got else {}
            merged = {k: v for k, v in current.items() if k not in MECHANISMS}
            merged.update({k: v for k, v in scram_config.items() if k in MECHANISMS})
            try:
                if got is None:
                    await zk.create(path, data.encode_config(merged))
                else:
                    await zk.set_data(path, data.encode_config(merged), got[1].version)
            except (BadVersionError, NodeExistsError):
                continue
            break
        else:
            raise RuntimeError(f"/config/users/{sanitize(user)} kept changing")
        await zk.create(
            f"{paths.CONFIG_CHANGES}/{paths.CONFIG_CHANGE_PREFIX}",
            data.encode_config_change(f"{USER_ENTITY_TYPE}/{sanitize(user)}"),
            sequential=True,
        )


def _infos(config: Mapping[str, str]) -> list[tuple[int, int]]:
    from broker.security.scram import MECHANISM_TYPES, ScramCredential

    infos = []
    for mechanism, code in MECHANISM_TYPES.items():
        text = config.get(mechanism)
        if text is not None:
            try:
                infos.append((code, ScramCredential.from_config(text).iterations))
            except ValueError:
                continue
    return infos
