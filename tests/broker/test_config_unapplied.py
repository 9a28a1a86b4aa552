"""Settings Brook accepts but does not act on are named in one warning at start-up."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest

from tests.broker.conftest import make_broker

WARNING = "accepted but have no effect in Brook"


def unapplied_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]


def test_one_warning_names_every_setting_without_effect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {
        "broker.id": "1",
        "zookeeper.connect": "zk:2181",
        "num.io.threads": "16",
        "num.network.threads": "8",
        "num.replica.fetchers": "4",  # applied (replica fetchers): not named
        "queued.max.requests": "100",
        "delegation.token.secret.key": "secret-value",  # a password, and not applied
        "max.connections": "50",  # applied: not named
        "num.partitions": "3",  # applied: not named
        "background.threads": "10",  # Kafka's default: not named
    }
    with caplog.at_level(logging.WARNING, logger="broker.config"):
        broker = make_broker(tmp_path / "data", **settings)
    broker.log_manager.close()
    [message] = unapplied_warnings(caplog)
    named = message.rpartition(": ")[2].split(", ")
    assert sorted(named) == [
        "delegation.token.secret.key",
        "num.io.threads",
        "num.network.threads",
        "queued.max.requests",
    ]
    assert "secret-value" not in message


def test_no_warning_when_only_applied_settings_are_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="broker.config"):
        broker = make_broker(tmp_path / "data", **{"num.partitions": "2", "log.retention.hours": "1"})
    broker.log_manager.close()
    assert unapplied_warnings(caplog) == []


def test_every_applied_key_is_read_by_the_broker() -> None:
    """The list cannot claim a key works that no code reads: each applied key is read outside the
    config definitions (by name, by its typed accessor) or reaches storage as a topic default."""
    from broker.config import BROKER_CONFIGS, TOPIC_SYNONYMS
    from broker.config.unapplied import APPLIED

    assert not APPLIED - set(BROKER_CONFIGS)
    synonyms = {s.name for entries in TOPIC_SYNONYMS.values() for s in entries}
    root = Path(__file__).resolve().parents[2]
    files = subprocess.run(
        ["git", "ls-files", "broker", "storage"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    definitions = {
        "broker_defs.py",
        "security_defs.py",
        "topic_defs.py",
        "dynamic.py",
        "unapplied.py",
        "model.py",
    }
    source = "\n".join(
        (root / f).read_text() for f in files if f.endswith(".py") and Path(f).name not in definitions
    )
    # Typed accessors of BrokerConfig that the rest of the broker reads.
    accessor = {
        "broker.id": "node_id",
        "node.id": "node_id",
        "log.dir": "log_dirs",
        "log.dirs": "log_dirs",
        "max.connections.per.ip.overrides": "max_connections_per_ip_overrides",
        "offsets.retention.minutes": "offsets_retention_ms",
    }
    unread = [
        name
        for name in sorted(APPLIED)
        if name not in synonyms
        and f'"{name}"' not in source
        and not re.search(r"\." + accessor.get(name, name.replace(".", "_")) + r"\b", source)
    ]
    assert unread == []
