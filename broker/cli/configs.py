"""``brook configs``: kafka-configs.sh (ConfigCommand) — describe and alter the configs of topics and
brokers (DescribeConfigs, IncrementalAlterConfigs), the quotas of users, client ids and users'
client ids (Describe/AlterClientQuotas): ``--entity-type users|clients`` (``--user`` / ``--client``
and their ``-defaults`` shortcuts, combinable for a user's client id), and users' SCRAM
credentials (Describe/AlterUserScramCredentials, :mod:`broker.cli.scram`)."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from broker.cli import scram
from broker.cli.client import CliError, KafkaClient, KafkaError, NodeConnection, UnsupportedApi, check_error
from broker.cli.common import add_connection_options, client_from, parse_key_values
from protocol.messages.alter_client_quotas_request import AlterClientQuotasRequest, OpData
from protocol.messages.alter_client_quotas_request import EntityData as AlterEntity
from protocol.messages.alter_client_quotas_request import EntryData as AlterEntry
from protocol.messages.describe_client_quotas_request import ComponentData, DescribeClientQuotasRequest
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource
from protocol.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)

TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
SET, DELETE = 0, 1
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
#: ConfigEntry.ConfigSource by its wire id.
SOURCES = {
    0: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "CLIENT_METRICS_CONFIG",
    8: "GROUP_CONFIG",
}
ENTITY_TYPES = ("topics", "brokers", "users", "clients")
#: ConfigCommand's entity types of quotas -> the quota apis' entity types.
QUOTA_ENTITY_TYPES = {"users": "user", "clients": "client-id"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("configs", help="Describe or alter topic, broker and user configs.")
    add_connection_options(parser)
    parser.add_argument("--describe", action="store_true")
    parser.add_argument("--alter", action="store_true")
    parser.add_argument("--entity-type", choices=ENTITY_TYPES)
    parser.add_argument("--entity-name")
    parser.add_argument("--entity-default", action="store_true")
    parser.add_argument("--topic")
    parser.add_argument("--broker")
    parser.add_argument("--broker-defaults", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--user-defaults", action="store_true")
    parser.add_argument("--client")
    parser.add_argument("--client-defaults", action="store_true")
    parser.add_argument("--add-config", action="append", default=[])
    parser.add_argument("--delete-config", action="append", default=[])
    parser.add_argument("--all", action="store_true", help="List all configs, not only the dynamic ones.")
    parser.set_defaults(run=run, error_prefix="")


def _entity(args: argparse.Namespace) -> tuple[str, str | None]:
    """(entity type, name) from --entity-type/--entity-name or the --topic/--broker/--user shortcuts;
    name "" is the default entity, None every entity."""
    if args.topic is not None:
        return "topics", args.topic
    if args.broker is not None:
        return "brokers", args.broker
    if args.broker_defaults:
        return "brokers", ""
    if args.user is not None:
        return "users", args.user
    if args.user_defaults:
        return "users", ""
    if args.entity_type is None:
        raise CliError("At least one entity type must be specified")
    if args.entity_default:
        return args.entity_type, ""
    return args.entity_type, args.entity_name


def _quota_entity(args: argparse.Namespace) -> list[tuple[str, str | None]] | None:
    """The quota entity named by --user/--client (and their defaults) or --entity-type users|clients:
    (api entity type, name: "" the default, None every entity) pairs; None for other entities."""
    parts: list[tuple[str, str | None]] = []
    if args.user is not None or args.user_defaults:
        parts.append(("user", "" if args.user_defaults else args.user))
    if args.client is not None or args.client_defaults:
        parts.append(("client-id", "" if args.client_defaults else args.client))
    if parts:
        return parts
    if args.entity_type in QUOTA_ENTITY_TYPES and args.topic is None and args.broker is None:
        name = "" if args.entity_default else args.entity_name
        return [(QUOTA_ENTITY_TYPES[args.entity_type], name)]
    return None


def run(args: argparse.Namespace) -> int:
    """ConfigCommand prints its own argument errors bare and a failed request after a header."""
    try:
        return _run(args)
    except (KafkaError, UnsupportedApi) as exc:
        raise CliError(
            f"Error while executing config command with args '{' '.join(args.argv)}'\n{exc}"
        ) from exc


def _run(args: argparse.Namespace) -> int:
    if args.describe == args.alter:
        raise CliError("Command must include exactly one action: --describe, --alter")
    quota_entity = _quota_entity(args)
    if quota_entity is not None:
        # A user alone also has SCRAM credentials (not its defaults, nor a user's client id).
        user = quota_entity[0][1] if [kind for kind, _ in quota_entity] == ["user"] else ""
        with client_from(args) as client:
            if args.describe:
                # A broker without client quotas may still hold SCRAM credentials.
                with contextlib.suppress(UnsupportedApi):
                    describe_quotas(client, quota_entity)
                if user != "":
                    scram.describe(client, user)
            elif user != "" and _has_scram(args):
                _alter_scram(client, user, args)
            else:
                alter_quotas(client, quota_entity, args)
        return 0
    entity_type, name = _entity(args)
    with client_from(args) as client:
        if entity_type == "brokers" and name:
            _broker_id(name)
        if args.describe:
            for entity in _entities(client, entity_type, name):
                describe_resource(client, entity_type, entity, args.all)
        else:
            if name is None:
                raise CliError(f"An entity name must be specified with --alter of {entity_type}")
            alter_resource(client, entity_type, name, args)
    return 0


def _has_scram(args: argparse.Namespace) -> bool:
    added = scram.parse_add_config(args.add_config)
    deleted = [k.strip() for entry in args.delete_config for k in entry.split(",") if k.strip()]
    return any(scram.is_scram(k) for k in [*added, *deleted])


def _alter_scram(client: KafkaClient, name: str | None, args: argparse.Namespace) -> None:
    """SCRAM credentials of one user (ConfigCommand refuses mixing them with quota configs)."""
    added = scram.parse_add_config(args.add_config)
    deleted = [k.strip() for entry in args.delete_config for k in entry.split(",") if k.strip()]
    if not all(scram.is_scram(k) for k in [*added, *deleted]):
        raise CliError(
            "Cannot alter both quota and SCRAM credential configs simultaneously for 'users' using "
            "--bootstrap-server."
        )
    if name is None:
        raise CliError("An entity name must be specified with --alter of users")
    scram.alter(client, name, added, deleted)


def _broker_id(name: str) -> int:
    try:
        return int(name)
    except ValueError:
        raise CliError(
            f"The entity name for brokers must be a valid integer broker id, found: {name}"
        ) from None


def _entities(client: KafkaClient, entity_type: str, name: str | None) -> list[str]:
    if name is not None:
        return [name]
    if entity_type == "topics":
        return sorted(t.name for t in client.metadata(None).topics)
    return [*(str(b) for b in sorted(client.brokers())), ""]


def _resource(entity_type: str, name: str) -> tuple[int, int | None]:
    """(resource type, the dynamic config source that --describe shows without --all)."""
    if entity_type == "topics":
        return TOPIC_RESOURCE, 1
    return BROKER_RESOURCE, 3 if name == "" else 2


def _connection_for(client: KafkaClient, entity_type: str, name: str) -> NodeConnection:
    """A broker's configs are asked of that broker, as Kafka's admin does; the rest of any broker."""
    if entity_type == "brokers" and name:
        return client.node(_broker_id(name))
    return client.any


def resource_configs(client: KafkaClient, entity_type: str, name: str, *, synonyms: bool) -> list[Any]:
    resource_type, _ = _resource(entity_type, name)
    request = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(resource_type, name, None)], include_synonyms=synonyms
    )
    result = _connection_for(client, entity_type, name).call(request).results[0]
    check_error(result.error_code, result.error_message)
    return list(result.configs)


def describe_resource(client: KafkaClient, entity_type: str, name: str, describe_all: bool) -> None:
    _, dynamic_source = _resource(entity_type, name)
    configs = resource_configs(client, entity_type, name, synonyms=True)
    if name == "":
        print(f"Default configs for {entity_type} in the cluster are:")
    else:
        print(f"{'All' if describe_all else 'Dynamic'} configs for {entity_type[:-1]} {name} are:")
    for entry in configs:
        if not describe_all and entry.config_source != dynamic_source:
            continue
        print("  " + config_line(entry))


def config_line(entry: Any) -> str:
    """ConfigCommand's ``name=value sensitive=false synonyms={SOURCE:name=value, ...}``."""
    synonyms = ", ".join(
        f"{SOURCES.get(s.source, 'UNKNOWN')}:{s.name}={_java(s.value)}" for s in entry.synonyms
    )
    value = None if entry.is_sensitive else entry.value
    return f"{entry.name}={_java(value)} sensitive={str(entry.is_sensitive).lower()} synonyms={{{synonyms}}}"


def _java(value: str | None) -> str:
    return "null" if value is None else value


def incremental_alter(
    client: KafkaClient, entity_type: str, name: str, ops: list[AlterableConfig], subject: str = ""
) -> None:
    """IncrementalAlterConfigs of one topic or broker (``name`` "" its defaults), sent where
    Kafka's admin sends it; a refusal raises with ``subject`` before its message."""
    resource_type, _ = _resource(entity_type, name)
    request = IncrementalAlterConfigsRequest(resources=[AlterConfigsResource(resource_type, name, ops)])
    result = _connection_for(client, entity_type, name).call(request).responses[0]
    check_error(result.error_code, result.error_message, subject)


def alter_resource(client: KafkaClient, entity_type: str, name: str, args: argparse.Namespace) -> None:
    to_add = parse_key_values(args.add_config)
    to_delete = [k.strip() for entry in args.delete_config for k in entry.split(",") if k.strip()]
    if not to_add and not to_delete:
        raise CliError("At least one of --add-config or --delete-config must be specified with --alter")
    _, dynamic_source = _resource(entity_type, name)
    current = {
        c.name
        for c in resource_configs(client, entity_type, name, synonyms=False)
        if c.config_source == dynamic_source
    }
    invalid = [k for k in to_delete if k not in current]
    if invalid:
        raise CliError(f"Invalid config(s): {','.join(invalid)}")
    ops = [AlterableConfig(k, SET, v) for k, v in to_add.items()] + [
        AlterableConfig(k, DELETE, None) for k in to_delete
    ]
    incremental_alter(client, entity_type, name, ops)
    if name:
        print(f"Completed updating config for {entity_type[:-1]} {name}.")
    else:
        print(f"Completed updating default config for {entity_type} in the cluster.")


_WHO = {"user": "user-principal", "client-id": "client-id"}


def describe_quotas(client: KafkaClient, entity: list[tuple[str, str | None]]) -> None:
    """ConfigCommand.describeClientQuotaAndUserScramCredentialConfigs: one line per entity."""
    components = []
    for entity_type, name in entity:
        if name is None:
            components.append(ComponentData(entity_type=entity_type, match_type=MATCH_SPECIFIED, match=None))
        elif name == "":
            components.append(ComponentData(entity_type=entity_type, match_type=MATCH_DEFAULT, match=None))
        else:
            components.append(ComponentData(entity_type=entity_type, match_type=MATCH_EXACT, match=name))
    # ClientQuotaFilter.containsOnly: entities of exactly the named kinds.
    response = client.any.call(DescribeClientQuotasRequest(components=components, strict=True))
    check_error(response.error_code, response.error_message)
    for entry in response.entries or []:
        who = ", ".join(
            f"{_WHO.get(e.entity_type, e.entity_type)} '{e.entity_name}'"
            if e.entity_name is not None
            else f"the default {_WHO.get(e.entity_type, e.entity_type)}"
            for e in entry.entity
        )
        values = ", ".join(f"{v.key}={v.value}" for v in entry.values)
        print(f"Quota configs for {who} are {values}")


def alter_quotas(client: KafkaClient, entity: list[tuple[str, str | None]], args: argparse.Namespace) -> None:
    for entity_type, name in entity:
        if name is None:
            plural = "users" if entity_type == "user" else "clients"
            raise CliError(f"An entity name must be specified with --alter of {plural}")
    to_add = parse_key_values(args.add_config)
    to_delete = [k.strip() for entry in args.delete_config for k in entry.split(",") if k.strip()]
    try:
        ops = [OpData(k, float(v), False) for k, v in to_add.items()] + [
            OpData(k, 0.0, True) for k in to_delete
        ]
    except ValueError as exc:
        raise CliError(f"Quota values must be numbers: {exc}") from None
    request_entity = [AlterEntity(entity_type, name or None) for entity_type, name in entity]
    response = client.any.call(AlterClientQuotasRequest(entries=[AlterEntry(request_entity, ops)]))
    for entry in response.entries:
        if entry.error_code:
            raise KafkaError(entry.error_code, entry.error_message)
    # ConfigCommand names the first entity type only.
    entity_type, name = entity[0]
    plural = "users" if entity_type == "user" else "clients"
    if name:
        print(f"Completed updating config for {plural[:-1]} {name}.")
    else:
        print(f"Completed updating default config for {plural} in the cluster.")
