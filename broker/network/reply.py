"""A response a handler gives later, delivered in the call that completes it.

An asyncio future runs its done callbacks in a later turn of the loop, and a response the
connection then completes is written a turn after that (responses completed in one turn share
a write). A parked fetch (the handler's ``_DelayedFetch``) answers with a :class:`Reply`: the
connection registers :meth:`Reply.when_answered`, and :meth:`Reply.set_result` fills the
request's slot and writes it at once. On the replication path every turn of the loop is the
rest of the loop's work (a leader's follower answer waited two extra turns for the followers'
next fetch). Anything else (awaiting it, cancellation, done callbacks) behaves as the asyncio
future it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Reply(asyncio.Future):  # type: ignore[type-arg]
    _answered: Callable[[Any], None] | None = None

    def when_answered(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` with the result inside :meth:`set_result` (at most once)."""
        self._answered = callback

    def set_result(self, result: Any) -> None:
        super().set_result(result)
        callback = self._answered
        if callback is not None:
            self._answered = None
            callback(result)
