"""``ssl.principal.mapping.rules``: Kafka's SslPrincipalMapper, and the RFC 2253 form of a
certificate subject as Java's ``X500Principal.getName()`` prints it.

Rules are a comma-separated list of ``DEFAULT`` (the DN as it is) and
``RULE:pattern/replacement/[LU]`` (when the pattern matches the whole DN, the DN with the pattern
replaced, optionally lower- or upper-cased). The first rule that applies wins; when none does, the
connection is refused (Kafka's NoMatchingRule fails the authentication).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from broker.config.errors import ConfigError
from storage.fast_dataclass import dataclass

_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(,\s*|$)")
_PARSER = re.compile(_RULE)
_BACK_REFERENCE = re.compile(r"\$(\d+)")


class NoMatchingRuleError(Exception):
    """No mapping rule applies to a DN: the client is not authenticated."""


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str
    case: str  # "", "L" or "U"

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        if self.pattern.fullmatch(dn) is None:
            return None
        result = self.pattern.sub(_python_replacement(self.replacement, self.pattern.groups), dn)
        if self.case == "L":
            return result.lower()
        if self.case == "U":
            return result.upper()
        return result


def _python_replacement(java: str, groups: int) -> str:
    """A Java ``replaceAll`` replacement as a Python one: ``$n`` is group n (a reference past the
    last group drops digits as Kafka's escapeLiteralBackReferences does, down to a literal),
    ``\\x`` is x literally."""
    out: list[str] = []
    i = 0
    while i < len(java):
        ch = java[i]
        if ch == "\\" and i + 1 < len(java):
            out.append(java[i + 1].replace("\\", "\\\\"))
            i += 2
            continue
        if ch == "$":
            match = _BACK_REFERENCE.match(java, i)
            if match is not None:
                digits = match.group(1)
                # Java reads as many digits as still name an existing group.
                take = 1
                while take < len(digits) and int(digits[: take + 1]) <= groups:
                    take += 1
                index = int(digits[:take])
                if index <= groups:
                    out.append(f"\\g<{index}>{digits[take:]}")
                else:
                    out.append("$" + digits)
                i = match.end()
                continue
        out.append("\\\\" if ch == "\\" else ch)
        i += 1
    return "".join(out)


class SslPrincipalMapper:
    """Parsed ``ssl.principal.mapping.rules``; ConfigError on an invalid rule or pattern."""

    def __init__(self, rules_text: str | None) -> None:
        self.rules: Sequence[_Rule] = _parse(rules_text if rules_text is not None else "DEFAULT")

    def name(self, dn: str) -> str:
        for rule in self.rules:
            principal = rule.apply(dn)
            if principal is not None:
                return principal
        raise NoMatchingRuleError(f"No rules apply to {dn}")


def _parse(text: str) -> list[_Rule]:
    rules: list[_Rule] = []
    for match in _SPLITTER.finditer(text.strip()):
        rule = match.group(1)
        parsed = _PARSER.match(rule)
        if parsed is None:
            raise ConfigError.invalid("ssl.principal.mapping.rules", text, f"Invalid rule: {rule}")
        if parsed.end() != len(rule):
            raise ConfigError.invalid(
                "ssl.principal.mapping.rules",
                text,
                f"Invalid rule: `{rule}`, unmatched substring: `{rule[parsed.end() :]}`",
            )
        if parsed.group(1) is not None:
            rules.append(_Rule(None, "", ""))
        elif parsed.group(2) is not None:
            try:
                pattern = re.compile(parsed.group(2))
            except re.error as exc:
                raise ConfigError.invalid(
                    "ssl.principal.mapping.rules", text, f"Invalid pattern {parsed.group(2)!r}: {exc}"
                ) from exc
            rules.append(_Rule(pattern, parsed.group(4), parsed.group(6) or ""))
    return rules


# -- the subject DN as Java prints it ----------------------------------------------------------------

#: OpenSSL long names -> the keywords Java's RFC 2253 form uses; others print as their OID.
_KEYWORDS = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_OIDS = {
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "title": "2.5.4.12",
    "surname": "2.5.4.4",
    "givenName": "2.5.4.42",
    "initials": "2.5.4.43",
    "generationQualifier": "2.5.4.44",
    "dnQualifier": "2.5.4.46",
    "pseudonym": "2.5.4.65",
    "postalCode": "2.5.4.17",
    "businessCategory": "2.5.4.15",
}


def _escape(value: str) -> str:
    escaped = re.sub(r'([,+"\\<>;])', r"\\\1", value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def subject_dn(subject: Sequence[Sequence[tuple[str, str]]]) -> str:
    """``SSLObject.getpeercert()['subject']`` (RDNs in certificate order) as RFC 2253: most
    specific RDN first, ``CN=a,OU=b,O=c``. Attributes Java prints as OIDs are printed as
    ``oid=value`` (Java hex-encodes their DER instead; mapping rules rarely target them)."""
    rdns = []
    for rdn in reversed(subject):
        parts = [f"{_KEYWORDS.get(key) or _OIDS.get(key, key)}={_escape(value)}" for key, value in rdn]
        rdns.append("+".join(parts))
    return ",".join(rdns)
