"""The latest progress preview of each running job, as the engine's notifier publishes it."""

from __future__ import annotations

import asyncio
import contextlib

from bot.models import Job
from bot.replies import Reply


class PreviewBoard:
    """Keeps the newest preview image per running job and wakes the live pages when anything changes."""

    def __init__(self) -> None:
        self.previews: dict[str, bytes] = {}
        self.version = 0
        self._changed = asyncio.Event()

    def observe(self, job: Job, reply: Reply) -> None:
        """The notifier's hook: called with every status it publishes (never waits)."""
        data = next((image.data for image in reply.images if image.data), None)
        if data is not None:
            self.previews[job.id] = data
        self.poke()

    def poke(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, version: int, seconds: float) -> int:
        """Wait until something changed after `version` (or `seconds` passed); returns the current version."""
        if version == self.version:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._changed.wait()
        return self.version

    def forget_finished(self, running: set[str]) -> None:
        for job_id in set(self.previews) - running:
            del self.previews[job_id]
