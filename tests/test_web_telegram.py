"""/gallery through the real python-telegram-bot against the Bot API simulator, then the link in Chromium."""

from __future__ import annotations

import re

import pytest

from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench
from tests.web_support import browser, needs_chromium, sign_in

pytestmark = [pytest.mark.telegram, needs_chromium]
__all__ = ["bench"]
OTHER_GROUP = -1002
LINK = re.compile(r"http://127\.0\.0\.1:\d+/gallery/login\?token=\S+")


async def test_telegram_link_only_in_the_private_chat_and_only_own_chats_visible(bench: Bench) -> None:
    bench.overrides = {"metrics": {"port": 0}, "web": {"enabled": True}}
    bench.sim.add_chat(OTHER_GROUP, title="strangers")
    await bench.open()
    await bench.imagine(GROUP, PRIVATE, "/imagine@test_bot our group lighthouse")
    await bench.imagine(GROUP, 5, "/imagine@test_bot a friend's fox")
    await bench.imagine(OTHER_GROUP, 7, "/imagine@test_bot a stranger's secret")

    await bench.sim.send_text(GROUP, PRIVATE, "/gallery@test_bot")
    await bench.sim.wait_for(lambda: any("private chat" in (m.text or "") for m in bench.sim.visible(GROUP)))
    assert not any("token=" in (m.text or "") for m in bench.sim.visible(GROUP))  # no link for the whole group

    await bench.sim.send_text(PRIVATE, PRIVATE, "/gallery")
    await bench.sim.wait_for(lambda: any(LINK.search(m.text or "") for m in bench.sim.visible(PRIVATE)))
    link = next(LINK.search(m.text or "") for m in bench.sim.visible(PRIVATE) if LINK.search(m.text or ""))
    assert link is not None
    async with browser() as chromium:
        page = await chromium.new_page()
        await sign_in(page, link.group(0))
        await page.locator("li.tile").first.wait_for(timeout=10_000)
        text = await page.locator("ul.grid").inner_text()
        assert "our group lighthouse" in text and "a friend's fox" in text  # the group they made a job in
        assert "stranger" not in text  # a chat they are not in
