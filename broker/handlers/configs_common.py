"""Shared by the config apis: resource types and turning described entries into responses."""

from __future__ import annotations

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
RESOURCE_BROKER_LOGGER = 8

# IncrementalAlterConfigs operations.
OP_SET = 0
OP_DELETE = 1
OP_APPEND = 2
OP_SUBTRACT = 3
