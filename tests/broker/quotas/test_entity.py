"""Quota entities: Kafka's Sanitizer and the precedence of configured entities."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.quotas.entity import DEFAULT, QuotaEntity, desanitize, metric_tags, quota_limit, sanitize

U, C = "alice", "app"
#: Kafka's precedence, most specific first (ClientQuotaManager's documentation).
PRECEDENCE = [
    QuotaEntity(U, C),
    QuotaEntity(U, DEFAULT),
    QuotaEntity(U, None),
    QuotaEntity(DEFAULT, C),
    QuotaEntity(DEFAULT, DEFAULT),
    QuotaEntity(DEFAULT, None),
    QuotaEntity(None, C),
    QuotaEntity(None, DEFAULT),
]


@pytest.mark.parametrize(
    ("name", "sanitized"),
    [
        ("alice", "alice"),
        ("a b", "a%20b"),
        ("a*b", "a%2Ab"),
        ("a+b", "a%2Bb"),
        ("user@example.com", "user%40example.com"),
        ("CN=x,O=y", "CN%3Dx%2CO%3Dy"),
        ("<default>", "%3Cdefault%3E"),
        ("é", "%C3%A9"),
        ("a~b", "a%7Eb"),
        ("a.b-c_d", "a.b-c_d"),
        ("x/y", "x%2Fy"),
    ],
)
def test_sanitize_is_javas_url_encoding_as_kafka_adjusts_it(name: str, sanitized: str) -> None:
    assert sanitize(name) == sanitized
    assert desanitize(sanitized) == name


@given(st.text(min_size=1, max_size=30))
def test_sanitized_names_round_trip_and_never_need_a_slash(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return  # a lone surrogate: no client id or principal can hold one
    sanitized = sanitize(name)
    assert "/" not in sanitized and sanitized != DEFAULT
    assert desanitize(sanitized) == name


@settings(max_examples=300)
@given(st.lists(st.booleans(), min_size=8, max_size=8))
def test_the_most_specific_configured_entity_applies(configured: list[bool]) -> None:
    chosen = [entity for entity, on in zip(PRECEDENCE, configured, strict=True) if on]
    quotas = {entity: float(PRECEDENCE.index(entity) + 1) for entity in chosen}
    expected = quotas[chosen[0]] if chosen else None
    assert quota_limit(quotas, metric_tags(quotas, U, C)) == expected


def test_clients_of_a_user_quota_share_one_rate() -> None:
    quotas = {QuotaEntity(U, None): 1.0}
    assert metric_tags(quotas, U, "one") == metric_tags(quotas, U, "two") == (U, "")
    assert metric_tags(quotas, "bob", "one") == ("", "one")  # no quota: keyed by client


def test_entity_paths_are_kafkas_znode_paths() -> None:
    for entity, path in [
        (QuotaEntity("alice", None), "users/alice"),
        (QuotaEntity(None, DEFAULT), "clients/<default>"),
        (QuotaEntity("alice", "app"), "users/alice/clients/app"),
        (QuotaEntity(DEFAULT, DEFAULT), "users/<default>/clients/<default>"),
    ]:
        assert entity.path == path
        assert QuotaEntity.from_path(path) == entity
    for bad in ("topics/t", "users", "users/a/clients", "users/a/other/b", "clients/"):
        with pytest.raises(ValueError):
            QuotaEntity.from_path(bad)
    assert QuotaEntity("a%20b", DEFAULT).names() == ("a b", None)
