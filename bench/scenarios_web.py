"""Scenario: the web gallery's first, filtered and deep (keyset) pages at 100,000 finished jobs, timed in the server."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bench.harness import NullOutbound, bot, percentile
from bench.scenarios_load import ParkedBackend
from bot.models import Destination


def _rows(count: int) -> list[tuple[Any, ...]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        server = f"s{n % 50}"
        user = f"u{n % 400}"
        destination = Destination(platform="console", server_id=server, channel_id="c", user_id=user)
        request = {"preset": "sdxl", "user_prompt": f"prompt {n} {'fox' if n % 97 == 0 else 'cat'}", "count": 1}
        created = (start + timedelta(seconds=n)).isoformat()
        rows.append(
            (
                f"j{n:07d}",
                "console",
                server,
                "c",
                user,
                destination.model_dump_json(),
                json.dumps(request),
                "sdxl",
                "succeeded",
                1.0,
                created,
                created,
                created,
            )
        )
    return rows


async def _fill(app: Any, count: int) -> None:
    async with app.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO jobs (id, platform, server_id, channel_id, user_id, destination, request, preset, state, "
            "cost, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _rows(count),
        )
        await conn.executemany(
            "INSERT INTO images (id, job_id, kind, idx, path, sha256, width, height, seed, created_at) "
            "VALUES (?, ?, 'result', 0, '/nonexistent', '', 64, 64, 1, '')",
            [(f"i{n:07d}", f"j{n:07d}") for n in range(count)],
        )
        await conn.execute("ANALYZE")


async def gallery(jobs: int, requests: int = 60) -> dict[str, Any]:
    """p95 of the server's time for gallery pages (SQL + template), as a member of 3 chats and as an admin."""
    timings: list[float] = []

    @web.middleware
    async def timed(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            if request.path == "/gallery":
                timings.append((time.perf_counter() - started) * 1000)

    async with bot(
        [ParkedBackend()],
        NullOutbound(),
        metrics={"port": 0},
        web={"enabled": True},
        access={"bot_admins": ["console:root"]},
    ) as app:
        app.ops.extra_routes.append(lambda application: application.middlewares.append(timed))
        await app.ops.stop()
        await app.ops.start()  # again, with the timing middleware
        await _fill(app, jobs)
        cookies = {"member": site_session(app, "u1"), "admin": site_session(app, "root")}
        async with aiohttp.ClientSession(base_url=app.ops.url) as client:
            cursor = None
            for n in range(requests):
                who = "admin" if n % 2 else "member"
                params = [{}, {"q": "fox"}, {"server": "console:s1"}, {"after": cursor} if cursor else {}][n // 2 % 4]
                async with client.get("/gallery", params=params, cookies={"ib_session": cookies[who]}) as response:
                    assert response.status == 200, response.status
                    text = await response.text()
                if 'rel="next"' in text:
                    cursor = text.split("after=")[1].split('"')[0].replace("%7C", "|")
    return {
        "gallery_jobs": jobs,
        "gallery_p95_ms": round(percentile(timings, 0.95), 1),
        "gallery_p50_ms": round(percentile(timings, 0.5), 1),
    }


def site_session(app: Any, user: str) -> str:
    """A signed session cookie, as /gallery/login would set it."""
    from adapters.web.auth import Session, Signer, load_key
    from bot.secret_source import SecretSource

    signer = Signer(load_key(SecretSource(), app.settings.data_dir))
    session = Session("console", user, user, "bench", time.time() + 3600)
    return signer.sign("session", session.payload())
