"""Security-related broker configs of Kafka 3.9: SSL, SASL, delegation tokens, password encoding
and ZooKeeper TLS.

Brook serves only PLAINTEXT listeners today, but these keys are still defined so that an existing
``server.properties`` loads without "unknown key" noise and DescribeConfigs lists what Kafka lists
(PASSWORD keys are reported as sensitive, with no value). Defaults are those of Kafka 3.9 on a
Java 11+ runtime (``ssl.protocol=TLSv1.3``, ``SunX509``/``PKIX`` manager algorithms).
"""

from __future__ import annotations

from .schema import ConfigDef, define
from .schema import ConfigType as T
from .schema import Importance as I
from .validators import at_least, one_of

H, M, L = I.HIGH, I.MEDIUM, I.LOW

# fmt: off
SECURITY: tuple[ConfigDef, ...] = (
    define("connections.max.reauth.ms", T.LONG, 0, M, "Longest session before re-authentication; 0 = never."),
    define("sasl.server.max.receive.size", T.INT, 524288, M,
           "Largest SASL frame accepted before authentication."),
    define("security.providers", T.STRING, None, L, "Security provider creator classes."),
    define("principal.builder.class", T.CLASS,
           "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder", M,
           "Builds the principal of a connection."),
    define("ssl.client.auth", T.STRING, "none", M, "Whether SSL clients must present a certificate.",
           one_of("required", "requested", "none")),
    define("ssl.principal.mapping.rules", T.STRING, "DEFAULT", L,
           "Rules mapping certificate names to principals."),
    define("ssl.allow.dn.changes", T.BOOLEAN, False, L, "Allow a reloaded keystore to change its DN."),
    define("ssl.allow.san.changes", T.BOOLEAN, False, L, "Allow a reloaded keystore to change its SANs."),
    define("ssl.protocol", T.STRING, "TLSv1.3", M, "TLS protocol of the SSLContext."),
    define("ssl.provider", T.STRING, None, M, "JSSE security provider."),
    define("ssl.enabled.protocols", T.LIST, ["TLSv1.2", "TLSv1.3"], M, "TLS protocols enabled."),
    define("ssl.keystore.type", T.STRING, "JKS", M, "Key store format."),
    define("ssl.keystore.location", T.STRING, None, M, "Key store path."),
    define("ssl.keystore.password", T.PASSWORD, None, M, "Key store password."),
    define("ssl.key.password", T.PASSWORD, None, M, "Private key password."),
    define("ssl.keystore.key", T.PASSWORD, None, M, "PEM private key."),
    define("ssl.keystore.certificate.chain", T.PASSWORD, None, M, "PEM certificate chain."),
    define("ssl.truststore.type", T.STRING, "JKS", M, "Trust store format."),
    define("ssl.truststore.location", T.STRING, None, M, "Trust store path."),
    define("ssl.truststore.password", T.PASSWORD, None, M, "Trust store password."),
    define("ssl.truststore.certificates", T.PASSWORD, None, M, "PEM trusted certificates."),
    define("ssl.keymanager.algorithm", T.STRING, "SunX509", M, "Key manager factory algorithm."),
    define("ssl.trustmanager.algorithm", T.STRING, "PKIX", M, "Trust manager factory algorithm."),
    define("ssl.endpoint.identification.algorithm", T.STRING, "https", L,
           "Host name verification algorithm."),
    define("ssl.secure.random.implementation", T.STRING, None, L, "SecureRandom implementation."),
    define("ssl.cipher.suites", T.LIST, [], M, "Cipher suites enabled; empty = all the runtime offers."),
    define("ssl.engine.factory.class", T.CLASS, None, L, "Custom SSLEngine factory."),
    define("sasl.mechanism.inter.broker.protocol", T.STRING, "GSSAPI", M, "SASL mechanism between brokers."),
    define("sasl.enabled.mechanisms", T.LIST, ["GSSAPI"], M, "SASL mechanisms the broker accepts."),
    define("sasl.server.callback.handler.class", T.CLASS, None, M, "Server-side SASL callback handler."),
    define("sasl.kerberos.principal.to.local.rules", T.LIST, ["DEFAULT"], M,
           "Rules mapping Kerberos principals to short names."),
    define("sasl.jaas.config", T.PASSWORD, None, M, "JAAS login context, inline."),
    define("sasl.client.callback.handler.class", T.CLASS, None, M, "Client-side SASL callback handler."),
    define("sasl.login.class", T.CLASS, None, M, "Login implementation."),
    define("sasl.login.callback.handler.class", T.CLASS, None, M, "Login callback handler."),
    define("sasl.kerberos.service.name", T.STRING, None, M, "Kerberos service name."),
    define("sasl.kerberos.kinit.cmd", T.STRING, "/usr/bin/kinit", M, "kinit command path."),
    define("sasl.kerberos.ticket.renew.window.factor", T.DOUBLE, 0.8, M,
           "Ticket lifetime share before renewal."),
    define("sasl.kerberos.ticket.renew.jitter", T.DOUBLE, 0.05, M, "Random jitter of ticket renewal."),
    define("sasl.kerberos.min.time.before.relogin", T.LONG, 60000, M, "Minimum time between re-logins."),
    define("sasl.login.refresh.window.factor", T.DOUBLE, 0.8, M, "Credential lifetime share before refresh."),
    define("sasl.login.refresh.window.jitter", T.DOUBLE, 0.05, M, "Random jitter of credential refresh."),
    define("sasl.login.refresh.min.period.seconds", T.SHORT, 60, M,
           "Minimum time between credential refreshes."),
    define("sasl.login.refresh.buffer.seconds", T.SHORT, 300, M, "Time kept before credential expiry."),
    define("sasl.login.connect.timeout.ms", T.INT, None, L, "OAuth login connect timeout."),
    define("sasl.login.read.timeout.ms", T.INT, None, L, "OAuth login read timeout."),
    define("sasl.login.retry.backoff.max.ms", T.LONG, 10000, L, "Largest OAuth login retry backoff."),
    define("sasl.login.retry.backoff.ms", T.LONG, 100, L, "Initial OAuth login retry backoff."),
    define("sasl.oauthbearer.scope.claim.name", T.STRING, "scope", L, "JWT claim holding the scope."),
    define("sasl.oauthbearer.sub.claim.name", T.STRING, "sub", L, "JWT claim holding the subject."),
    define("sasl.oauthbearer.token.endpoint.url", T.STRING, None, M, "OAuth token endpoint."),
    define("sasl.oauthbearer.jwks.endpoint.url", T.STRING, None, M, "OAuth JWKS endpoint."),
    define("sasl.oauthbearer.jwks.endpoint.refresh.ms", T.LONG, 3600000, L, "JWKS refresh interval."),
    define("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", T.LONG, 100, L, "Initial JWKS retry backoff."),
    define("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", T.LONG, 10000, L,
           "Largest JWKS retry backoff."),
    define("sasl.oauthbearer.clock.skew.seconds", T.INT, 30, L, "Clock skew tolerated on JWTs."),
    define("sasl.oauthbearer.expected.audience", T.LIST, None, L, "Audiences a JWT must name."),
    define("sasl.oauthbearer.expected.issuer", T.STRING, None, L, "Issuer a JWT must name."),
)

TOKENS_AND_ENCODER: tuple[ConfigDef, ...] = (
    define("delegation.token.master.key", T.PASSWORD, None, M,
           "Deprecated alias of delegation.token.secret.key."),
    define("delegation.token.secret.key", T.PASSWORD, None, M, "Secret signing delegation tokens."),
    define("delegation.token.max.lifetime.ms", T.LONG, 7 * 24 * 3600000, M,
           "Longest life of a delegation token.", at_least(1)),
    define("delegation.token.expiry.time.ms", T.LONG, 24 * 3600000, M, "Renewal period of delegation tokens.",
           at_least(1)),
    define("delegation.token.expiry.check.interval.ms", T.LONG, 3600000, L,
           "How often expired tokens are removed.", at_least(1)),
    define("password.encoder.secret", T.PASSWORD, None, M, "Secret encrypting dynamically set passwords."),
    define("password.encoder.old.secret", T.PASSWORD, None, M,
           "Previous password.encoder.secret, for rotation."),
    define("password.encoder.keyfactory.algorithm", T.STRING, None, L,
           "Key factory algorithm of the encoder."),
    define("password.encoder.cipher.algorithm", T.STRING, "AES/CBC/PKCS5Padding", L,
           "Cipher of the encoder."),
    define("password.encoder.key.length", T.INT, 128, L, "Key length of the encoder.", at_least(8)),
    define("password.encoder.iterations", T.INT, 4096, L, "Key derivation iterations of the encoder.",
           at_least(1024)),
)

ZOOKEEPER_TLS: tuple[ConfigDef, ...] = (
    define("zookeeper.ssl.client.enable", T.BOOLEAN, False, M, "Use TLS towards ZooKeeper."),
    define("zookeeper.clientCnxnSocket", T.STRING, None, M, "ZooKeeper client socket class (Netty for TLS)."),
    define("zookeeper.ssl.keystore.location", T.STRING, None, M, "Key store for ZooKeeper TLS."),
    define("zookeeper.ssl.keystore.password", T.PASSWORD, None, M, "Key store password for ZooKeeper TLS."),
    define("zookeeper.ssl.keystore.type", T.STRING, None, M, "Key store format for ZooKeeper TLS."),
    define("zookeeper.ssl.truststore.location", T.STRING, None, M, "Trust store for ZooKeeper TLS."),
    define("zookeeper.ssl.truststore.password", T.PASSWORD, None, M,
           "Trust store password for ZooKeeper TLS."),
    define("zookeeper.ssl.truststore.type", T.STRING, None, M, "Trust store format for ZooKeeper TLS."),
    define("zookeeper.ssl.protocol", T.STRING, "TLSv1.2", L, "TLS protocol towards ZooKeeper."),
    define("zookeeper.ssl.enabled.protocols", T.LIST, None, L, "TLS protocols enabled towards ZooKeeper."),
    define("zookeeper.ssl.cipher.suites", T.LIST, None, L, "Cipher suites enabled towards ZooKeeper."),
    define("zookeeper.ssl.endpoint.identification.algorithm", T.STRING, "HTTPS", L,
           "HTTPS verifies ZooKeeper host names; empty disables it."),
    define("zookeeper.ssl.crl.enable", T.BOOLEAN, False, L, "Check certificate revocation lists."),
    define("zookeeper.ssl.ocsp.enable", T.BOOLEAN, False, L, "Check certificates with OCSP."),
)

# fmt: on
SECURITY_GROUPS: tuple[tuple[ConfigDef, ...], ...] = (SECURITY, TOKENS_AND_ENCODER, ZOOKEEPER_TLS)
