"""The length-prefixed frame decoder: any chunking, large frames, hostile size prefixes."""

from __future__ import annotations

import itertools
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.exceptions import DecodeError, FrameTooLargeError
from protocol.framing import DEFAULT_MAX_FRAME, FrameDecoder, frame

SIZE = struct.Struct(">i")


def transport(decoder: FrameDecoder, stream: bytes, chunks: list[int]) -> list[bytearray]:
    """Deliver ``stream`` as a transport would: ask for a buffer, write at most the chunk size
    into it (never more than the room offered), report the count."""
    frames: list[bytearray] = []
    pos = 0
    sizes = iter(chunks)
    while pos < len(stream):
        room = decoder.get_buffer(-1)
        assert len(room) > 0, "get_buffer offered no room"
        n = min(len(room), len(stream) - pos, max(1, next(sizes, len(stream))))
        room[:n] = stream[pos : pos + n]
        pos += n
        frames.extend(decoder.buffer_updated(n))
    return frames


payloads = st.lists(
    st.one_of(st.binary(max_size=40), st.binary(min_size=60, max_size=400)),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=payloads,
    chunks=st.lists(st.integers(1, 200), max_size=60),
    receive_buffer=st.sampled_from([16, 64, 128, 64 * 1024]),
)
def test_any_chunking_yields_the_same_frames(
    payloads: list[bytes], chunks: list[int], receive_buffer: int
) -> None:
    stream = b"".join(frame(p) for p in payloads)
    decoder = FrameDecoder(max_frame_size=1000, receive_buffer=receive_buffer)
    got = transport(decoder, stream, chunks)
    assert [bytes(f) for f in got] == payloads
    assert all(type(f) is bytearray for f in got)
    assert decoder.buffered == 0


@settings(max_examples=100, deadline=None)
@given(payloads=payloads, cuts=st.lists(st.integers(0, 5000), max_size=20))
def test_feed_with_any_cut_points(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder(max_frame_size=1000, receive_buffer=32)
    got: list[bytearray] = []
    for a, b in itertools.pairwise(points):
        got.extend(decoder.feed(stream[a:b]))
    assert [bytes(f) for f in got] == payloads


def test_partial_frame_is_held_back_and_counted() -> None:
    decoder = FrameDecoder(receive_buffer=1024)
    data = frame(b"hello world")
    assert decoder.feed(data[:7]) == []
    assert decoder.buffered == 7
    assert decoder.feed(data[7:] + data[:2]) == [bytearray(b"hello world")]
    assert decoder.buffered == 2


def test_zero_length_frames() -> None:
    decoder = FrameDecoder(receive_buffer=16)
    got = decoder.feed(frame(b"") * 3 + frame(b"x") + frame(b""))
    assert got == [bytearray(), bytearray(), bytearray(), bytearray(b"x"), bytearray()]
    # one byte at a time, too
    got = []
    for i, byte in enumerate(frame(b"") * 5):
        got.extend(decoder.feed(bytes([byte])))
        assert len(got) == (i + 1) // 4
    assert got == [bytearray()] * 5


def test_frames_are_mutable_and_independent() -> None:
    decoder = FrameDecoder(receive_buffer=64)
    a, b = decoder.feed(frame(b"aaaa") + frame(b"bbbb"))
    a[0] = ord("z")
    assert bytes(b) == b"bbbb"
    (c,) = decoder.feed(frame(b"cccc"))
    assert bytes(a) == b"zaaa" and bytes(c) == b"cccc"


def test_large_frame_is_filled_in_place() -> None:
    """A frame larger than the receive buffer gets its own bytearray; get_buffer hands out that
    very bytearray, so the transport writes the payload once, straight into the returned frame."""
    decoder = FrameDecoder(max_frame_size=10_000, receive_buffer=64)
    payload = bytes(range(256)) * 20  # 5120 bytes
    stream = frame(payload) + frame(b"after")
    room = decoder.get_buffer()
    room[:64] = stream[:64]
    assert decoder.buffer_updated(64) == []
    filled = 60
    targets = set()
    while filled < len(payload):
        room = decoder.get_buffer()
        assert len(room) == len(payload) - filled  # exactly the rest of the frame, no more
        targets.add(id(room.obj))
        n = min(1000, len(room))
        room[:n] = payload[filled : filled + n]
        filled += n
        got = decoder.buffer_updated(n)
    assert len(targets) == 1
    assert [bytes(f) for f in got] == [payload]
    assert id(got[0]) in targets  # the frame is the buffer the transport wrote into
    assert decoder.feed(stream[4 + len(payload) :]) == [bytearray(b"after")]


def test_large_frame_allocates_only_itself() -> None:
    size = 8 * 1024 * 1024
    payload = bytes(size)
    stream = frame(payload)
    decoder = FrameDecoder(max_frame_size=DEFAULT_MAX_FRAME)
    view = memoryview(stream)
    tracemalloc.start()
    try:
        pos = 0
        frames: list[bytearray] = []
        while pos < len(stream):
            room = decoder.get_buffer()
            n = min(len(room), 256 * 1024, len(stream) - pos)
            room[:n] = view[pos : pos + n]
            pos += n
            frames.extend(decoder.buffer_updated(n))
            del room
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(frames) == 1 and len(frames[0]) == size
    assert peak < size + 256 * 1024, f"peak {peak} for a frame of {size}: an intermediate copy was made"


@pytest.mark.parametrize("size", [1001, 2**31 - 1, -1, -2, -(2**31)])
def test_bad_size_raises_at_the_prefix(size: int) -> None:
    decoder = FrameDecoder(max_frame_size=1000, receive_buffer=64)
    with pytest.raises(FrameTooLargeError) as info:
        decoder.feed(SIZE.pack(size))  # nothing but the prefix: raised before any body arrives
    assert info.value.size == size
    assert info.value.maximum == 1000
    assert isinstance(info.value, DecodeError)


def test_exactly_the_maximum_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_size=100, receive_buffer=16)
    assert decoder.feed(frame(b"x" * 100)) == [bytearray(b"x" * 100)]
    with pytest.raises(FrameTooLargeError):
        decoder.feed(frame(b"x" * 101))


def test_bad_size_after_good_frames_in_the_same_read() -> None:
    decoder = FrameDecoder(max_frame_size=1000)
    with pytest.raises(FrameTooLargeError):
        decoder.feed(frame(b"ok") + SIZE.pack(5000) + b"junk")


def test_two_gigabyte_prefix_allocates_nothing() -> None:
    decoder = FrameDecoder()  # default maximum, 100 MiB
    prefix = b"\x7f\xff\xff\xff"
    tracemalloc.start()
    try:
        room = decoder.get_buffer()
        room[:4] = prefix
        del room
        with pytest.raises(FrameTooLargeError):
            decoder.buffer_updated(4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_just_under_the_default_maximum_is_a_large_frame_not_an_error() -> None:
    decoder = FrameDecoder(receive_buffer=64)
    decoder.feed(SIZE.pack(DEFAULT_MAX_FRAME))
    assert len(decoder.get_buffer()) == DEFAULT_MAX_FRAME


hostile_streams = st.lists(
    st.one_of(
        st.binary(max_size=80).map(frame),  # a well-formed frame, maybe above the maximum
        st.binary(max_size=12),  # junk
        st.integers(-(2**31), 2**31 - 1).map(SIZE.pack),  # a bare size prefix
    ),
    max_size=8,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=hostile_streams, max_frame=st.integers(0, 64), receive_buffer=st.sampled_from([8, 32, 1024]))
def test_hostile_streams_only_raise_frame_errors(data: bytes, max_frame: int, receive_buffer: int) -> None:
    decoder = FrameDecoder(max_frame_size=max_frame, receive_buffer=receive_buffer)
    frames: list[bytearray] = []
    try:
        for i in range(0, len(data), 7):
            frames.extend(decoder.feed(data[i : i + 7]))
    except FrameTooLargeError as exc:
        assert exc.size < 0 or exc.size > max_frame
        return
    assert all(len(f) <= max_frame for f in frames)
    consumed = sum(4 + len(f) for f in frames)
    assert consumed + decoder.buffered == len(data)
