"""Group administration: DescribeGroups, ListGroups and DeleteGroups (Kafka 3.9 classic)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from broker.group.coordinator import Api
from broker.group.group import ClassicGroup, GroupSummary
from broker.group.state import GroupState
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.group.coordinator import GroupCoordinator

log = logging.getLogger(__name__)

E = ErrorCode
S = GroupState

#: What DescribeGroups answers for a group this coordinator does not know.
DEAD_GROUP = GroupSummary(S.DEAD.value, "", "", [])
#: ... and for a group it cannot describe (the error tells why).
NO_GROUP = GroupSummary("", "", "", [])
CLASSIC = "classic"
_GROUP_TYPES = {"classic", "consumer", "share"}


@dataclass(frozen=True, slots=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = CLASSIC


class GroupAdmin:
    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator
        self.store = coordinator.store

    def describe(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        error = self.coordinator.validate_group_status(group_id, Api.DESCRIBE_GROUPS)
        if error is not None:
            return error, NO_GROUP
        group = self.store.get(group_id)
        if group is None:
            return E.NONE, DEAD_GROUP
        return E.NONE, group.summary()

    def list(self, states: Iterable[str], types: Iterable[str]) -> tuple[ErrorCode, list[GroupOverview]]:
        """Groups of the partitions led here; filters are case-insensitive and empty means all.
        Every group is a classic group, so a type filter without "classic" lists nothing."""
        if not self.coordinator.active:
            return E.COORDINATOR_NOT_AVAILABLE, []
        error = E.COORDINATOR_LOAD_IN_PROGRESS if self.store.any_loading else E.NONE
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() if t.lower() in _GROUP_TYPES else "unknown" for t in types}
        if wanted_types and CLASSIC not in wanted_types:
            return error, []
        groups = [
            GroupOverview(g.group_id, g.protocol_type or "", g.state.value)
            for g in self.store.groups.values()
            if not wanted_states or g.in_states(wanted_states)
        ]
        return error, groups

    async def delete(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        """Delete Empty groups with their offsets (NON_EMPTY_GROUP while members remain)."""
        coordinator = self.coordinator
        results: dict[str, ErrorCode] = {}
        eligible: list[ClassicGroup] = []
        for group_id in dict.fromkeys(group_ids):
            error = coordinator.validate_group_status(group_id, Api.DELETE_GROUPS)
            if error is not None:
                results[group_id] = error
                continue
            group = self.store.get(group_id)
            if group is None or group.state is S.DEAD:
                results[group_id] = (
                    E.GROUP_ID_NOT_FOUND if coordinator.group_not_exists(group_id) else E.NOT_COORDINATOR
                )
            elif group.state is S.EMPTY:
                group.transition_to(S.DEAD, coordinator.now())
                eligible.append(group)
            else:
                results[group_id] = E.NON_EMPTY_GROUP
        if eligible:
            removed = await coordinator.offsets.cleanup(eligible, lambda g: g.remove_all_offsets(), wait=True)
            log.info("deleted groups %s with %d offsets", ", ".join(g.group_id for g in eligible), removed)
            for group in eligible:
                results[group.group_id] = E.NONE
        return results
