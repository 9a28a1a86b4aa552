"""ssl.principal.mapping.rules (Kafka's SslPrincipalMapper) and the RFC 2253 subject form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.config.errors import ConfigError
from broker.security.ssl_principal import NoMatchingRuleError, SslPrincipalMapper, subject_dn

DN = "CN=Duke,OU=ServiceUsers,O=Org,C=US"


def test_default_keeps_the_dn() -> None:
    assert SslPrincipalMapper("DEFAULT").name(DN) == DN
    assert SslPrincipalMapper(None).name(DN) == DN


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # Kafka's SslPrincipalMapperTest cases.
        ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "Duke"),
        ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT", "duke"),
        ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U,DEFAULT", "DUKE"),
        ("RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/", "Duke@Org"),
        ("RULE:^CN=([^,]*),OU=([^,]*)$/$1/, DEFAULT", DN),  # the first does not match the whole DN
        ("RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L", "duke"),
        ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1 \\/ x/", "Duke / x"),
        ("RULE:^CN=(.*?),.*$/$12/", "Duke2"),  # $12 with one group is group 1 then "2", as Java
        ("RULE:^CN=(.*?),.*$/\\$1/", "$1"),
    ],
)
def test_rules(rules: str, expected: str) -> None:
    assert SslPrincipalMapper(rules).name(DN) == expected


def test_no_rule_applies() -> None:
    with pytest.raises(NoMatchingRuleError, match="No rules apply"):
        SslPrincipalMapper("RULE:^CN=nobody.*$/x/").name(DN)


@pytest.mark.parametrize("rules", ["DEFAULTS", "RULE:^CN=(.*?)$/$1/LU", "RULE:^CN=(.*?)$/$1", "garbage"])
def test_invalid_rules_are_config_errors(rules: str) -> None:
    with pytest.raises(ConfigError, match="Invalid rule"):
        SslPrincipalMapper(rules)


def test_invalid_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Invalid pattern"):
        SslPrincipalMapper("RULE:^CN=(.*$/$1/")


def test_subject_dn_is_most_specific_first_and_escaped() -> None:
    subject = (
        (("countryName", "US"),),
        (("organizationName", "Org, Inc"),),
        (("organizationalUnitName", "a+b"),),
        (("commonName", " lead"),),
    )
    assert subject_dn(subject) == "CN=\\ lead,OU=a\\+b,O=Org\\, Inc,C=US"


_value = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)


@given(cn=_value, ou=_value)
def test_capture_rule_recovers_the_common_name(cn: str, ou: str) -> None:
    # Any CN (escaped in the DN) is recovered by a rule capturing up to the first unescaped comma.
    dn = subject_dn(((("organizationalUnitName", ou),), (("commonName", cn),)))
    mapper = SslPrincipalMapper(r"RULE:(?s)^CN=((?:\\.|[^,\\])*),OU=.*$/$1/")
    name = mapper.name(dn)
    assert dn.startswith(f"CN={name},OU=")


@given(dn=st.text(max_size=40), lower=st.booleans())
def test_default_and_case_rules_never_fail(dn: str, lower: bool) -> None:
    flag = "L" if lower else "U"
    assert SslPrincipalMapper(f"RULE:(?s)^(.*)$/$1/{flag}").name(dn) == (dn.lower() if lower else dn.upper())
    assert SslPrincipalMapper("DEFAULT").name(dn) == dn
