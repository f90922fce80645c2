"""Helpers shared by the rooms' tests."""

from __future__ import annotations

__all__ = ["wait_until"]

import asyncio
from collections.abc import Callable


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.005) -> None:
    """Poll ``predicate`` until it is true.

    Raises
    ------
    TimeoutError
        If it is not true within ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(interval)
