"""Handing a result from an owner thread back to the asyncio loop that waits for it.

Each blocking device (scanner, SQLite writer, MQTT client) has one owner thread; the loop
that asked for the work awaits a future. The owner thread settles that future through
``loop.call_soon_threadsafe(settle, future, result, error)``: the settling runs on the loop,
and a future the waiter already cancelled (a timeout, a shutdown) is left alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["settle"]


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Give ``future`` its ``result``, or ``error`` when there is one; a no-op once done."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
