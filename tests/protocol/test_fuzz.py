"""Hostile bytes: truncations, bit flips, random bytes and lying lengths fed to the frame decoder
and to every decoder raise only typed :class:`DecodeError` subclasses, and allocate in proportion
to the bytes actually present, never to what a length prefix claims.

"Proportion" is a real bound, not a literal "no more than the frame": a decoded Python object
costs 50-100 bytes, so a frame of minimal elements (1-3 bytes each) legitimately decodes into some
tens of times its size. What must never happen is an allocation driven by a claimed length (a
2 GiB string, a billion-element array) or a multiplication of elements that take no bytes.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import struct
import traceback
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from protocol.api import decode_request, decode_response, encode_request, encode_response
from protocol.codegen.emit import _Ctx, emit_module, min_size, module_name
from protocol.codegen.model import MessageDef, StructDef, load_message
from protocol.exceptions import DecodeError, EncodeError
from protocol.framing import FrameDecoder, frame
from protocol.message import Message
from tests.protocol.schema_strategies import message_class, message_strategy, messages

REQUESTS = [m for m in messages() if m.kind == "request"]
OTHERS = [m for m in messages() if m.kind != "request"]

#: Allocation bound for decoding ``n`` bytes: AMPLIFICATION * n + SLACK (see module docstring).
AMPLIFICATION = 128
SLACK = 64 * 1024


def mutations(data: bytes, rng: random.Random) -> Iterator[bytes]:
    """Every truncation, single and multiple bit flips, overwritten and inserted random runs."""
    for cut in range(len(data)):
        yield data[:cut]
    if not data:
        return
    for _ in range(24):
        flipped = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            i = rng.randrange(len(flipped))
            flipped[i] ^= 1 << rng.randrange(8)
        yield bytes(flipped)
    for _ in range(8):
        i = rng.randrange(len(data))
        junk = rng.randbytes(rng.randrange(1, 9))
        yield data[:i] + junk + data[i + len(junk) :]
        yield data[:i] + junk + data[i:]
    yield data + rng.randbytes(rng.randrange(1, 16))


def only_decode_errors(decode: Callable[[bytes], Any], data: bytes, what: str) -> None:
    try:
        decode(data)
    except DecodeError:
        pass
    except Exception as exc:  # anything else is the bug this test looks for
        raise AssertionError(
            f"{what}: {type(exc).__name__} escaped on input {data.hex()}\n{traceback.format_exc()}"
        ) from exc


def check_request(message: MessageDef, version: int, value: Message, rng: random.Random) -> list[bytes]:
    cls = message_class(message)
    body = value.encode(version)
    request = encode_request(value, version, 7, "fuzz")[4:]
    header = request[: len(request) - len(body)]
    what = f"{message.name} v{version}"
    assert decode_request(request).body == value, what  # the unmutated frame round-trips
    for candidate in mutations(request, rng):
        only_decode_errors(decode_request, candidate, what + " (decode_request)")
    for candidate in mutations(body, rng):
        only_decode_errors(lambda b: cls.decode(b, version), candidate, what)
    for _ in range(6):  # a valid header, then random bytes as the body
        only_decode_errors(decode_request, header + rng.randbytes(rng.randrange(64)), what + " random body")
    return [request, header + rng.randbytes(rng.randrange(32))]


@pytest.mark.parametrize("message", REQUESTS, ids=[m.name for m in REQUESTS])
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
@given(data=st.data())
def test_hostile_requests_raise_only_decode_errors(message: MessageDef, data: Any) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    frames: list[bytes] = []
    for version in message.valid:
        value = data.draw(message_strategy(message, version), label=f"v{version}")
        frames += check_request(message, version, value, rng)
    # the same through the frame decoder, in random chunks, with random junk between frames
    junk = [rng.randbytes(rng.randrange(6)) if rng.random() < 0.3 else b"" for _ in frames]
    stream = b"".join(frame(f) + j for f, j in zip(frames, junk, strict=True))
    decoder = FrameDecoder(max_frame_size=64 * 1024, receive_buffer=rng.choice((16, 256, 4096)))
    pos = 0
    try:
        while pos < len(stream):
            n = rng.randrange(1, 300)
            for got in decoder.feed(stream[pos : pos + n]):
                only_decode_errors(decode_request, bytes(got), f"{message.name} via FrameDecoder")
            pos += n
    except DecodeError:
        pass  # junk made a size prefix the decoder refused; the connection would close here


@pytest.mark.parametrize("message", OTHERS, ids=[m.name for m in OTHERS])
@settings(max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
@given(data=st.data())
def test_hostile_responses_and_data_raise_only_decode_errors(message: MessageDef, data: Any) -> None:
    """Responses (clients and followers decode them), headers and internal records alike."""
    cls = message_class(message)
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    for version in message.valid:
        value = data.draw(message_strategy(message, version), label=f"v{version}")
        encoded = value.encode(version)
        assert len(encoded) >= min_size(_ctx(message), _top(message), version)
        assert cls.decode(encoded, version) == value
        for candidate in mutations(encoded, rng):
            only_decode_errors(lambda b, v=version: cls.decode(b, v), candidate, f"{message.name} v{version}")
        if message.kind == "response" and message.api_key is not None:
            whole = encode_response(message.api_key, version, 3, value)[4:]
            for cut in range(0, len(whole), 3):
                only_decode_errors(
                    lambda b, v=version: decode_response(b, message.api_key, v), whole[:cut], message.name
                )


# ---------------------------------------------------------------------------------------------
# allocation


def _top(message: MessageDef) -> StructDef:
    return StructDef(message.name, message.valid, message.fields)


def _ctx(message: MessageDef) -> _Ctx:
    return _Ctx(message, message.structs())


def populated(message: MessageDef, version: int, count: int) -> Message:
    """The message with ``count`` default elements in each of its arrays, two levels deep, so
    that every kind of length prefix occurs in the encoding."""
    module = importlib.import_module(f"protocol.messages.{module_name(message)}")
    structs = message.structs()

    def fill(name: str, depth: int) -> Any:
        fields = structs[name].fields if name in structs else message.fields
        obj = getattr(module, name)()
        for f in fields:
            if not f.present_in(version) or not f.is_array:
                continue
            el = f.element
            items: list[Any]
            if f.is_struct_like:
                items = [fill(el, depth + 1) for _ in range(count)] if depth < 2 else []
            elif el == "string":
                items = ["ab"] * count
            elif el == "bytes":
                items = [b"xy"] * count
            elif el == "uuid":
                items = [uuid.UUID(int=1)] * count
            elif el == "bool":
                items = [True] * count
            else:
                items = [1] * count
            setattr(obj, f.py_name, items)
        return obj

    value: Message = fill(message.name, 0)
    return value


def request_cases(count: int) -> list[tuple[MessageDef, int, bytes]]:
    cases = []
    for message in REQUESTS:
        for version in message.valid:
            try:
                body = populated(message, version, count).encode(version)
            except EncodeError:
                continue
            cases.append((message, version, body))
    return cases


def hostile_variants(body: bytes) -> Iterator[bytes]:
    """At every position, a length that claims far more than the frame holds, or exactly the
    bytes left (which passes the "length <= bytes left" check), as an int16, int32 and
    unsigned varint: the three ways Kafka writes lengths."""
    for i in range(len(body)):
        left = len(body) - i
        for claim in (
            struct.pack(">h", 0x7FFF),
            struct.pack(">i", 0x7FFFFFFF),
            struct.pack(">i", left - 4),
            b"\xff\xff\xff\xff\x0f",  # uvarint 2**32 - 1
            bytes([0x80 | (left & 0x7F), left >> 7]) if left < 1 << 14 else b"\x00",  # uvarint left
        ):
            yield body[:i] + claim + body[i + len(claim) :]


def test_lying_lengths_allocate_in_proportion_to_the_frame() -> None:
    worst = (0.0, "")
    cases = request_cases(count=2)
    assert len(cases) > 300  # every request api and version
    tracemalloc.start()
    try:
        for message, version, body in cases:
            cls = message_class(message)
            for candidate in hostile_variants(body):
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                with contextlib.suppress(DecodeError):
                    cls.decode(candidate, version)
                peak = tracemalloc.get_traced_memory()[1] - base
                limit = AMPLIFICATION * len(candidate) + SLACK
                assert peak <= limit, (
                    f"{message.name} v{version}: {peak} bytes allocated decoding {len(candidate)} "
                    f"hostile bytes: {candidate.hex()}"
                )
                if len(candidate) >= 256:
                    worst = max(worst, (peak / len(candidate), f"{message.name} v{version}"))
    finally:
        tracemalloc.stop()
    print(f"worst allocation for lying lengths in frames of 256+ bytes: {worst[0]:.1f}x ({worst[1]})")


def test_dense_frames_allocate_in_proportion_to_the_frame() -> None:
    """Frames packed with as many minimal elements as the schema allows: the densest a client
    can make. The ratio measured here is what AMPLIFICATION must cover."""
    cases = request_cases(count=30)
    tracemalloc.start()
    ratios = []
    try:
        for message, version, body in cases:
            if len(body) < 4096:
                continue
            cls = message_class(message)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            decoded = cls.decode(body, version)
            peak = tracemalloc.get_traced_memory()[1] - base
            del decoded
            ratios.append((peak / len(body), f"{message.name} v{version}"))
            assert peak <= AMPLIFICATION * len(body) + SLACK, (message.name, version, len(body), peak)
    finally:
        tracemalloc.stop()
    assert len(ratios) > 100  # the test did look at big frames
    ratio, name = max(ratios)
    print(f"worst allocation for dense frames: {ratio:.1f}x the frame ({name})")


def test_huge_claims_fail_before_allocating() -> None:
    """A few bytes claiming gigabytes: nothing of the claimed size is ever allocated."""
    from protocol.messages.metadata_request import MetadataRequest
    from protocol.messages.produce_request import ProduceRequest

    hostile = [
        (MetadataRequest, 1, struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 16),  # topics array
        (MetadataRequest, 9, b"\xff\xff\xff\xff\x0f" + b"\x00" * 16),  # compact topics array
        (ProduceRequest, 3, struct.pack(">h", -1) + struct.pack(">hi", 1, 1) + struct.pack(">i", 1)
         + struct.pack(">h", 1) + b"t" + struct.pack(">i", 1) + struct.pack(">ii", 0, 0x7FFFFFF0)),  # records
        (ProduceRequest, 9, b"\x00" + struct.pack(">hi", 1, 1) + b"\x02\x02t\x02" + struct.pack(">i", 0)
         + b"\xff\xff\xff\xff\x0f"),  # compact records
    ]
    tracemalloc.start()
    try:
        for cls, version, data in hostile:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            with pytest.raises(DecodeError):
                cls.decode(data, version)
            assert tracemalloc.get_traced_memory()[1] - base < 16 * 1024, (cls.NAME, version)
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------
# elements that take no bytes (the generator refuses them)


def test_no_schema_has_an_array_of_elements_that_take_no_bytes() -> None:
    """Walk every array of structs reachable in every version: its elements take at least one
    byte, so ``n`` elements need ``n`` bytes and the "n <= bytes left" check bounds them."""
    checked = 0
    for message in messages():
        ctx = _ctx(message)
        for version in message.valid:
            stack = [_top(message)]
            while stack:
                struct_def = stack.pop()
                for f in struct_def.fields:
                    if not f.present_in(version) or not f.is_struct_like:
                        continue
                    element = ctx.structs[f.element]
                    if f.is_array:
                        assert min_size(ctx, element, version) >= 1, (message.name, version, f.name)
                        checked += 1
                    stack.append(element)
    assert checked > 900


ZERO_SIZE_SCHEMA = """
{
  "apiKey": 9999, "type": "request", "name": "ZeroRequest",
  "validVersions": "0-1", "flexibleVersions": "none",
  "fields": [
    { "name": "Items", "type": "[]Item", "versions": "0+", "fields": [
      { "name": "Value", "type": "int32", "versions": "1+" }
    ]}
  ]
}
"""


def test_generator_refuses_elements_that_take_no_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ZeroRequest.json"
    path.write_text(ZERO_SIZE_SCHEMA, encoding="utf-8")
    with pytest.raises(ValueError, match="zero bytes in version 0"):
        emit_module(load_message(path))
    # the same element with its field in every version generates fine
    path.write_text(ZERO_SIZE_SCHEMA.replace('"versions": "1+"', '"versions": "0+"'), encoding="utf-8")
    assert "def _dec_ZeroRequest_0" in emit_module(load_message(path))
