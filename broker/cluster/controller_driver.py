"""The active controller's driver: ZooKeeper watches and broker answers in, one event at a time."""

from __future__ import annotations


class ControllerDriver:
    """Runs :class:`~broker.cluster.controller.Controller` while this broker is the controller."""

    def __init__(self) -> None:
        self.active = False
