"""The Discord simulator with faults a test switches on: slow answers (a request takes effect at once, its answer
is held: a busy API, a slow network) and uploads the API refuses (status, JSON error code, message)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from simulators.discord import DiscordSimulator


class SlowDiscordSimulator(DiscordSimulator):
    """`DiscordSimulator` whose answers to chosen routes arrive late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slow: dict[str, float] = {}  # path fragment -> seconds
        self.refuse_uploads: tuple[int, int, str] | None = None  # every request carrying files gets this error
        self.refused = 0

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_uploads is not None and request.content_type.startswith("multipart/"):
            status, code, message = self.refuse_uploads
            self.refused += 1
            body = json.dumps({"code": code, "message": message}).encode()
            return web.Response(body=body, status=status, content_type="application/json")  # no charset, as Discord
        response = await super()._rest(request)
        for fragment, seconds in self.slow.items():
            if fragment in request.path:
                await asyncio.sleep(seconds)
        return response
