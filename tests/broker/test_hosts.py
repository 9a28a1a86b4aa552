"""broker.network.hosts: an ASCII host is what the idna codec would have made of it."""

from __future__ import annotations

import socket
import string

from hypothesis import given
from hypothesis import strategies as st

from broker.network.hosts import resolvable

LABEL = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=63)


@given(st.lists(LABEL, min_size=1, max_size=5))
def test_an_ascii_name_is_what_idna_makes_of_it(labels: list[str]) -> None:
    host = ".".join(labels)
    assert resolvable(host) == host.encode("idna")


def test_a_non_ascii_name_is_left_to_the_codec() -> None:
    assert resolvable("bücher.example") == "bücher.example"


def test_loopback_resolves_the_same_either_way() -> None:
    flags = {"type": socket.SOCK_STREAM, "flags": socket.AI_PASSIVE}
    as_bytes = socket.getaddrinfo(resolvable("127.0.0.1"), 0, **flags)
    assert as_bytes == socket.getaddrinfo("127.0.0.1", 0, **flags)
