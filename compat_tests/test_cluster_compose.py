"""compose.cluster.yaml: ZooKeeper and three Brook brokers whose settings make one cluster.

Each broker's environment goes through the image's own configuration code (docker/entrypoint.py's
``load``, exactly what the container runs at start), so the checks are on the configuration the
broker would really run with: unique broker ids, ``zookeeper.connect`` naming the compose file's
ZooKeeper service, distinct advertised endpoints that match each broker's host name and published
port, and an inter-broker listener every broker advertises on the compose network.

Running the file needs a container engine; test_docker.py covers the image itself.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from compat_tests.clients.tools import missing
from compat_tests.harness import REPO

COMPOSE = REPO / "compose.cluster.yaml"


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        missing("PyYAML is not installed (it is in the test extras: make test-deps)")
    return yaml


def _entrypoint() -> ModuleType:
    """docker/entrypoint.py by path (``docker`` is also the Docker SDK's package name)."""
    spec = importlib.util.spec_from_file_location("brook_image_entrypoint", REPO / "docker" / "entrypoint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = _yaml().safe_load(COMPOSE.read_text())
    return doc


def _brokers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "KAFKA_ZOOKEEPER_CONNECT" in (service.get("environment") or {})
    }


def _published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port, from compose's short ``"host:container"`` syntax."""
    out: dict[int, int] = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        out[int(container)] = int(host)
    return out


def test_compose_cluster_has_zookeeper_and_three_consistent_brokers(compose: dict[str, Any]) -> None:
    entrypoint = _entrypoint()
    services = compose["services"]
    zookeeper = services["zookeeper"]
    assert str(zookeeper["image"]).startswith("zookeeper:"), "the official zookeeper image"

    brokers = _brokers(compose)
    assert sorted(brokers) == ["broker1", "broker2", "broker3"]
    configs = {}
    for name, service in brokers.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        config, _notes = entrypoint.load(env, entrypoint.parse_arguments([]))
        configs[name] = config
        assert service.get("image", "").startswith("brook") or "build" in service
        assert "zookeeper" in service.get("depends_on", [])

    ids = [c.broker_id for c in configs.values()]
    assert len(set(ids)) == 3 and all(i >= 0 for i in ids), ids

    for name, config in configs.items():
        # zookeeper.connect: the ZooKeeper service on its client port (the image's 2181).
        hosts = config.zookeeper_connect.split("/", 1)[0].split(",")
        assert hosts == ["zookeeper:2181"], (name, config.zookeeper_connect)
        assert int(config.get("zookeeper.session.timeout.ms")) > 0

        advertised = {listener.name: listener for listener in config.advertised_listeners}
        bound = {listener.name: listener for listener in config.listeners}
        assert set(advertised) == set(bound), name
        # Brokers reach each other on the compose network, under the service's host name.
        inter = advertised[config.inter_broker_listener_name]
        assert inter.host == services[name]["hostname"] == name, (name, inter)
        assert inter.port == bound[config.inter_broker_listener_name].port
        # Host clients: the published port is the advertised one, on localhost.
        published = _published(services[name])
        host_listeners = [a for n, a in advertised.items() if n != config.inter_broker_listener_name]
        for listener in host_listeners:
            assert listener.host == "localhost", (name, listener)
            assert published.get(bound[listener.name].port) == listener.port, (name, listener, published)
        assert config.get("default.replication.factor") == 3
        assert config.get("offsets.topic.replication.factor") == 3

    endpoints = [(a.host, a.port) for c in configs.values() for a in c.advertised_listeners]
    assert len(endpoints) == len(set(endpoints)), f"advertised endpoints collide: {endpoints}"
    volumes = [v for s in brokers.values() for v in s.get("volumes", [])]
    assert len(volumes) == len(set(volumes)) == 3, "each broker has a data volume of its own"
    assert all(str(v).endswith(":/var/lib/brook/data") for v in volumes)


def test_compose_cluster_builds_the_image_once(compose: dict[str, Any]) -> None:
    """One service builds brook:latest from the repository; the others reuse that image."""
    brokers = _brokers(compose)
    building = [n for n, s in brokers.items() if "build" in s]
    assert building == ["broker1"], building
    assert {s["image"] for s in brokers.values()} == {"brook:latest"}
    assert (REPO / str(brokers["broker1"]["build"]) / "Dockerfile").is_file()
