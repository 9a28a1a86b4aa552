"""Principals and the per-connection security context.

A connection's principal is ``User:ANONYMOUS`` on PLAINTEXT (and on SSL without a client
certificate), and on SSL with a client certificate the certificate's subject DN mapped through
``ssl.principal.mapping.rules`` (Kafka's DefaultKafkaPrincipalBuilder)."""

from __future__ import annotations

from storage.fast_dataclass import dataclass

USER_TYPE = "User"


@dataclass(frozen=True, slots=True)
class KafkaPrincipal:
    principal_type: str
    name: str

    def __str__(self) -> str:
        return f"{self.principal_type}:{self.name}"


ANONYMOUS = KafkaPrincipal(USER_TYPE, "ANONYMOUS")


@dataclass(frozen=True, slots=True)
class SecurityContext:
    """Who is on a connection: the listener it came in on, that listener's security protocol
    and the authenticated principal. SASL replaces the principal after authentication."""

    listener: str
    security_protocol: str
    principal: KafkaPrincipal = ANONYMOUS
