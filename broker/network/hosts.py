"""Host names handed to ``getaddrinfo`` without Python's idna codec."""

from __future__ import annotations


def resolvable(host: str) -> str | bytes:
    """``host`` as ``socket.getaddrinfo`` / ``socket.create_connection`` take it.

    A ``str`` host always goes through the ``idna`` codec, which returns an ASCII name unchanged
    (it only checks label lengths) and whose first use imports ``encodings.idna``, ``stringprep``
    and ``unicodedata``: ~2 ms of an embedded broker's first start. An ASCII name goes as bytes
    (an empty or over-long label then fails in the resolver instead); any other name as it is."""
    return host.encode("ascii") if host.isascii() else host
