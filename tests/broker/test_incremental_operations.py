"""IncrementalAlterConfigs' operations on a topic's overrides (shared by the embedded and the
ZooKeeper paths), against a model: SET and DELETE replace, APPEND and SUBTRACT treat the list as a
set in order, starting from the default when there is no override."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.handlers.configs_common import OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT
from broker.handlers.incremental_alter_configs import _apply_operations
from protocol.messages.incremental_alter_configs_request import AlterableConfig, AlterConfigsResource

POLICY = "cleanup.policy"  # a LIST config, default "delete"
VALUES = st.sampled_from(["delete", "compact"])


def model(current: dict[str, str], op: int, value: str) -> dict[str, str]:
    out = dict(current)
    if op == OP_SET:
        out[POLICY] = value
    elif op == OP_DELETE:
        out.pop(POLICY, None)
    else:
        listed = [v for v in out.get(POLICY, "delete").split(",") if v]
        if op == OP_APPEND:
            listed += [] if value in listed else [value]
        else:
            listed = [v for v in listed if v != value]
        out[POLICY] = ",".join(listed)
    return out


@given(
    start=st.dictionaries(st.just(POLICY), VALUES, max_size=1),
    op=st.sampled_from([OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT]),
    value=VALUES,
    other=st.dictionaries(st.sampled_from(["retention.ms", "segment.ms"]), st.integers(1, 10**9).map(str)),
)
def test_one_operation_matches_the_model(
    start: dict[str, str], op: int, value: str, other: dict[str, str]
) -> None:
    current = {**other, **start}
    resource = AlterConfigsResource(2, "t", [AlterableConfig(POLICY, op, value)])
    assert _apply_operations(current, resource) == model(current, op, value)
    assert current == {**other, **start}  # the input is left alone
