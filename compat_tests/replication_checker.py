"""The checker of the fault-injection tests: what was acknowledged against what can be read back.

A workload writes values ``<run>:<partition>:<sequence>`` (sequence numbers rising per partition)
and records every acknowledged ``(partition, offset, value)``. After the faults, every partition is
read from its earliest offset; :func:`check` compares the two and counts, per Kafka's promise for
acks=all with an idempotent producer:

- **lost**: acknowledged, but not in the partition it was acknowledged in;
- **duplicated**: an extra copy of a value of this run (any value, acknowledged or not: an
  idempotent producer never writes one twice);
- **reordered**: a value of this run read after a value with a higher sequence number;
- **moved**: acknowledged at one offset, read at another (the log under it was rewritten).

Records of other runs (other writers) are ignored, values that were never acknowledged (the
answer was lost, the write timed out) may be present once or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Acked:
    """One acknowledged write: where the broker said it put ``value``."""

    partition: int
    offset: int
    value: bytes


def make_value(run: str, partition: int, sequence: int) -> bytes:
    return f"{run}:{partition}:{sequence:09d}".encode()


def parse_value(run: str, value: bytes | None) -> tuple[int, int] | None:
    """(partition, sequence) of a value of ``run``; None for anything else."""
    if value is None:
        return None
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return None
    head, sep, rest = text.partition(":")
    if not sep or head != run:
        return None
    partition, sep, sequence = rest.partition(":")
    if not sep or not partition.isdigit() or not sequence.isdigit():
        return None
    return int(partition), int(sequence)


@dataclass
class Report:
    acknowledged: int = 0
    read: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    moved: int = 0
    #: a few examples of each problem, for the failure message
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.moved)

    def counts(self) -> str:
        return (
            f"acknowledged={self.acknowledged} read={self.read} lost={self.lost} "
            f"duplicated={self.duplicated} reordered={self.reordered} moved={self.moved}"
        )

    def __str__(self) -> str:
        shown = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in self.examples.items())
        return self.counts() + (f" ({shown})" if shown else "")

    def _note(self, kind: str, example: str) -> None:
        items = self.examples.setdefault(kind, [])
        if len(items) < 5:
            items.append(example)


def check(
    run: str,
    acknowledged: Iterable[Acked],
    read: Mapping[int, Sequence[tuple[int, bytes | None]]],
) -> Report:
    """Compare ``acknowledged`` with ``read`` (partition -> [(offset, value)] in log order)."""
    report = Report()
    acked_by_value: dict[bytes, Acked] = {}
    for ack in acknowledged:
        report.acknowledged += 1
        acked_by_value[ack.value] = ack
    found: dict[bytes, list[tuple[int, int]]] = {}  # value -> [(partition, offset)]
    for partition, records in read.items():
        highest = -1
        for offset, value in records:
            parsed = parse_value(run, value)
            if parsed is None or value is None:
                continue
            report.read += 1
            found.setdefault(value, []).append((partition, offset))
            _, sequence = parsed
            if sequence < highest:
                report.reordered += 1
                report._note("reordered", f"{value.decode()} at {partition}/{offset}")
            highest = max(highest, sequence)
    for value, places in found.items():
        if len(places) > 1:
            report.duplicated += len(places) - 1
            report._note("duplicated", f"{value.decode()} at {places}")
    for value, ack in acked_by_value.items():
        places = [place for place in found.get(value, []) if place[0] == ack.partition]
        if not places:
            report.lost += 1
            report._note("lost", f"{value.decode()} (acked at {ack.partition}/{ack.offset})")
        elif ack.offset not in {offset for _, offset in places}:
            report.moved += 1
            report._note("moved", f"{value.decode()} acked at {ack.offset}, read at {places}")
    return report
