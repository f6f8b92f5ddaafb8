"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def stop_tasks(tasks: Iterable[asyncio.Task[object] | asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait for them to end.

    `asyncio.wait` never raises the tasks' CancelledError into the caller, so a caller that is
    itself being cancelled still sees its own cancellation (a bare `suppress(CancelledError)`
    around `await task` would swallow it and leave the caller running).
    """
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def uncancelled(work: Awaitable[T]) -> T:
    """Await `work`; if the caller is cancelled meanwhile, let `work` finish first, then stop.

    For a request that may already be on the wire: what it did gets recorded before the caller goes away.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await asyncio.wait([task])
        raise
