"""Builds the broker's authorizer from ``authorizer.class.name``, ``super.users`` and
``allow.everyone.if.no.acl.found``: ACLs in ZooKeeper in cluster mode, in ``brook-acls.json`` in
the first log dir otherwise. Imported only when an authorizer is configured."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from broker.security.acl_file import ACL_FILE, FileAclStore
from broker.security.authorizer import AclAuthorizer, parse_super_users

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)


def _setting(broker: Broker, name: str) -> str | None:
    return str(broker.config.get(name)) if name in broker.config else None


async def start_authorizer(broker: Broker) -> AclAuthorizer:
    super_users = parse_super_users(_setting(broker, "super.users"))
    allow_if_no_acl = (
        _setting(broker, "allow.everyone.if.no.acl.found") or "false"
    ).strip().lower() == "true"
    authorizer: AclAuthorizer
    if broker.zk_cluster is not None:
        from broker.security.zk_acls import ZkAclStore

        holder: list[AclAuthorizer] = []
        store = ZkAclStore(broker.zk_cluster.zk, lambda pattern, entries: holder[0].apply(pattern, entries))
        authorizer = AclAuthorizer(store, super_users=super_users, allow_if_no_acl=allow_if_no_acl)
        holder.append(authorizer)
    else:
        file_store = FileAclStore(broker.log_dirs[0] / ACL_FILE, broker.fs, broker.disk.run)
        authorizer = AclAuthorizer(file_store, super_users=super_users, allow_if_no_acl=allow_if_no_acl)
    await authorizer.start()
    log.info(
        "ACL authorizer started: %d resource patterns, super users %s, allow.everyone.if.no.acl.found=%s",
        len(authorizer.acls_by_pattern),
        sorted(super_users) or "none",
        allow_if_no_acl,
    )
    return authorizer
