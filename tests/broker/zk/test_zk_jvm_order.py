"""The Java-map key order and Jackson's escaping, checked against a real JVM running Jackson.

Java 17 and the Jackson jars come with Debian's zookeeper package (its jar's dependencies), which
the ZooKeeper tests need anyway; a missing one fails with the fix, never skips.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from broker.cluster.zk.data import _dumps
from broker.cluster.zk.jvm_order import java_hash_order
from compat_tests.zookeeper import require_zookeeper

JARS = [
    Path(f"/usr/share/java/{name}.jar")
    for name in ("jackson-databind", "jackson-core", "jackson-annotations")
]
SOURCE = Path(__file__).with_name("JvmJsonOrder.java")
ALPHABET = "abcdefghijklmnopqrstuvwxyz.-_0123456789" + 'é"\\/\u0001\u001f\u007f\u2028😀'


def _key_sets() -> list[list[str]]:
    rng = random.Random(20261203)
    sets: list[list[str]] = [[], ["retention.ms", "cleanup.policy", "min.insync.replicas"]]
    for _ in range(300):
        size = rng.choice([1, 3, 5, 11, 12, 13, 20, 40])
        keys = {"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(size)}
        sets.append(sorted(keys, key=lambda _: rng.random()))
    return sets


def test_java_hash_order_and_escaping_match_jackson_on_the_jvm() -> None:
    require_zookeeper()
    missing = [str(j) for j in JARS if not j.exists()]
    assert not missing, f"Jackson jars missing ({missing}): install Debian's zookeeper package"
    key_sets = _key_sets()
    stdin = "".join("\t".join(keys) + "\n" for keys in key_sets).encode("utf-8")
    done = subprocess.run(
        ["java", "-Xshare:auto", "-cp", ":".join(map(str, JARS)), str(SOURCE)],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.split(b"\n")
    for i, keys in enumerate(key_sets):
        props, hashmap = lines[2 * i], lines[2 * i + 1]
        expected_props = _dumps({k: k for k in java_hash_order(keys, concurrent=True)})
        expected_map = _dumps({k: k for k in java_hash_order(keys)})
        assert props == expected_props, keys
        assert hashmap == expected_map, keys
