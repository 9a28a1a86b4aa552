"""The plugin's pieces that need no broker: topic names and override parsing."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from broker.pytest_plugin import TOPIC_NAME_MAX, _topic_name

LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


@given(st.text(max_size=400))
def test_topic_names_are_legal_and_unique_for_any_test_name(base: str) -> None:
    first, second = _topic_name(base), _topic_name(base)
    for name in (first, second):
        assert LEGAL.fullmatch(name)
        assert len(name) <= TOPIC_NAME_MAX
        assert name not in (".", "..")
    assert first != second


def test_a_readable_test_name_stays_readable() -> None:
    assert _topic_name("test_orders[3-partitions]").startswith("test_orders-3-partitions-")
