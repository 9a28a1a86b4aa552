"""The assembled tables: every broker config by name (with its update mode) and lookups that
understand listener-prefixed keys (``listener.name.<name>.<config>``)."""

from __future__ import annotations

from dataclasses import replace

from .broker_defs import BROKER_GROUPS, DYNAMIC_ONLY
from .dynamic import listener_base_name, with_update_mode
from .schema import ConfigDef, UpdateMode
from .security_defs import SECURITY_GROUPS


def _assemble() -> dict[str, ConfigDef]:
    table: dict[str, ConfigDef] = {}
    for group in (*BROKER_GROUPS, *SECURITY_GROUPS):
        for definition in group:
            if definition.name in table:
                raise AssertionError(f"broker config {definition.name} defined twice")
            table[definition.name] = with_update_mode(definition)
    return table


#: Every broker config Brook knows, in Kafka's grouping order.
BROKER_CONFIGS: dict[str, ConfigDef] = _assemble()

#: Broker configs that can only be set dynamically (quota rates); unknown in server.properties.
DYNAMIC_ONLY_CONFIGS: dict[str, ConfigDef] = {
    d.name: replace(d, update_mode=UpdateMode.CLUSTER_WIDE) for d in DYNAMIC_ONLY
}


def broker_definition(name: str) -> ConfigDef | None:
    """The definition governing ``name``: its own, or for a listener-prefixed key its base
    config's (so ``listener.name.in.ssl.keystore.password`` is a PASSWORD)."""
    definition = BROKER_CONFIGS.get(name) or DYNAMIC_ONLY_CONFIGS.get(name)
    if definition is not None:
        return definition
    base = listener_base_name(name)
    return BROKER_CONFIGS.get(base) if base is not None else None
