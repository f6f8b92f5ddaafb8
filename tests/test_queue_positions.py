"""Queue positions that stay true: the place a job is told is where the backend will really take it
(model affinity included), and its status message follows the queue down, throttled."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.backends.a1111 import A1111Backend
from adapters.console.outbound import ConsoleOutbound
from bot.app import App, build_app
from bot.models import Job
from bot.positions import worth_showing
from bot.replies import Reply
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.conftest import invocation, make_settings

pytestmark = pytest.mark.backends


class WatchedConsole(ConsoleOutbound):
    """The real console adapter, noting which job each status line it prints belongs to."""

    def __init__(self, interval: float) -> None:
        super().__init__(stream=io.StringIO(), interval=interval)
        self.lines: list[tuple[str, str]] = []

    async def update_status(self, job: Job, reply: Reply) -> None:
        await super().update_status(job, reply)
        self.lines.append((job.id, self.stream.getvalue().splitlines()[-1]))

    def positions(self, job_id: str) -> list[int]:
        found = (re.search(r"Queued #(\d+)", line) for jid, line in self.lines if jid == job_id)
        return [int(match.group(1)) for match in found if match]


Rig = Callable[[float], Awaitable[tuple[App, WatchedConsole, A1111Simulator]]]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made: list[tuple[App, A1111Simulator]] = []

    async def factory(interval: float) -> tuple[App, WatchedConsole, A1111Simulator]:
        sim = A1111Simulator(flavour="forge", seconds_per_step=0.02, model_load_seconds=0.01)
        url = await sim.start()
        settings = make_settings(tmp_path / "data", backends={"gpu": {"kind": "forge", "url": url}})
        console = WatchedConsole(interval)
        backend = A1111Backend("gpu", url, kind="forge", poll_interval_seconds=0.05)
        app = await build_app(settings, [console], backends=[backend])
        app.engine.positions.interval = 0.0  # re-place at every change; the console's interval throttles edits
        await app.start()
        made.append((app, sim))
        return app, console, sim

    yield factory
    for app, sim in made:
        await app.stop()
        await sim.stop()


async def line_up(app: App, sim: A1111Simulator) -> tuple[Reply, Reply, Reply]:
    """SDXL running; two SDXL jobs (u3, u4) queued, then an SD 1.5 job (u2) that fair order puts ahead of them."""
    first = await dispatch_text(app.services, invocation(user="u1"), "/imagine a long one --preset sdxl --steps 40")
    assert first is not None and first.job_id
    async with asyncio.timeout(10):
        await sim.running.wait()
    replies: list[Reply] = []
    for user, preset in [("u3", "sdxl"), ("u4", "sdxl"), ("u2", "sd15")]:
        reply = await dispatch_text(app.services, invocation(user=user), f"/imagine x --preset {preset}")
        assert reply is not None and reply.job_id, reply
        replies.append(reply)
    c, d, b = replies
    assert [job.id for _, job in app.engine.queued_jobs()] == [c.job_id, d.job_id, b.job_id]
    assert app.engine.scheduler.position(b.job_id or "") == 1  # first in fair order
    async with asyncio.timeout(30):
        for reply in replies:
            assert reply.job_id
            await app.engine.finished_event(reply.job_id).wait()
    return b, c, d


def told(reply: Reply) -> int:
    match = re.search(r"#(\d+)", reply.text)
    assert match, reply.text
    return int(match.group(1))


async def test_a_job_affinity_will_pass_over_is_told_its_real_place(rig: Rig) -> None:
    app, _, sim = await rig(0.0)
    b, c, d = await line_up(app, sim)
    assert (told(b), told(c), told(d)) == (3, 1, 2)  # first in fair order, but the SDXL jobs go first
    ran = [request.json["prompt"] for request in sim.requests if request.path.endswith("/txt2img")]
    assert len(ran) == 4
    assert sim.model_switches == 2  # SD 1.5 -> SDXL for the first job, SDXL -> SD 1.5 for b, which ran last
    started = {}
    for reply in (b, c, d):
        job = await app.services.store.get(reply.job_id or "")
        assert job is not None and job.started_at is not None
        started[job.id] = job.started_at
    assert sorted(started, key=started.__getitem__) == [c.job_id, d.job_id, b.job_id]


async def test_the_shown_position_goes_down_as_others_start(rig: Rig) -> None:
    app, console, sim = await rig(0.0)
    b, _, d = await line_up(app, sim)
    assert b.job_id and d.job_id
    assert console.positions(b.job_id) == [2, 1]
    assert console.positions(d.job_id) == [1]


async def test_position_edits_are_throttled_like_progress(rig: Rig) -> None:
    app, console, sim = await rig(3600.0)  # the console allows one edit an hour per job
    b, _, _ = await line_up(app, sim)
    assert b.job_id
    assert console.positions(b.job_id) == [2]  # moved 3 -> 2 -> 1: the first move shown at once, the next held
    assert app.engine.positions.refreshes >= 2


def test_far_back_only_a_tenth_or_more_is_worth_an_edit() -> None:
    assert worth_showing((3, 30.0), (2, 20.0))  # near the front: every move
    assert not worth_showing((3, 30.0), (3, 35.0))  # same place, about the same wait
    assert worth_showing((3, 30.0), (3, 90.0))  # same place, the wait tripled
    assert not worth_showing((200, 900.0), (195, 880.0))  # far back: 5 of 200 is not worth a message
    assert worth_showing((200, 900.0), (180, 800.0))
    assert worth_showing((5, 10.0), (None, None))  # its server was paused
