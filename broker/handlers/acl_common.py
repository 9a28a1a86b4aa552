"""What CreateAcls, DescribeAcls and DeleteAcls share: wire fields to ACL values (an unknown code
reads as UNKNOWN, as Kafka's ``fromCode``)."""

from __future__ import annotations

from typing import Any

from broker.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)

SECURITY_DISABLED = 54
INVALID_REQUEST = 42
CLUSTER_AUTHORIZATION_FAILED = 31
NO_AUTHORIZER = "No Authorizer is configured."


def resource_type(code: int) -> ResourceType:
    return ResourceType(code) if 0 <= code <= 7 else ResourceType.UNKNOWN


def pattern_type(code: int) -> PatternType:
    return PatternType(code) if 0 <= code <= 4 else PatternType.UNKNOWN


def operation(code: int) -> AclOperation:
    return AclOperation(code) if 0 <= code <= 14 else AclOperation.UNKNOWN


def permission(code: int) -> AclPermissionType:
    return AclPermissionType(code) if 0 <= code <= 3 else AclPermissionType.UNKNOWN


def binding_of(creation: Any, version: int) -> AclBinding:
    """A CreateAcls creation; v0 has no pattern type: LITERAL."""
    kind = pattern_type(creation.resource_pattern_type) if version >= 1 else PatternType.LITERAL
    return AclBinding(
        ResourcePattern(resource_type(creation.resource_type), creation.resource_name, kind),
        AccessControlEntry(
            creation.principal,
            creation.host,
            operation(creation.operation),
            permission(creation.permission_type),
        ),
    )


def filter_of(request: Any, version: int) -> AclBindingFilter:
    """A DescribeAcls request or DeleteAcls filter; v0 has no pattern type: LITERAL."""
    kind = pattern_type(request.pattern_type_filter) if version >= 1 else PatternType.LITERAL
    return AclBindingFilter(
        resource_type(request.resource_type_filter),
        request.resource_name_filter,
        kind,
        request.principal_filter,
        request.host_filter,
        operation(request.operation),
        permission(request.permission_type),
    )
