"""The JAAS parser of ``sasl.jaas.config``: Kafka's syntax, quoting and escapes, errors that never
quote a value."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.security.jaas import JaasError, parse_jaas_config, quote, single_login_module

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def test_plain_login_module_with_users() -> None:
    module = single_login_module(
        f'{PLAIN} required username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret";'
    )
    assert module.name == PLAIN and module.flag == "required"
    assert module.options == {
        "username": "admin",
        "password": "admin-secret",
        "user_admin": "admin-secret",
        "user_alice": "alice-secret",
    }


def test_escapes_unquoted_words_and_comments() -> None:
    module = single_login_module(
        f"/* broker */ {PLAIN} REQUIRED // trailing\n"
        r'a="x\"y" b="back\\slash" c=word.with-dash_1 d=' + "'single'" + ' e="" ;'
    )
    assert module.flag == "required"
    assert module.options == {"a": 'x"y', "b": "back\\slash", "c": "word.with-dash_1", "d": "single", "e": ""}


def test_several_modules() -> None:
    modules = parse_jaas_config(f'{PLAIN} required a="1"; other.Module optional;')
    assert [m.name for m in modules] == [PLAIN, "other.Module"]
    with pytest.raises(JaasError, match="2 login modules"):
        single_login_module(f'{PLAIN} required a="1"; other.Module optional;')


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"{PLAIN}",
        f"{PLAIN} required",
        f'{PLAIN} mandatory password="hunter2";',
        f'{PLAIN} required password="hunter2"',
        f'{PLAIN} required password="hunter2;',
        f"{PLAIN} required password=;",
        f'{PLAIN} required "password"="x";',
        f"{PLAIN} required /* open",
    ],
)
def test_bad_text_is_a_jaas_error_without_the_secret(text: str) -> None:
    with pytest.raises(JaasError) as failure:
        parse_jaas_config(text)
    assert "hunter2" not in str(failure.value)


_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True)
_VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_quoted_values_round_trip(options: dict[str, str]) -> None:
    text = f"{PLAIN} required " + " ".join(f"{k}={quote(v)}" for k, v in options.items()) + ";"
    assert single_login_module(text).options == options


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_parses_or_raises_jaas_error(text: str) -> None:
    with contextlib.suppress(JaasError):
        parse_jaas_config(text)
