"""ACLs as Kafka 3.9 models them: resource patterns, access control entries, bindings and the
filters of DescribeAcls / DeleteAcls, with their wire codes and the names Kafka writes in
ZooKeeper (``SecurityUtils``' PascalCase) and prints (kafka-acls.sh).

Pure values and matching; the authorizer (:mod:`broker.security.authorizer`) indexes them."""

from __future__ import annotations

from enum import IntEnum

from storage.fast_dataclass import dataclass

WILDCARD_RESOURCE = "*"
WILDCARD_HOST = "*"
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


Op = AclOperation

#: AclEntry.supportedOperations: what authorized-operations bit fields are computed over.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (
        Op.READ,
        Op.WRITE,
        Op.CREATE,
        Op.DESCRIBE,
        Op.DELETE,
        Op.ALTER,
        Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (Op.READ, Op.DESCRIBE, Op.DELETE),
    ResourceType.CLUSTER: (
        Op.CREATE,
        Op.CLUSTER_ACTION,
        Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS,
        Op.IDEMPOTENT_WRITE,
        Op.ALTER,
        Op.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (Op.DESCRIBE, Op.WRITE),
    ResourceType.DELEGATION_TOKEN: (Op.DESCRIBE,),
    ResourceType.USER: (Op.CREATE_TOKENS, Op.DESCRIBE_TOKENS),
}

#: Operations whose ALLOW also allows another (AclOperation's documented inheritance).
_IMPLYING: dict[AclOperation, frozenset[AclOperation]] = {
    Op.DESCRIBE: frozenset({Op.DESCRIBE, Op.READ, Op.WRITE, Op.DELETE, Op.ALTER}),
    Op.DESCRIBE_CONFIGS: frozenset({Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}),
}


def allowing_operations(operation: AclOperation) -> frozenset[AclOperation]:
    """The operations an ALLOW entry may name to allow ``operation`` (ALL always does)."""
    return _IMPLYING.get(operation, frozenset({operation})) | {Op.ALL}


def pascal(name: str) -> str:
    """SecurityUtils.toPascalCase: TRANSACTIONAL_ID -> TransactionalId."""
    return "".join(part.capitalize() for part in name.split("_"))


def _named(enum: type[IntEnum], text: str) -> int:
    """SecurityUtils' lookups: the PascalCase name (ZooKeeper) or the upper-case one (kafka-acls.sh)."""
    wanted = text.replace("_", "").replace("-", "").upper()
    for member in enum:
        if member.name.replace("_", "") == wanted:
            return member.value
    raise ValueError(f"unknown {enum.__name__}: {text!r}")


def resource_type_named(text: str) -> ResourceType:
    return ResourceType(_named(ResourceType, text))


def operation_named(text: str) -> AclOperation:
    return AclOperation(_named(AclOperation, text))


def permission_named(text: str) -> AclPermissionType:
    return AclPermissionType(_named(AclPermissionType, text))


def pattern_type_named(text: str) -> PatternType:
    return PatternType(_named(PatternType, text))


@dataclass(frozen=True, slots=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType

    def __str__(self) -> str:
        return (
            f"ResourcePattern(resourceType={self.resource_type.name}, name={self.name}, "
            f"patternType={self.pattern_type.name})"
        )


@dataclass(frozen=True, slots=True)
class AccessControlEntry:
    principal: str  # "User:alice"
    host: str
    operation: AclOperation
    permission_type: AclPermissionType

    def __str__(self) -> str:
        return (
            f"(principal={self.principal}, host={self.host}, operation={self.operation.name}, "
            f"permissionType={self.permission_type.name})"
        )


@dataclass(frozen=True, slots=True)
class AclBinding:
    pattern: ResourcePattern
    entry: AccessControlEntry

    def unknown_element(self) -> str | None:
        """The first field that is not concrete (UNKNOWN or ANY), as Kafka's isUnknown/findIndefinite."""
        if self.pattern.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
            return "resource type"
        if self.pattern.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            return "pattern type"
        if self.entry.operation in (Op.UNKNOWN, Op.ANY):
            return "operation"
        if self.entry.permission_type not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
            return "permission type"
        return None


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """A DescribeAcls / DeleteAcls filter: None name, principal or host match any."""

    resource_type: ResourceType
    name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: AclOperation
    permission_type: AclPermissionType

    def unknown_element(self) -> str | None:
        if self.resource_type is ResourceType.UNKNOWN:
            return "resource type"
        if self.pattern_type is PatternType.UNKNOWN:
            return "pattern type"
        if self.operation is Op.UNKNOWN:
            return "operation"
        if self.permission_type is AclPermissionType.UNKNOWN:
            return "permission type"
        return None

    def matches_pattern(self, pattern: ResourcePattern) -> bool:
        """ResourcePatternFilter.matches: MATCH finds the literal, wildcard and prefixed patterns
        that would apply to the name; ANY and a concrete type compare names exactly."""
        if self.resource_type is not ResourceType.ANY and self.resource_type != pattern.resource_type:
            return False
        if (
            self.pattern_type not in (PatternType.ANY, PatternType.MATCH)
            and self.pattern_type != pattern.pattern_type
        ):
            return False
        if self.name is None:
            return True
        if self.pattern_type is PatternType.ANY or self.pattern_type == pattern.pattern_type:
            return self.name == pattern.name
        if pattern.pattern_type is PatternType.LITERAL:
            return self.name == pattern.name or pattern.name == WILDCARD_RESOURCE
        if pattern.pattern_type is PatternType.PREFIXED:
            return self.name.startswith(pattern.name)
        return False

    def matches_entry(self, entry: AccessControlEntry) -> bool:
        return (
            (self.principal is None or self.principal == entry.principal)
            and (self.host is None or self.host == entry.host)
            and (self.operation is Op.ANY or self.operation == entry.operation)
            and (
                self.permission_type is AclPermissionType.ANY or self.permission_type == entry.permission_type
            )
        )

    def matches(self, binding: AclBinding) -> bool:
        return self.matches_pattern(binding.pattern) and self.matches_entry(binding.entry)


def entry_applies(
    entry: AccessControlEntry, principal: str, host: str, operations: frozenset[AclOperation]
) -> bool:
    """The entry names this principal (or User:*), host (or *) and one of ``operations``."""
    return (
        entry.operation in operations
        and (entry.principal == principal or entry.principal == WILDCARD_PRINCIPAL)
        and (entry.host == host or entry.host == WILDCARD_HOST)
    )
