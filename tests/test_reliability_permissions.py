"""Permissions: nobody does what they may not, through dispatch and through the real Telegram adapter.

Each bypass attempt is counted; a bypass is an attempt that changed something or was not refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator

import pytest

from bot.app import App
from bot.models import JobState
from bot.replies import Reply, Tone
from commands.context import Invocation
from commands.dispatch import dispatch_button, dispatch_text
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend
from tests.test_telegram_support import GROUP, Bench, bench

pytestmark = pytest.mark.reliability
log = logging.getLogger(__name__)
__all__ = ["bench"]

FIGURES: Counter[str] = Counter()
SPICY = {"spicy": {"checkpoint": "v1-5-pruned-emaonly.safetensors", "nsfw": True, "steps": 4}}
ADMIN_ACTIONS = [
    "/admin pause",
    "/admin resume",
    "/admin ban victim",
    "/admin unban mallory",
    "/admin deny sd15",
    "/admin allow spicy",
    "/admin default spicy",
    "/admin quota server 100000",
    "/admin quota role everyone 100000",
    "/admin quota user mallory 100000",
    "/admin backends",
    "/admin language zh",
]


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    log.warning("permission bypass attempts=%d bypasses=%d", FIGURES["attempts"], FIGURES["bypasses"])


def refused(reply: Reply | None, *words: str) -> bool:
    """Count one attempt; it is a bypass unless it was refused with an error that says why."""
    FIGURES["attempts"] += 1
    ok = reply is not None and reply.tone is Tone.ERROR and all(word in reply.text for word in words)
    FIGURES["bypasses"] += int(not ok)
    return ok


async def job_rows(app: App) -> int:
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    return int(row[0]) if row else -1


async def state_of(app: App, job_id: str) -> JobState:
    job = await app.services.store.get(job_id)
    assert job is not None
    return job.state


MALLORY = invocation(user="mallory")


async def test_non_admin_cannot_use_admin(app_factory: AppFactory) -> None:
    app = await app_factory(presets=SPICY)
    for text in ADMIN_ACTIONS:
        assert refused(await dispatch_text(app.services, MALLORY, text), "Only server admins"), text
    server = await app.services.accounts.server("console", "s1")
    victim = await app.services.accounts.user("console", "victim")
    assert not server.paused and not server.channel_presets and server.daily_limit is None and not victim.banned


async def test_others_cannot_cancel_or_delete_a_job(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend)
    running = await dispatch_text(app.services, invocation(), "/imagine mine")
    queued = await dispatch_text(app.services, invocation(), "/imagine also mine")
    assert running and queued and running.job_id and queued.job_id
    async with asyncio.timeout(10):
        await backend.started.wait()
    for job_id in (running.job_id, queued.job_id):
        assert refused(await dispatch_text(app.services, MALLORY, f"/cancel {job_id}"), "Only the person")
        assert refused(await dispatch_button(app.services, MALLORY, f"cancel:{job_id}"), "Only the person")
    own_nothing = await dispatch_text(app.services, MALLORY, "/cancel")  # her latest job: she has none
    assert refused(own_nothing)
    # The same user id on another platform is another person.
    telegram_u1 = Invocation(destination=invocation().destination.model_copy(update={"platform": "telegram"}))
    assert refused(await dispatch_button(app.services, telegram_u1, f"cancel:{queued.job_id}"))
    assert await state_of(app, queued.job_id) is JobState.QUEUED
    assert await state_of(app, running.job_id) is JobState.RUNNING and backend.interrupted == []
    backend.release.set()
    async with asyncio.timeout(10):
        await app.engine.finished_event(running.job_id).wait()
    for button in (f"delete:{running.job_id}", f"delete:{running.job_id}:0"):
        assert refused(await dispatch_button(app.services, MALLORY, button), "Only the person")
    assert len(await app.services.store.images(running.job_id)) == 1, "the images are still there"


async def test_admin_of_another_server_cannot_touch_this_servers_jobs(app_factory: AppFactory) -> None:
    """A chat admin is an admin of that chat only (anyone can create a group and be its admin)."""
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend)
    first = await dispatch_text(app.services, invocation(), "/imagine mine")
    queued = await dispatch_text(app.services, invocation(), "/imagine queued")
    assert first and queued and queued.job_id
    own_group_admin = invocation(user="mallory", server="mallorys-group", channel="m1", is_admin=True)
    cancel = await dispatch_text(app.services, own_group_admin, f"/cancel {queued.job_id}")
    ban = await dispatch_text(app.services, own_group_admin, "/admin ban u1")
    banned = (await app.services.accounts.user("console", "u1")).banned
    cancelled = await state_of(app, queued.job_id) is JobState.CANCELLED
    backend.release.set()
    assert refused(cancel) and not cancelled, "an admin of another server cannot cancel this server's job"
    assert ban is not None and not banned, "a server admin's ban stays on that server"
    assert await dispatch_text(app.services, invocation(), "/queue") is not None
    still = await dispatch_text(app.services, invocation(), "/imagine still allowed here")
    assert still is not None and still.job_id, "u1 is not banned in their own server"


async def test_nsfw_preset_needs_an_nsfw_channel_also_through_buttons(app_factory: AppFactory) -> None:
    app = await app_factory(presets=SPICY)
    assert refused(await dispatch_text(app.services, invocation(), "/imagine x --preset spicy"), "age-restricted")
    assert await job_rows(app) == 0
    made = await dispatch_text(app.services, invocation(channel_nsfw=True), "/imagine x --preset spicy")
    assert made is not None and made.job_id
    async with asyncio.timeout(10):
        await app.engine.finished_event(made.job_id).wait()
    for action in ("reroll", "vary", "upscale"):
        suffix = "" if action == "reroll" else ":0"
        pressed = await dispatch_button(app.services, invocation(), f"{action}:{made.job_id}{suffix}")
        assert refused(pressed, "age-restricted"), action
    assert await job_rows(app) == 1


async def test_banned_user_gets_nothing(app_factory: AppFactory) -> None:
    app = await app_factory()
    made = await dispatch_text(app.services, invocation(), "/imagine before the ban")
    assert made is not None and made.job_id
    async with asyncio.timeout(10):
        await app.engine.finished_event(made.job_id).wait()
    await dispatch_text(app.services, invocation(is_admin=True), "/admin ban u1")
    for text in ("/imagine cat", "/imagine cat --preset sd15 --n 1"):
        assert refused(await dispatch_text(app.services, invocation(), text), "banned")
    for action in ("reroll", "vary", "upscale"):
        suffix = "" if action == "reroll" else ":0"
        assert refused(await dispatch_button(app.services, invocation(), f"{action}:{made.job_id}{suffix}"), "banned")
    assert await job_rows(app) == 1, "no job row for anything the banned user asked"


async def test_per_channel_preset_allowlist_holds(app_factory: AppFactory) -> None:
    app = await app_factory()
    made = await dispatch_text(app.services, invocation(), "/imagine x --preset sd15")
    assert made is not None and made.job_id
    async with asyncio.timeout(10):
        await app.engine.finished_event(made.job_id).wait()
    await dispatch_text(app.services, invocation(is_admin=True), "/admin deny sd15")
    assert refused(await dispatch_text(app.services, invocation(), "/imagine x --preset sd15"), "not allowed")
    assert refused(await dispatch_button(app.services, invocation(), f"reroll:{made.job_id}"), "not allowed")
    assert refused(await dispatch_button(app.services, invocation(), f"vary:{made.job_id}:0"), "not allowed")
    other = await dispatch_text(app.services, invocation(channel="c2"), "/imagine x --preset sd15")
    assert other is not None and other.tone is not Tone.ERROR, "the allowlist is per channel"
    assert await job_rows(app) == 2


# ---- the same through the real Telegram adapter ------------------------------------------------

OWNER, MALLORY_TG, ADMIN_TG = 5, 7, 99  # 99 is in admin_users


def answer_for(bench: Bench, query_id: str) -> str:
    return str(bench.sim.callback_answers.get(query_id, {}).get("text", ""))


async def test_telegram_permissions(bench: Bench) -> None:
    bench.backend.hold = True
    bench.overrides = {"presets": SPICY}
    await bench.open()
    sim = bench.sim
    await sim.send_text(GROUP, OWNER, "/imagine the owner's job")
    running = await bench.job_from(GROUP)
    before = max(m.message_id for m in sim.visible(GROUP))
    await sim.send_text(GROUP, OWNER, "/imagine the owner's second job")
    queued = await bench.job_from(GROUP, after=before)
    status = next(m for m in sim.visible(GROUP) if queued in (m.text or ""))
    assert bench.app is not None

    async def said(text: str, *words: str) -> bool:
        before = max((m.message_id for m in sim.visible(GROUP)), default=0)
        await sim.send_text(GROUP, MALLORY_TG, text)
        await sim.wait_for(lambda: any(m.message_id > before for m in sim.visible(GROUP)))
        reply = next(m for m in sim.visible(GROUP) if m.message_id > before)
        FIGURES["attempts"] += 1
        ok = all(word in (reply.text or "") for word in words)
        FIGURES["bypasses"] += int(not ok)
        return ok

    assert await said("/admin ban 5", "Only server admins")
    assert await said("/admin deny sd15", "Only server admins")
    assert await said(f"/cancel {queued}", "Only the person")
    assert await said("/imagine x --preset spicy", "age-restricted")
    query = await sim.press(GROUP, MALLORY_TG, status.message_id, f"cancel:{queued}")
    await sim.wait_for(lambda: query in sim.callback_answers)
    FIGURES["attempts"] += 1
    FIGURES["bypasses"] += int("Only the person" not in answer_for(bench, query))
    assert "Only the person" in answer_for(bench, query)
    assert await state_of(bench.app, queued) is JobState.QUEUED

    bench.backend.release.set()
    await bench.finished(running)
    await bench.finished(queued)
    result = next(m for m in sim.visible(GROUP) if any(d.startswith(f"delete:{running}") for d in m.buttons))
    query = await sim.press(GROUP, MALLORY_TG, result.message_id, f"delete:{running}")
    await sim.wait_for(lambda: query in sim.callback_answers)
    FIGURES["attempts"] += 1
    FIGURES["bypasses"] += int("Only the person" not in answer_for(bench, query))
    assert "Only the person" in answer_for(bench, query) and not result.deleted

    # The bot's admin bans Mallory: afterwards she gets nothing, and no job row is written.
    await sim.send_text(GROUP, ADMIN_TG, f"/admin ban {MALLORY_TG}")
    await sim.wait_for(lambda: any("is banned" in (m.text or "") for m in sim.visible(GROUP)))
    rows = await job_rows(bench.app)
    assert await said("/imagine let me in", "banned")
    query = await sim.press(GROUP, MALLORY_TG, result.message_id, f"reroll:{running}")
    await sim.wait_for(lambda: query in sim.callback_answers)
    FIGURES["attempts"] += 1
    FIGURES["bypasses"] += int("banned" not in answer_for(bench, query))
    assert "banned" in answer_for(bench, query)
    assert await job_rows(bench.app) == rows
