"""Standalone mode's ACL store: ``brook-acls.json`` in the first log dir.

The whole document is rewritten on every change, atomically (``name.tmp`` written and fsync'd,
renamed over the file, the directory fsync'd, in a disk worker): a crash leaves the old or the
new ACLs, never a torn file, and a CreateAcls is answered only once its ACLs are durable, as
Kafka answers once ZooKeeper has them. The format is a list of resources, each with the entries
in AclEntry's JSON, so an operator can read it::

    {"version":1,"resources":[{"resourceType":"Topic","patternType":"LITERAL","name":"t",
      "acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}]}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from broker.security.acl import (
    AccessControlEntry,
    ResourcePattern,
    pascal,
    pattern_type_named,
    resource_type_named,
)
from broker.security.acl_json import AclJsonError, decode_entry, entry_map
from storage.fs import FileSystem

ACL_FILE = "brook-acls.json"
Entries = frozenset[AccessControlEntry]


def encode_document(acls: dict[ResourcePattern, Entries]) -> bytes:
    resources = [
        {
            "resourceType": pascal(pattern.resource_type.name),
            "patternType": pattern.pattern_type.name,
            "name": pattern.name,
            "acls": [
                entry_map(e)
                for e in sorted(entries, key=lambda e: (e.principal, e.host, e.operation, e.permission_type))
            ],
        }
        for pattern, entries in sorted(
            acls.items(), key=lambda kv: (kv[0].resource_type, kv[0].pattern_type, kv[0].name)
        )
        if entries
    ]
    return json.dumps({"version": 1, "resources": resources}, indent=1, ensure_ascii=False).encode()


def decode_document(data: bytes) -> dict[ResourcePattern, Entries]:
    try:
        document: Any = json.loads(data)
        if document.get("version") != 1:
            raise AclJsonError(f"unsupported {ACL_FILE} version {document.get('version')!r}")
        acls: dict[ResourcePattern, Entries] = {}
        for item in document["resources"]:
            pattern = ResourcePattern(
                resource_type_named(item["resourceType"]),
                str(item["name"]),
                pattern_type_named(item["patternType"]),
            )
            acls[pattern] = frozenset(decode_entry(e) for e in item["acls"])
        return acls
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, AclJsonError):
            raise
        raise AclJsonError(f"bad {ACL_FILE}: {exc}") from exc


class FileAclStore:
    def __init__(self, path: Path, fs: FileSystem, run: Callable[..., Awaitable[Any]]) -> None:
        self.path = path
        self.fs = fs
        self._run = run  # the broker's disk workers: no file work on the loop
        self._acls: dict[ResourcePattern, Entries] = {}

    async def load(self) -> dict[ResourcePattern, Entries]:
        def read() -> bytes | None:
            return self.path.read_bytes() if self.path.exists() else None

        data = await self._run(read)
        self._acls = decode_document(data) if data is not None else {}
        return dict(self._acls)

    async def update(
        self, changes: Mapping[ResourcePattern, Callable[[Entries], Entries]]
    ) -> dict[ResourcePattern, Entries]:
        """Every change in one atomic rewrite (a CreateAcls of many resources is one fsync)."""
        acls = dict(self._acls)
        stored: dict[ResourcePattern, Entries] = {}
        for pattern, change in changes.items():
            new = stored[pattern] = change(acls.get(pattern, frozenset()))
            if new:
                acls[pattern] = new
            else:
                acls.pop(pattern, None)
        if acls != self._acls:
            await self._run(self.fs.write_file_atomically, self.path, encode_document(acls))
            self._acls = acls
        return stored

    async def close(self) -> None:
        return None
