"""One object per event loop (an async client belongs to the loop that made it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One object per event loop (an async client belongs to the loop that made it), built by
    ``build`` on first use in a loop; those of loops closed since are dropped then."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._items: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        item = self._items.get(loop)
        if item is None:
            for stale in [other for other in self._items if other.is_closed()]:
                del self._items[stale]
            item = self._items[loop] = self._build()
        return item

    def items(self) -> list[T]:
        return list(self._items.values())

    def live(self) -> list[T]:
        return [item for loop, item in list(self._items.items()) if not loop.is_closed()]

    def close(self, aclose: Callable[[T], Coroutine[Any, Any, None]]) -> None:
        for loop, item in list(self._items.items()):
            # At interpreter exit the server's loop has stopped but is still open.
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(aclose(item))
        self._items.clear()
