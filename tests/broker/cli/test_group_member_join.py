"""``brook console-consumer --group`` joining a group whose coordinator is not ready yet (a new
``__consumer_offsets`` partition loading): it backs off and asks again, as Kafka's consumer does,
until its deadline, and then reports the coordinator's own error."""

from __future__ import annotations

from typing import Any

import pytest

from broker.cli import group_member
from broker.cli.client import KafkaError
from broker.cli.group_member import GroupMember, encode_assignment
from protocol.error_codes import ErrorCode
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.join_group_response import JoinGroupResponse
from protocol.messages.sync_group_response import SyncGroupResponse


class LoadingCoordinator:
    """Answers JoinGroup with COORDINATOR_LOAD_IN_PROGRESS ``loading`` times, then lets the
    member join as a follower and hands it partition 0 of topic ``t``."""

    def __init__(self, loading: int) -> None:
        self.loading = loading
        self.joins = 0

    def call(self, request: Any, timeout: float | None = None) -> Any:
        if isinstance(request, JoinGroupRequest):
            self.joins += 1
            if self.joins <= self.loading:
                return JoinGroupResponse(error_code=ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
            return JoinGroupResponse(error_code=0, generation_id=1, leader="other", member_id="me")
        return SyncGroupResponse(error_code=0, assignment=encode_assignment([("t", 0)]))


class Client:
    def __init__(self, coordinator: LoadingCoordinator) -> None:
        self.conn = coordinator

    def coordinator(self, group: str) -> tuple[int, LoadingCoordinator]:
        return 1, self.conn


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_member, "RETRY_BACKOFF_S", 0.001)
    monkeypatch.setattr(group_member, "RETRY_BACKOFF_MAX_S", 0.002)


def test_a_loading_coordinator_is_asked_again_until_the_group_is_joined() -> None:
    coordinator = LoadingCoordinator(loading=30)  # more than any fixed number of quick attempts
    member = GroupMember(Client(coordinator), "g", ["t"])  # type: ignore[arg-type]
    assert member.join() == [("t", 0)]
    assert coordinator.joins == 31 and member.member_id == "me"


def test_the_coordinators_error_is_reported_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_member, "JOIN_TIMEOUT_S", 0.05)
    member = GroupMember(Client(LoadingCoordinator(loading=10**9)), "g", ["t"])  # type: ignore[arg-type]
    with pytest.raises(KafkaError) as raised:
        member.join()
    assert raised.value.code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
