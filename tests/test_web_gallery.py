"""The web gallery in a real headless Chromium: sign in from a /gallery link typed in chat, browse, filter,
open a job, watch the live queue, admin pages, and what must be refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from bot.models import utcnow
from tests.fakes import FakeBackend
from tests.web_support import Chat, PreviewBackend, browser, gallery_app, needs_chromium, sign_in

pytestmark = needs_chromium
WAIT_MS = 10_000


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The gallery reads either store."""
    return str(request.param)


async def test_sign_in_browse_filter_and_open_a_job(tmp_path: Path, storage: dict[str, Any]) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **storage) as app, browser() as chromium:
        store = app.services.sign_in.store  # type: ignore[attr-defined]
        assert type(store).__name__ == ("PgWebStore" if storage else "SqliteWebStore")
        chat = Chat(app)
        fox = await chat.imagine("alice", "a red fox in snow --neg blurry --seed 42")
        await chat.imagine("alice", "a blue whale")
        secret = await chat.imagine("bob", "a secret cat", server="bobs-private")
        link = await chat.link("alice")
        page = await (await chromium.new_context(viewport={"width": 1100, "height": 800})).new_page()
        unfurled = await page.context.request.get(link)  # a chat app's link preview fetches it first
        assert unfurled.status == 200 and "ib_session" not in unfurled.headers.get("set-cookie", "")
        await sign_in(page, link)  # still unused: only the button's POST uses it
        assert page.url.endswith("/gallery")  # the token left the address bar
        (cookie,) = await page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
        tiles = page.locator("li.tile")
        await tiles.first.wait_for(timeout=WAIT_MS)
        assert await tiles.count() == 2
        assert "secret cat" not in await page.content()  # another server's job is not listed

        await page.fill("input[name=q]", "fox")
        await page.click("form.filters button")
        await page.wait_for_url("**q=fox**", timeout=WAIT_MS)
        assert await tiles.count() == 1
        await tiles.first.locator("a").click()
        await page.wait_for_url(f"**/gallery/job/{fox}", timeout=WAIT_MS)
        assert await page.locator("dd.prompt").inner_text() == "a red fox in snow"
        assert await page.locator("dd.negative").inner_text() == "blurry"
        assert await page.locator("span.seed").first.inner_text() == "42"
        image = page.locator(".job img").first
        assert await image.evaluate("img => img.complete && img.naturalWidth > 0")

        response = await page.goto(f"{app.ops.url}/gallery/job/{secret}")  # type: ignore[union-attr]
        assert response is not None and response.status == 404
        again = await page.context.browser.new_context()  # type: ignore[union-attr]
        reused = await sign_in(await again.new_page(), link)
        assert reused is not None and reused.status == 403  # the link was used once already


async def test_expired_link_and_no_session_are_refused(tmp_path: Path, storage: dict[str, Any]) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **storage) as app, browser() as chromium:
        chat = Chat(app)
        link = await chat.link("alice")
        links = app.services.sign_in
        assert links is not None
        links.clock = lambda: utcnow() + timedelta(minutes=11)  # type: ignore[attr-defined]
        page = await chromium.new_page()
        response = await sign_in(page, link)
        assert response is not None and response.status == 403
        assert "expired" in await page.locator("#message").inner_text()
        response = await page.goto(f"{app.ops.url}/gallery")  # type: ignore[union-attr]
        assert response is not None and response.status == 401
        forged = link.split("token=")[0] + "token=abc.def"
        response = await page.goto(forged)
        assert response is not None and response.status == 403


async def test_live_queue_shows_positions_changing_and_the_preview(tmp_path: Path, storage: dict[str, Any]) -> None:
    backend = PreviewBackend(hold=True)
    async with gallery_app(tmp_path / "data", backend, **storage) as app, browser() as chromium:
        chat = Chat(app)
        running = await chat.imagine("alice", "the running one", wait=False)
        await backend.started.wait()
        first = await chat.imagine("alice", "first waiting", wait=False)
        second = await chat.imagine("alice", "second waiting", wait=False)
        page = await chromium.new_page()
        await sign_in(page, await chat.link("alice"))
        await page.goto(f"{app.ops.url}/gallery/queue")  # type: ignore[union-attr]
        second_position = page.locator(f"tr[data-job='{second}'] td.position")
        assert await second_position.inner_text() == "2"
        preview = page.locator(f"p[data-job='{running}'] + img.preview")
        await preview.wait_for(timeout=WAIT_MS)
        assert await preview.evaluate("img => img.complete && img.naturalWidth > 0")

        await chat.say("alice", f"/cancel {first}")  # no reload: the page hears it over server-sent events
        await expect(second_position).to_have_text("1", timeout=WAIT_MS)
        backend.release.set()


async def test_admin_pauses_a_server_and_a_non_admin_is_refused(tmp_path: Path, storage: dict[str, Any]) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **storage) as app, browser() as chromium:
        chat = Chat(app)
        await chat.imagine("alice", "something to list")
        user = await chromium.new_page()
        await sign_in(user, await chat.link("alice"))
        response = await user.goto(f"{app.ops.url}/gallery/admin")  # type: ignore[union-attr]
        assert response is not None and response.status == 403
        refused = await user.request.post(f"{app.ops.url}/gallery/admin", form={"action": "pause"})  # type: ignore[union-attr]
        assert refused.status == 403
        assert not app.engine.scheduler.is_paused("console:local")

        admin = await (await chromium.new_context()).new_page()
        await sign_in(admin, await chat.link("root"))
        await admin.goto(f"{app.ops.url}/gallery/admin")  # type: ignore[union-attr]
        await admin.click("section[data-server='console:local'] button[value=pause]")
        await admin.locator("#message").wait_for(timeout=WAIT_MS)
        assert app.engine.scheduler.is_paused("console:local")
        assert (await app.services.accounts.server("console", "local")).paused
        forged = await admin.request.post(  # a form without the CSRF token changes nothing
            f"{app.ops.url}/gallery/admin",
            form={"action": "resume", "server": "console:local"},  # type: ignore[union-attr]
        )
        assert forged.status == 403
        assert app.engine.scheduler.is_paused("console:local")
        worker = app.engine.workers[0]  # drain is bot-wide: one form per backend, the same /admin use case
        await admin.click(f"form[data-backend='{worker.backend.name}'] button[value=drain]")
        await expect(admin.locator("#message")).to_contain_text("takes no", timeout=WAIT_MS)
        assert worker.drained
        await admin.click(f"form[data-backend='{worker.backend.name}'] button[value=undrain]")
        await expect(admin.locator("#message")).to_contain_text("takes jobs again", timeout=WAIT_MS)
        assert not worker.drained


async def test_admin_sets_quota_bans_and_presets_per_channel_through_admin(
    tmp_path: Path, storage: dict[str, Any]
) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **storage) as app, browser() as chromium:
        chat = Chat(app)
        await chat.imagine("alice", "something to list")
        admin = await chromium.new_page()
        await sign_in(admin, await chat.link("root"))
        await admin.goto(f"{app.ops.url}/gallery/admin")  # type: ignore[union-attr]
        server = admin.locator("section[data-server='console:local']")
        await server.locator("input[name=amount]").fill("1234")
        await server.locator("button[value=quota]").click()
        await expect(admin.locator("#message")).to_contain_text("1234", timeout=WAIT_MS)
        server = admin.locator("section[data-server='console:local']")
        await server.locator("input[name=user]").fill("mallory")
        await server.locator("button[value=ban]").click()
        await admin.locator("#message").wait_for(timeout=WAIT_MS)
        server = admin.locator("section[data-server='console:local']")
        await server.locator("select[name=preset]").select_option("sdxl")
        await server.locator("input[name=channel]").fill("terminal")
        await server.locator("button[value=deny]").click()
        await admin.locator("#message").wait_for(timeout=WAIT_MS)
        record = await app.services.accounts.server("console", "local")
        assert record.daily_limit == 1234 and "mallory" in record.banned
        assert "sdxl" not in record.channel_presets["terminal"]
        refused = await chat.say("mallory", "/imagine banned now")  # the chat side sees the same change
        assert refused.job_id is None
        await server.locator("input[name=amount]").fill("lots")  # bad input: the /admin error, nothing saved
        await server.locator("button[value=quota]").click()
        await expect(admin.locator("#message.error")).to_be_visible(timeout=WAIT_MS)
        assert (await app.services.accounts.server("console", "local")).daily_limit == 1234


async def test_browsing_works_without_javascript_and_on_a_phone(tmp_path: Path, storage: dict[str, Any]) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **storage) as app, browser() as chromium:
        chat = Chat(app)
        job = await chat.imagine("alice", "a small phone picture")
        context = await chromium.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
        page = await context.new_page()
        await sign_in(page, await chat.link("alice"))
        await page.locator("li.tile a").first.click()
        await page.wait_for_url(f"**/gallery/job/{job}", timeout=WAIT_MS)
        assert await page.locator("dd.prompt").inner_text() == "a small phone picture"
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the phone's screen


async def test_dashboard_shows_usage_and_backends(tmp_path: Path, storage: dict[str, Any]) -> None:
    async with gallery_app(tmp_path / "data", FakeBackend(), **storage) as app, browser() as chromium:
        chat = Chat(app)
        await chat.imagine("alice", "count me")
        page = await chromium.new_page()
        await sign_in(page, await chat.link("alice"))
        await page.goto(f"{app.ops.url}/gallery/dashboard?lang=zh")  # type: ignore[union-attr]
        assert await page.locator("svg.chart rect").count() == 30
        assert "console:local" in await page.content()
        assert "今日剩余额度" in await page.content()
        settings = app.services.settings.quota
        used, _ = await app.services.store.usage("console", "local", "alice", utcnow().date())
        assert used > 0
        row = await page.locator("table.quota tr", has_text="console:local").inner_text()
        assert f"{settings.user_daily - used:g}" in row and f"{settings.server_daily - used:g}" in row


def test_every_message_the_templates_use_is_in_both_catalogs() -> None:
    import re

    from bot.i18n import LANGUAGES, catalog

    folder = Path(__file__).resolve().parents[1] / "adapters" / "web"
    used = set()
    for path in [*folder.glob("templates/*.html"), *folder.glob("*.py")]:
        used |= set(re.findall(r"""(?:tr\(|message_key=|refuse\([^)]*?, )["']([a-z_]+)["']""", path.read_text()))
    assert {"link_refused", "admins_only", "prompt", "sign_out"} <= used
    for lang in LANGUAGES:
        assert {f"web.{key}" for key in used} <= set(catalog(lang))
