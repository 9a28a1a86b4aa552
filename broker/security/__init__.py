"""Connection security: listeners' TLS contexts, per-connection security contexts and principals.

SASL, ACLs and quotas plug in here: a connection carries a :class:`SecurityContext` whose
principal an authorizer can check."""
