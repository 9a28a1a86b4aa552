"""Run kcat (Debian's 1.7.1 on librdkafka 2.0.2) as a producer, a consumer or a query."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from compat_tests.clients.model import Rec
from compat_tests.clients.tools import require_kcat

#: Record and key separators for the producer's input (ASCII RS and US).
RS = "\\x1e"
US = "\\x1f"


class KcatError(AssertionError):
    pass


def _run(args: list[str], data: bytes | None, timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [require_kcat(), *args], input=data, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise KcatError(
            f"kcat {' '.join(args)} did not finish in {timeout} s; stderr:\n"
            f"{(exc.stderr or b'').decode(errors='replace')[-2000:]}"
        ) from None


def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes]],
    *,
    acks: str = "all",
    compression: str = "none",
    partition: int | None = None,
    headers: Sequence[tuple[str, str]] = (),
    config: Sequence[str] = (),
    timeout: float = 60.0,
) -> None:
    """Produce (key, value) pairs from stdin; a None key sends a null key. Every message gets
    ``headers`` (kcat's -H applies to all). Raises when kcat reports a failed delivery."""
    # -E: a lost connection to the only broker is not the end (kcat exits on it otherwise).
    args = ["-b", bootstrap, "-P", "-E", "-t", topic, "-K", US, "-D", RS, "-X", f"acks={acks}", "-m", "10"]
    args += ["-X", f"compression.codec={compression}"]
    if partition is not None:
        args += ["-p", str(partition)]
    for name, value in headers:
        args += ["-H", f"{name}={value}"]
    for item in config:
        args += ["-X", item]
    data = bytearray()
    for key, value in messages:
        if b"\x1e" in value or b"\x1f" in value or (key and (b"\x1e" in key or b"\x1f" in key)):
            raise ValueError("kcat messages must not contain the separators")
        if key is not None:
            data += key + b"\x1f"
        data += value + b"\x1e"
    proc = _run(args, bytes(data), timeout)
    _check(proc, args)


def produce_file(
    bootstrap: str,
    topic: str,
    path: Path,
    *,
    key: str | None = None,
    acks: str = "all",
    partition: int | None = None,
    config: Sequence[str] = (),
    timeout: float = 60.0,
) -> None:
    """Produce the whole file as one message (kcat's file argument without -l)."""
    args = ["-b", bootstrap, "-P", "-t", topic, "-X", f"acks={acks}", "-m", "10"]
    if key is not None:
        args += ["-k", key]
    if partition is not None:
        args += ["-p", str(partition)]
    for item in config:
        args += ["-X", item]
    args.append(str(path))
    _check(_run(args, None, timeout), args)


def _check(proc: subprocess.CompletedProcess[bytes], args: list[str]) -> None:
    err = proc.stderr.decode(errors="replace")
    # With -E transient errors (a lost connection) are printed and survived; what matters is
    # the exit code and whether every message was delivered.
    if proc.returncode != 0 or "Delivery failed" in err or ("ERROR" in err and "-E" not in args):
        raise KcatError(f"kcat {' '.join(args)} failed (exit {proc.returncode}):\n{err[-3000:]}")


def _record(line: bytes) -> Rec:
    doc = json.loads(line)
    raw = doc.get("headers") or []
    headers = tuple((raw[i], raw[i + 1].encode()) for i in range(0, len(raw), 2))
    key = doc.get("key")
    payload = doc.get("payload")
    return Rec(
        partition=doc["partition"],
        offset=doc["offset"],
        key=None if key is None else key.encode(),
        value=None if payload is None else payload.encode(),
        headers=headers,
        timestamp=doc.get("ts", -1),
    )


def consume_args(
    bootstrap: str, topic: str, offset: str, partition: int | None, count: int | None, config: Sequence[str]
) -> list[str]:
    args = ["-b", bootstrap, "-C", "-t", topic, "-o", offset, "-J", "-u", "-q", "-m", "10"]
    if partition is not None:
        args += ["-p", str(partition)]
    if count is not None:
        args += ["-c", str(count)]
    for item in config:
        args += ["-X", item]
    return args


def consume(
    bootstrap: str,
    topic: str,
    *,
    offset: str = "beginning",
    partition: int | None = None,
    count: int | None = None,
    config: Sequence[str] = (),
    timeout: float = 60.0,
) -> list[Rec]:
    """Consume from ``offset`` (kcat's -o syntax) until the end of the partitions (-e)."""
    args = [*consume_args(bootstrap, topic, offset, partition, count, config), "-e"]
    proc = _run(args, None, timeout)
    _check(proc, args)
    return [_record(line) for line in proc.stdout.splitlines() if line.strip()]


def query_offset(bootstrap: str, topic: str, partition: int, timestamp: int, timeout: float = 30.0) -> int:
    """kcat -Q: the offset for a timestamp (ListOffsets by time)."""
    args = ["-b", bootstrap, "-Q", "-t", f"{topic}:{partition}:{timestamp}", "-m", "10"]
    proc = _run(args, None, timeout)
    _check(proc, args)
    # "<topic> [<partition>] offset <offset>"
    for line in proc.stdout.decode().splitlines():
        if "offset" in line:
            return int(line.rsplit("offset", 1)[1].split()[0])
    raise KcatError(f"no offset in kcat -Q output: {proc.stdout!r}")


class Follower:
    """A kcat consumer left running (e.g. from ``-o end``) whose records are read as they come."""

    def __init__(
        self, bootstrap: str, topic: str, *, offset: str, partition: int | None = None, count: int = 1
    ) -> None:
        args = consume_args(bootstrap, topic, offset, partition, count, ())
        self.proc = subprocess.Popen([require_kcat(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.records: queue.Queue[Rec] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.records.put(_record(line))

    def get(self, timeout: float) -> Rec | None:
        try:
            return self.records.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        return (err or b"").decode(errors="replace")
