"""A job that takes its backend down each time it runs (a CUDA fault, the OOM killer: the WebUI dies mid-generation
and its supervisor restarts it) is not retried forever: each such try counts as an attempt, and at `max_attempts`
the job fails, refunded, saying why. (A connection dropped once still gets the job run again: see the
"connection dropped mid-job" case in test_reliability_backend_faults.py.) Real PTB client against the Telegram
simulator, the real A1111 client against the A1111 simulator; both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.backends.a1111 import A1111Backend
from bot.models import JobState, utcnow
from simulators.a1111 import A1111Simulator
from tests.test_telegram_support import PRIVATE, Bench, bench  # noqa: F401

pytestmark = pytest.mark.telegram

CAP = 2


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def webui() -> AsyncIterator[A1111Simulator]:
    sim = A1111Simulator(seconds_per_step=0.001, model_load_seconds=0.0)
    await sim.start()
    yield sim
    await sim.stop()


def texts(stand: Bench) -> list[str]:
    return [message.text or message.caption or "" for message in stand.sim.visible(PRIVATE)]


async def test_a_job_that_crashes_its_backend_each_time_fails_after_the_cap_refunded(
    bench: Bench,  # noqa: F811
    webui: A1111Simulator,
    storage: dict[str, Any],
) -> None:
    webui.crash_on("poison")
    bench.backend = A1111Backend("gpu", webui.url)  # type: ignore[assignment]
    bench.overrides.update(storage, limits={"retry_backoff_seconds": 0, "max_attempts": CAP})
    await bench.open()
    assert bench.app is not None

    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a poison apple")
    job_id = await bench.job_from(PRIVATE, sent.message_id)
    await bench.finished(job_id, within=30)
    job = await bench.app.services.store.get(job_id)
    assert job is not None and job.state is JobState.FAILED, job
    assert webui.crashes == CAP, "tried exactly max_attempts times"
    await bench.sim.wait_for(lambda: any("went away while running this job" in text for text in texts(bench)))
    assert await bench.app.services.store.usage("telegram", str(PRIVATE), str(PRIVATE), utcnow().date()) == (
        0.0,
        0.0,
    ), "refunded"

    # The backend is back and healthy: the next job runs on it.
    after = await bench.imagine(PRIVATE, PRIVATE, "/imagine a red apple")
    done = await bench.app.services.store.get(after)
    assert done is not None and done.state is JobState.SUCCEEDED and done.attempts == 1
