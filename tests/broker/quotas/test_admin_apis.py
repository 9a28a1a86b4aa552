"""DescribeClientQuotas and AlterClientQuotas on the embedded node: Kafka's checks and errors,
the quota file, and its reload at start."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from broker.quotas import QUOTAS_FILE
from broker.quotas.entity import QuotaEntity
from protocol.error_codes import ErrorCode
from protocol.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from protocol.messages.describe_client_quotas_request import ComponentData, DescribeClientQuotasRequest
from tests.broker.conftest import Caller, make_broker

EXACT, DEFAULT, SPECIFIED = 0, 1, 2


def alter(
    call: Caller, entity: list[tuple[str, str | None]], ops: list[OpData], *, validate_only: bool = False
):
    entry = EntryData([EntityData(t, n) for t, n in entity], ops)
    response = call(AlterClientQuotasRequest(entries=[entry], validate_only=validate_only), 1)
    [result] = response.entries
    return result.error_code, result.error_message


def describe(
    call: Caller, components: list[tuple[str, int, str | None]], strict: bool = False, version: int = 1
):
    request = DescribeClientQuotasRequest([ComponentData(*c) for c in components], strict)
    response = call(request, version)
    if response.error_code:
        return response.error_code, response.error_message
    return {
        tuple((e.entity_type, e.entity_name) for e in entry.entity): {v.key: v.value for v in entry.values}
        for entry in response.entries
    }


@pytest.fixture
def call(tmp_path: Path) -> Caller:
    return Caller(make_broker(tmp_path))


def test_set_describe_and_remove_quotas(call: Caller, tmp_path: Path) -> None:
    assert alter(call, [("user", "alice")], [OpData("producer_byte_rate", 1024)]) == (0, None)
    assert alter(call, [("client-id", "app")], [OpData("consumer_byte_rate", 2048)]) == (0, None)
    assert alter(call, [("user", "alice"), ("client-id", None)], [OpData("request_percentage", 12.5)]) == (
        0,
        None,
    )
    assert alter(call, [("user", None)], [OpData("controller_mutation_rate", 3)]) == (0, None)

    everything = describe(call, [])
    assert everything == {
        (("user", "alice"),): {"producer_byte_rate": 1024.0},
        (("client-id", "app"),): {"consumer_byte_rate": 2048.0},
        (("user", "alice"), ("client-id", None)): {"request_percentage": 12.5},
        (("user", None),): {"controller_mutation_rate": 3.0},
    }
    assert describe(call, [("user", EXACT, "alice")]) == {
        (("user", "alice"),): {"producer_byte_rate": 1024.0},
        (("user", "alice"), ("client-id", None)): {"request_percentage": 12.5},
    }
    assert describe(call, [("user", EXACT, "alice")], strict=True) == {
        (("user", "alice"),): {"producer_byte_rate": 1024.0}
    }
    assert describe(call, [("user", DEFAULT, None)]) == {(("user", None),): {"controller_mutation_rate": 3.0}}
    assert describe(call, [("client-id", SPECIFIED, None)], strict=True) == {
        (("client-id", "app"),): {"consumer_byte_rate": 2048.0}
    }
    assert describe(call, [("user", SPECIFIED, None), ("client-id", DEFAULT, None)], version=0) == {
        (("user", "alice"), ("client-id", None)): {"request_percentage": 12.5}
    }

    # Kafka's stored form: whole numbers for byte rates, Java's Double.toString for the others.
    stored = json.loads((tmp_path / QUOTAS_FILE).read_text())["entities"]
    assert stored["users/alice"] == {"producer_byte_rate": "1024"}
    assert stored["users/alice/clients/<default>"] == {"request_percentage": "12.5"}
    assert stored["users/<default>"] == {"controller_mutation_rate": "3.0"}

    assert alter(call, [("user", "alice")], [OpData("producer_byte_rate", 0, remove=True)]) == (0, None)
    assert (("user", "alice"),) not in describe(call, [])
    assert "users/alice" not in json.loads((tmp_path / QUOTAS_FILE).read_text())["entities"]


def test_quotas_are_enforced_at_once_and_reloaded_at_start(call: Caller, tmp_path: Path) -> None:
    alter(call, [("user", "a b*")], [OpData("producer_byte_rate", 4096)])
    quotas = call.broker.quota_service.quotas
    assert quotas.produce.quotas == {QuotaEntity("a%20b%2A", None): 4096.0}
    assert (tmp_path / QUOTAS_FILE).exists()

    restarted = make_broker(tmp_path)
    assert restarted._quota_service is None
    asyncio.run(restarted._start_quotas())
    assert restarted.quota_service.quotas.produce.quotas == {QuotaEntity("a%20b%2A", None): 4096.0}
    assert describe(Caller(restarted), [("user", EXACT, "a b*")]) == {
        (("user", "a b*"),): {"producer_byte_rate": 4096.0}
    }


def test_no_quota_file_means_no_quota_module_at_start(tmp_path: Path) -> None:
    broker = make_broker(tmp_path)
    asyncio.run(broker._start_quotas())
    assert broker._quota_service is None


def test_validate_only_stores_nothing(call: Caller, tmp_path: Path) -> None:
    assert alter(call, [("client-id", "x")], [OpData("producer_byte_rate", 10)], validate_only=True) == (
        0,
        None,
    )
    assert describe(call, []) == {}
    assert not (tmp_path / QUOTAS_FILE).exists()


@pytest.mark.parametrize(
    ("entity", "ops", "message"),
    [
        ([], [OpData("producer_byte_rate", 1)], "Invalid empty client quota entity"),
        ([("user", "")], [OpData("producer_byte_rate", 1)], "Empty user not supported"),
        ([("group", "g")], [OpData("producer_byte_rate", 1)], "Unhandled client quota entity type: group"),
        ([("user", "u")], [OpData("bogus", 1)], "Invalid configuration key bogus"),
        ([("user", "u")], [OpData("SCRAM-SHA-256", 1)], "Invalid configuration key SCRAM-SHA-256"),
        (
            [("user", "u")],
            [OpData("producer_byte_rate", 1.5)],
            "Configuration producer_byte_rate must be a LONG value",
        ),
        (
            [("ip", "1.2.3.4"), ("user", "u")],
            [OpData("producer_byte_rate", 1)],
            "Invalid quota entity combination, IP entity should not be used with user/client ID entity.",
        ),
    ],
)
def test_alter_refuses_what_kafka_refuses(
    call: Caller, entity: list[tuple[str, str | None]], ops: list[OpData], message: str
) -> None:
    assert alter(call, entity, ops) == (ErrorCode.INVALID_REQUEST, message)
    assert describe(call, []) == {}


def test_removing_an_unknown_key_is_allowed(call: Caller) -> None:
    assert alter(call, [("user", "u")], [OpData("bogus", 0, remove=True)]) == (0, None)


@pytest.mark.parametrize(
    ("components", "code", "message"),
    [
        (
            [("user", EXACT, "a"), ("user", EXACT, "b")],
            ErrorCode.INVALID_REQUEST,
            "Duplicate user filter component entity type",
        ),
        ([("", EXACT, "a")], ErrorCode.INVALID_REQUEST, "Unexpected empty filter component entity type"),
        ([("group", EXACT, "a")], ErrorCode.UNSUPPORTED_VERSION, "Custom entity type 'group' not supported"),
        (
            [("ip", SPECIFIED, None), ("user", SPECIFIED, None)],
            ErrorCode.INVALID_REQUEST,
            "Invalid entity filter component combination, IP filter component should not be used with "
            "user or clientId filter component.",
        ),
    ],
)
def test_describe_refuses_bad_filters(
    call: Caller, components: list[tuple[str, int, str | None]], code: ErrorCode, message: str
) -> None:
    assert describe(call, components) == (code, message)


def test_a_stored_config_keeps_keys_it_does_not_own(call: Caller, tmp_path: Path) -> None:
    """SCRAM credentials share a user's config: a quota change keeps them, loading skips them."""
    path = tmp_path / QUOTAS_FILE
    path.write_text(json.dumps({"version": 1, "entities": {"users/alice": {"SCRAM-SHA-256": "salt=..."}}}))
    fresh = Caller(make_broker(tmp_path))
    assert alter(fresh, [("user", "alice")], [OpData("producer_byte_rate", 100)]) == (0, None)
    assert json.loads(path.read_text())["entities"]["users/alice"] == {
        "SCRAM-SHA-256": "salt=...",
        "producer_byte_rate": "100",
    }
    assert describe(fresh, []) == {(("user", "alice"),): {"producer_byte_rate": 100.0}}
