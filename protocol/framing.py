"""Length-prefixed frames: a 4-byte big-endian size, then that many bytes.

:class:`FrameDecoder` is sans-I/O and mirrors ``asyncio.BufferedProtocol``: the transport asks
:meth:`get_buffer` for room, reads into it and reports the byte count to :meth:`buffer_updated`,
which returns the frames completed. Small frames are cut out of a shared receive buffer; a large
frame gets its own ``bytearray`` that the kernel then fills directly, so its payload is copied at
most once. Frames are ``bytearray`` so the broker may patch record batches in place.
"""

from __future__ import annotations

import struct

from protocol.exceptions import FrameTooLargeError

DEFAULT_MAX_FRAME = 100 * 1024 * 1024  # socket.request.max.bytes
_SIZE = struct.Struct(">i")
_RECV = 64 * 1024


class FrameDecoder:
    """Incremental decoder of size-prefixed frames with a hard size limit."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME, receive_buffer: int = _RECV) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray(receive_buffer)
        self._view = memoryview(self._buf)
        self._start = 0  # first unparsed byte in _buf
        self._end = 0  # end of valid bytes in _buf
        self._large: bytearray | None = None  # frame being filled directly
        self._large_filled = 0

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable room for the next bytes from the transport."""
        if self._large is not None:
            return memoryview(self._large)[self._large_filled :]
        if self._end == len(self._buf):
            self._compact()
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> list[bytearray]:
        """Account ``nbytes`` written into the last :meth:`get_buffer` and return whole frames."""
        if self._large is not None:
            self._large_filled += nbytes
            if self._large_filled < len(self._large):
                return []
            frame = self._large
            self._large = None
            return [frame]
        self._end += nbytes
        return self._parse()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytearray]:
        """Convenience for tests and simple callers: copy ``data`` in and return whole frames."""
        frames: list[bytearray] = []
        view = memoryview(data)
        while view:
            room = self.get_buffer()
            n = min(len(room), len(view))
            room[:n] = view[:n]
            view = view[n:]
            frames.extend(self.buffer_updated(n))
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received that belong to no complete frame yet (a size prefix included)."""
        if self._large is not None:
            return 4 + self._large_filled
        return self._end - self._start

    def _compact(self) -> None:
        pending = self._end - self._start
        if self._start:
            self._buf[:pending] = self._buf[self._start : self._end]
        self._start, self._end = 0, pending

    def _parse(self) -> list[bytearray]:
        frames: list[bytearray] = []
        buf = self._buf
        while self._end - self._start >= 4:
            (size,) = _SIZE.unpack_from(buf, self._start)
            if size < 0 or size > self.max_frame_size:
                error = FrameTooLargeError(size, self.max_frame_size)
                error.frames = frames  # complete frames before the bad prefix, still to be served
                raise error
            body = self._start + 4
            available = self._end - body
            if available >= size:
                frames.append(buf[body : body + size])
                self._start = body + size
                continue
            if size + 4 > len(buf):
                # Too big for the receive buffer: give it its own buffer and fill that directly.
                frame = bytearray(size)
                frame[:available] = buf[body : self._end]
                self._large = frame
                self._large_filled = available
                self._start = self._end = 0
            elif self._start:
                self._compact()
            break
        if self._start == self._end:
            self._start = self._end = 0
        return frames


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its size."""
    return _SIZE.pack(len(payload)) + payload
