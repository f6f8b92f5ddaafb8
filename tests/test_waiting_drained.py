"""A job that no backend will take for now says why at once: here the only backend that can run it was taken out
of rotation by `/admin drain` (kept across restarts, so users would otherwise wait in silence). Real PTB client
against the Telegram simulator; the bot admin drains and undrains through the same chat commands."""

from __future__ import annotations

import pytest

from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench  # noqa: F401

pytestmark = pytest.mark.telegram

ADMIN = 99  # the bench's admin_users
DRAINED = "taken out of rotation by an admin"


def texts(stand: Bench, chat_id: int) -> list[str]:
    return [message.text or message.caption or "" for message in stand.sim.visible(chat_id)]


async def test_a_job_for_a_drained_backend_says_why_it_waits_and_runs_once_undrained(bench: Bench) -> None:  # noqa: F811
    bench.overrides["access"] = {"bot_admins": [f"telegram:{ADMIN}"]}
    await bench.open()
    bench.sim.add_chat(ADMIN)
    await bench.sim.send_text(ADMIN, ADMIN, "/admin drain fake")
    await bench.sim.wait_for(lambda: any(text.startswith("Backend fake") for text in texts(bench, ADMIN)))

    sent = await bench.sim.send_text(GROUP, 5, "/imagine a lighthouse at dusk")
    job_id = await bench.job_from(GROUP, sent.message_id)
    await bench.sim.wait_for(lambda: any(DRAINED in text and job_id in text for text in texts(bench, GROUP)))
    assert bench.backend.calls == []

    await bench.sim.send_text(ADMIN, ADMIN, "/admin undrain fake")
    await bench.finished(job_id, within=15)
    assert bench.results(GROUP), texts(bench, GROUP)


async def test_a_job_is_not_told_it_waits_while_its_backend_takes_jobs(bench: Bench) -> None:  # noqa: F811
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine a lighthouse at dusk")
    assert not any(DRAINED in text or "Waiting:" in text for text in texts(bench, PRIVATE)), job_id
