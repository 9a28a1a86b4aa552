"""The key order Kafka's JSON has in ZooKeeper: the iteration order of the JVM maps it serializes.

Kafka writes znode JSON with Jackson (``kafka.utils.Json.encodeAsBytes``) from Scala or Java maps,
so the order of the keys in the bytes is the iteration order of those maps, which follows the keys'
hash codes. To write the same bytes this module computes that order for the map kinds ZkData.scala
uses, as built by Scala 2.13 (the kafka_2.13 distribution) on Java 17:

- ``scala_mutable_order``: ``scala.collection.mutable.HashMap`` (buckets by ``h ^ (h >>> 16)``,
  each bucket kept sorted by that hash, the table doubling at 3/4 load);
- ``scala_immutable_order``: ``scala.collection.immutable.Map`` (Map1..Map4 keep insertion order,
  from five keys a CHAMP trie walked by 5-bit hash chunks of ``Hashing.improve``);
- ``java_hash_order``: ``java.util.HashMap`` and ``ConcurrentHashMap`` (``Properties``), buckets by
  ``h ^ (h >>> 16)``, insertion order within a bucket.

Readers never depend on the order; writing it anyway makes a Brook cluster's ZooKeeper dump
byte-identical to Kafka's, which is what the golden tests check. The Java orders (and Jackson's
escaping) are checked against a real JVM running Jackson (tests/broker/zk/test_zk_jvm_order.py);
the Scala ones follow Scala 2.13's collection sources (mutable.HashMap.put0/growTable/from,
collection.Hashing.improve, the CHAMP iterator) and agree with the partition-state key order
every public Kafka ZooKeeper dump shows.
"""

from __future__ import annotations

from collections.abc import Sequence

_MASK = 0xFFFFFFFF


def _signed(value: int) -> int:
    value &= _MASK
    return value - (1 << 32) if value & 0x80000000 else value


def java_string_hash(text: str) -> int:
    """``String.hashCode``: over UTF-16 code units, 32-bit wrapping."""
    data = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & _MASK
    return _signed(h)


def _spread(h: int) -> int:
    u = h & _MASK
    return _signed(u ^ (u >> 16))


def _table_size_for(capacity: int) -> int:
    # scala.collection.mutable.HashMap.tableSizeFor
    highest = 1 << (max(capacity - 1, 4).bit_length() - 1)
    return min(highest * 2, 1 << 30)


def scala_mutable_order(keys: Sequence[str], *, known_size: int | None = None) -> list[str]:
    """Iteration order of a ``mutable.HashMap`` that got ``keys`` inserted in this order.

    ``known_size`` is the number of pairs given to ``mutable.Map(k -> v, ...)`` (``HashMap.from``
    sizes the table from it); None for a map built empty with ``mutable.Map()`` and ``+=``.
    """
    table = _table_size_for(int((known_size + 1) / 0.75)) if known_size else 16
    placed: list[str] = []
    for key in keys:
        if key in placed:
            continue
        # put0 grows before inserting when contentSize + 1 >= threshold
        if len(placed) + 1 >= int(table * 0.75):
            table *= 2
        placed.append(key)
    hashed = [(_spread(java_string_hash(k)), i, k) for i, k in enumerate(placed)]
    # Buckets in index order; a bucket is sorted by hash (signed); equal hashes keep insertion order.
    hashed.sort(key=lambda t: (t[0] & (table - 1), t[0], t[1]))
    return [k for _, _, k in hashed]


def _improve(hcode: int) -> int:
    # scala.collection.Hashing.improve
    h = hcode & _MASK
    h = (h + (~(h << 9) & _MASK)) & _MASK
    h ^= h >> 14
    h = (h + (h << 4)) & _MASK
    return h ^ (h >> 10)


def _champ_order(items: list[tuple[int, str]], shift: int) -> list[str]:
    if shift >= 32:
        return [k for _, k in items]  # full collision: a collision node keeps insertion order
    buckets: dict[int, list[tuple[int, str]]] = {}
    for h, k in items:
        buckets.setdefault((h >> shift) & 0x1F, []).append((h, k))
    ordered = sorted(buckets.items())
    # A node's own entries come first (by 5-bit chunk), then its sub-nodes, depth first.
    out = [entries[0][1] for _, entries in ordered if len(entries) == 1]
    for _, entries in ordered:
        if len(entries) > 1:
            out += _champ_order(entries, shift + 5)
    return out


def scala_immutable_order(keys: Sequence[str]) -> list[str]:
    """Iteration order of ``immutable.Map(keys...)`` (``Map(...)`` or ``Seq(...).toMap``)."""
    unique = list(dict.fromkeys(keys))
    if len(unique) <= 4:
        return unique
    return _champ_order([(_improve(java_string_hash(k)), k) for k in unique], 0)


def java_hash_order(keys: Sequence[str], *, concurrent: bool = False) -> list[str]:
    """Iteration order of a ``java.util.HashMap`` (or, ``concurrent``, the ``ConcurrentHashMap``
    inside a ``Properties``) filled with ``keys`` in this order, both from 16 buckets.

    The fill is simulated: buckets keep insertion order; a HashMap doubles after a put takes its
    size past 3/4 of the table and splits each bucket keeping the order, a ConcurrentHashMap
    doubles when its size reaches 3/4 and its transfer moves the nodes before a bucket's last run
    to the front in reverse order. (Buckets of eight or more colliding keys, which Java turns
    into trees, are not modelled; Kafka's maps are far too small for that.)
    """
    table: list[list[tuple[int, str]]] = [[] for _ in range(16)]
    size = 0
    for key in keys:
        h = _spread(java_string_hash(key)) & 0x7FFFFFFF if concurrent else _spread(java_string_hash(key))
        bucket = table[h & (len(table) - 1)]
        if any(k == key for _, k in bucket):
            continue
        bucket.append((h, key))
        size += 1
        n = len(table)
        if (concurrent and size >= n - (n >> 2)) or (not concurrent and size > int(n * 0.75)):
            table = _resize(table, concurrent)
    return [k for bucket in table for _, k in bucket]


def _resize(table: list[list[tuple[int, str]]], concurrent: bool) -> list[list[tuple[int, str]]]:
    n = len(table)
    grown: list[list[tuple[int, str]]] = [[] for _ in range(2 * n)]
    for index, bucket in enumerate(table):
        if not bucket:
            continue
        if not concurrent:
            for node in bucket:
                grown[index + (n if node[0] & n else 0)].append(node)
            continue
        # ConcurrentHashMap.transfer: the last run of nodes going the same way is reused as is;
        # the nodes before it are pushed in front, one by one (so reversed).
        last_run = len(bucket) - 1
        while last_run > 0 and (bucket[last_run - 1][0] & n) == (bucket[last_run][0] & n):
            last_run -= 1
        low: list[tuple[int, str]] = []
        high: list[tuple[int, str]] = []
        (high if bucket[last_run][0] & n else low).extend(bucket[last_run:])
        for node in bucket[:last_run]:
            (high if node[0] & n else low).insert(0, node)
        grown[index] = low
        grown[index + n] = high
    return grown
