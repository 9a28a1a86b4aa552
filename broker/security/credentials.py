"""SCRAM credentials: the broker's in-memory store and where it is kept.

- In memory, :class:`ScramCredentialStore` maps user -> mechanism -> :class:`ScramCredential`;
  SCRAM exchanges read it on the event loop.
- ZooKeeper mode: as Kafka, in ``/config/users/<user>`` as config entries
  ``"SCRAM-SHA-256": "salt=...,stored_key=...,server_key=...,iterations=4096"``, next to the
  user's quota configs (``producer_byte_rate``...) which belong to the quota code: every write
  reads the znode and keeps the keys it does not own. A ``/config/changes`` notification
  ``users/<user>`` makes every broker re-read that user.
- Standalone: the file ``brook-scram-credentials.json`` in the first log dir, written
  atomically (temp file, fsync, rename, fsync of the directory) in a disk worker, readable only by
  its owner. Not the metadata document: that one holds no secrets and is read by tools and
  tests, while these salted keys are password equivalents for SCRAM (a stolen stored key and
  server key let an attacker impersonate the server), so they get a file of their own with
  0600 permissions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from broker.security.scram import MECHANISMS, ScramCredential

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "brook-scram-credentials.json"
USER_ENTITY_TYPE = "users"


class ScramCredentialStore:
    def __init__(self) -> None:
        self._users: dict[str, dict[str, ScramCredential]] = {}

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return self._users.get(user, {}).get(mechanism)

    def of_user(self, user: str) -> dict[str, ScramCredential]:
        return dict(self._users.get(user, {}))

    def users(self) -> list[str]:
        return sorted(self._users)

    def set_user(self, user: str, credentials: Mapping[str, ScramCredential]) -> None:
        """Replace the user's credentials (none: the user has no SCRAM credential any more)."""
        if credentials:
            self._users[user] = dict(credentials)
        else:
            self._users.pop(user, None)

    def apply_user_config(self, user: str, config: Mapping[str, str]) -> None:
        """The user's SCRAM credentials from its ``/config/users/<user>`` entries (others ignored)."""
        self.set_user(user, credentials_of_config(user, config))

    # -- the standalone file ---------------------------------------------------------------------

    def document(self) -> bytes:
        users = {
            user: {mechanism: credential.to_config() for mechanism, credential in sorted(mechs.items())}
            for user, mechs in sorted(self._users.items())
        }
        return json.dumps({"version": 1, "users": users}, indent=1).encode()

    def load_document(self, raw: bytes) -> None:
        document = json.loads(raw)
        users = document.get("users", {}) if isinstance(document, dict) else {}
        self._users = {}
        for user, config in users.items():
            self.apply_user_config(str(user), {str(k): str(v) for k, v in dict(config).items()})


def credentials_of_config(user: str, config: Mapping[str, str]) -> dict[str, ScramCredential]:
    found: dict[str, ScramCredential] = {}
    for mechanism in MECHANISMS:
        text = config.get(mechanism)
        if text is None:
            continue
        try:
            found[mechanism] = ScramCredential.from_config(text)
        except ValueError:
            # Never log the value: it is a password equivalent.
            log.error("ignoring the unreadable %s credential of user %s", mechanism, user)
    return found


def credentials_path(log_dir: Path) -> Path:
    return log_dir / CREDENTIALS_FILE


def read_credentials_file(path: Path) -> bytes | None:
    """The file's bytes, None when there is none; blocking (a disk worker or start-up)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_credentials_file(path: Path, data: bytes) -> None:
    """Atomic and owner-only; blocking, for a disk worker."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
