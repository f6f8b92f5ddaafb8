"""Private results in the console (a terminal is its user's own private chat: `--private` changes nothing there but
is kept on the job) and in the web gallery (a private job is its owner's and the bot admins', never in the chat's
shared gallery, live queue or previews), through the console adapter and the web adapter over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp

from tests.fakes import FakeBackend
from tests.private_support import PreviewBackend
from tests.web_support import Chat, gallery_app


@asynccontextmanager
async def signed_in(chat: Chat, user: str) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """A browser without JavaScript: the sign-in link's button is a form POST; the session is a cookie."""
    link = await chat.link(user)
    base = link.split("/gallery/", 1)[0]
    token = parse_qs(urlparse(link).query)["token"][0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/gallery/login", data={"token": token}) as response:
            assert response.status == 200 and response.url.path == "/gallery", response.status
        yield http, base


async def page(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, (await response.read()).decode(errors="replace")


async def test_console_private_flag_is_kept_and_changes_nothing_in_a_terminal(tmp_path: Path) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend()) as app:
        chat = Chat(app)
        job_id = await chat.imagine("ann", "a quiet lighthouse --private")
        job = await app.services.store.get(job_id)  # type: ignore[union-attr]
        assert job is not None and job.destination.private
        shown = chat.stream.getvalue()
        assert "a quiet lighthouse" in shown and "privately" not in shown  # the result, in the terminal
        refused = await chat.say("ann", "/imagine a lighthouse --private=maybe")
        assert "--private is on or off" in refused.text and refused.job_id is None
        assert "is private" in (await chat.say("bob", f"/show {job_id}")).text  # bob shares ann's console chat
        assert (await chat.say("root", f"/show {job_id}")).images  # a bot admin, in their own terminal
        assert (await chat.say("ann", f"/show {job_id}")).images


async def test_the_gallery_shows_a_private_job_only_to_its_owner_and_the_admins(tmp_path: Path) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend()) as app:
        chat = Chat(app)
        secret = await chat.imagine("ann", "a secret lighthouse --private")
        await chat.imagine("ann", "a public lighthouse")
        images = await app.services.store.images(secret)  # type: ignore[union-attr]
        async with signed_in(chat, "bob") as (http, base):  # bob shares ann's chat
            status, html = await page(http, f"{base}/gallery")
            assert status == 200 and "a public lighthouse" in html and "secret lighthouse" not in html
            assert (await page(http, f"{base}/gallery/job/{secret}"))[0] == 404
            assert (await page(http, f"{base}/gallery/image/{images[0].id}"))[0] == 404
        async with signed_in(chat, "ann") as (http, base):
            status, html = await page(http, f"{base}/gallery")
            assert "a secret lighthouse" in html and "a public lighthouse" in html
            assert (await page(http, f"{base}/gallery/job/{secret}"))[0] == 200
        async with signed_in(chat, "root") as (http, base):  # a bot admin
            assert "a secret lighthouse" in (await page(http, f"{base}/gallery"))[1]


async def test_the_live_queue_keeps_a_private_job_and_its_preview_to_its_owner(tmp_path: Path) -> None:
    backend = PreviewBackend(hold=True)
    async with gallery_app(tmp_path / "data", backend) as app:
        chat = Chat(app)
        secret = await chat.imagine("ann", "a secret lighthouse --private", wait=False)
        async with asyncio.timeout(10):
            await backend.started.wait()
        async with signed_in(chat, "bob") as (http, base):
            assert "secret lighthouse" not in (await page(http, f"{base}/gallery/queue"))[1]
            assert (await page(http, f"{base}/gallery/preview/{secret}"))[0] == 404
        async with signed_in(chat, "ann") as (http, base):
            assert "a secret lighthouse" in (await page(http, f"{base}/gallery/queue"))[1]
            assert (await page(http, f"{base}/gallery/preview/{secret}"))[0] == 200
        backend.release.set()
        async with asyncio.timeout(10):
            await app.engine.finished_event(secret).wait()
