"""How the TLS path gathers a connection's queued response pieces (bytes and file regions) into
plaintext chunks: every byte once, in order, the pending-bytes count down to zero, file
descriptors released, no empty chunk (an empty TLS write would spin)."""

from __future__ import annotations

import os
import tempfile
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.network.connection import TLS_CHUNK, Connection, _RecordDataShrank
from storage import FileSlice

FILE_SIZE = 3 * TLS_CHUNK
CONTENT = bytes(range(256)) * (FILE_SIZE // 256)

_piece = st.one_of(
    st.tuples(st.just("bytes"), st.integers(1, TLS_CHUNK + 5000)),
    st.tuples(st.just("file"), st.integers(0, FILE_SIZE - 1), st.integers(1, 2 * TLS_CHUNK)),
)


def _drain(state: Any) -> list[bytes]:
    chunks = []
    while (chunk := Connection._next_tls_chunk(state)) is not None:
        chunks.append(bytes(chunk))
    return chunks


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(_piece, min_size=1, max_size=12), understated=st.integers(0, 100))
def test_chunks_carry_every_byte_in_order(pieces: list[tuple[Any, ...]], understated: int) -> None:
    with tempfile.TemporaryFile() as f:
        f.write(CONTENT)
        f.flush()
        out: deque[Any] = deque()
        expected = bytearray()
        slices = []
        for n, piece in enumerate(pieces):
            if piece[0] == "bytes":
                data = bytes([n % 256]) * piece[1]
                out.append(data if n % 2 else bytearray(data))
                expected += data
            else:
                position, length = piece[1], min(piece[2], FILE_SIZE - piece[1])
                region = FileSlice(os.dup(f.fileno()), position, length)
                slices.append(region)
                out.append(region)
                expected += CONTENT[position : position + length]
        # The pending count may be off (it is only a sizing hint): chunks must stay right.
        state = SimpleNamespace(
            out=out, out_offset=0, pending_bytes=max(len(expected) - understated, 0), _tls_buffer=None
        )
        chunks = _drain(state)
        assert b"".join(chunks) == expected
        assert all(chunks)
        assert max(len(c) for c in chunks) <= max([TLS_CHUNK, *(p[1] for p in pieces if p[0] == "bytes")])
        assert state.pending_bytes == max(len(expected) - understated, 0) - len(expected)
        assert not state.out and state.out_offset == 0
        assert all(region.closed for region in slices)


def test_a_region_past_the_end_of_its_file_is_reported() -> None:
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 100)
        f.flush()
        region = FileSlice(os.dup(f.fileno()), 50, 100)  # the segment was truncated to 100 bytes
        state = SimpleNamespace(
            out=deque([b"head", region]), out_offset=0, pending_bytes=104, _tls_buffer=None
        )
        with pytest.raises(_RecordDataShrank):
            _drain(state)
        region.close()
