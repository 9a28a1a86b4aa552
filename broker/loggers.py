"""Logger levels at run time: Kafka's BROKER_LOGGER resource (RuntimeLoggerManager and
Log4jController) over Python's :mod:`logging`.

IncrementalAlterConfigs SETs a logger's level or DELETEs it (back to inheriting its parent's);
DescribeConfigs lists ``root`` and every logger that exists with its effective level, as log4j's
names: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF, ALL. A logger must exist (Kafka: "Logger X does
not exist!"); ``kafka.request.logger`` always does (:mod:`broker.request_log`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from protocol.error_codes import ErrorCode

ROOT_LOGGER = "root"
TRACE = 5
ALL = 1
OFF = logging.CRITICAL + 10

#: log4j's level names and their Python levels.
LEVELS: dict[str, int] = {
    "ALL": ALL,
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": OFF,
}
VALID_LEVELS_TEXT = ", ".join(sorted(LEVELS))

OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3
_OP_NAMES = {OP_APPEND: "APPEND", OP_SUBTRACT: "SUBTRACT"}

log = logging.getLogger("kafka.server.ConfigAdminManager")


class LoggerChange(Protocol):
    name: str
    config_operation: int
    value: str | None


class LoggerError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def level_name(level: int) -> str:
    """log4j's name of a Python level (the nearest at or below it)."""
    best = "ALL"
    for name, value in LEVELS.items():
        if value <= level and value >= LEVELS[best]:
            best = name
    return best


def _existing(name: str) -> logging.Logger | None:
    if name == ROOT_LOGGER:
        return logging.getLogger()
    found = logging.Logger.manager.loggerDict.get(name)
    return found if isinstance(found, logging.Logger) else None


def loggers() -> dict[str, str]:
    """Every existing logger with its effective level (Log4jController.loggers)."""
    found = {ROOT_LOGGER: level_name(logging.getLogger().getEffectiveLevel())}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            found[name] = level_name(logger.getEffectiveLevel())
    return found


def check_node(node_id: int, resource_name: str) -> None:
    try:
        requested = int(resource_name)
    except ValueError:
        raise LoggerError(
            ErrorCode.INVALID_REQUEST, f"Node id must be an integer, but it is: {resource_name}"
        ) from None
    if requested != node_id:
        # Kafka's message prints its own id twice (RuntimeLoggerManager); kept for tools that match it.
        raise LoggerError(
            ErrorCode.INVALID_REQUEST, f"Unexpected node id. Expected {node_id}, but received {node_id}"
        )


def _validate(change: LoggerChange) -> None:
    name, op = change.name, change.config_operation
    if op in (OP_SET, OP_DELETE) and _existing(name) is None:
        raise LoggerError(ErrorCode.INVALID_CONFIG, f"Logger {name} does not exist!")
    if op == OP_SET:
        if change.value not in LEVELS:
            raise LoggerError(
                ErrorCode.INVALID_CONFIG,
                f"Cannot set the log level of {name} to {change.value} as it is not a supported log level. "
                f"Valid log levels are {VALID_LEVELS_TEXT}",
            )
    elif op == OP_DELETE:
        if name == ROOT_LOGGER:
            message = f"Removing the log level of the {ROOT_LOGGER} logger is not allowed"
            raise LoggerError(ErrorCode.INVALID_REQUEST, message)
    elif op in _OP_NAMES:
        message = f"{_OP_NAMES[op]} operation is not allowed for the BROKER_LOGGER resource"
        raise LoggerError(ErrorCode.INVALID_REQUEST, message)
    else:
        raise LoggerError(
            ErrorCode.INVALID_REQUEST,
            f"Unknown operation type {op} is not allowed for the BROKER_LOGGER resource",
        )


def alter_logger_levels(
    node_id: int, resource_name: str, changes: Iterable[LoggerChange], validate_only: bool
) -> tuple[int, str | None]:
    """(error code, message) of one BROKER_LOGGER resource of IncrementalAlterConfigs: every
    change is checked, then (unless ``validate_only``) applied."""
    changes = list(changes)
    try:
        names = [c.name for c in changes]
        if len(set(names)) != len(names):
            raise LoggerError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
        nulls = [c.name for c in changes if c.config_operation != OP_DELETE and c.value is None]
        if nulls:
            raise LoggerError(ErrorCode.INVALID_REQUEST, "Null value not supported for : " + ", ".join(nulls))
        check_node(node_id, resource_name)
        for change in changes:
            _validate(change)
    except LoggerError as exc:
        return exc.code, exc.message
    if not validate_only:
        for change in changes:
            logger = _existing(change.name)
            assert logger is not None
            if change.config_operation == OP_SET:
                assert change.value is not None
                logger.setLevel(LEVELS[change.value])
                log.warning("Updated the log level of %s to %s", change.name, change.value)
            else:
                logger.setLevel(logging.NOTSET)
                log.warning("Unset the log level of %s", change.name)
    return ErrorCode.NONE, None
