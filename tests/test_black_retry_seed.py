"""The new seed of a black-image retry is the job's seed from then on, on both stores, through the real
python-telegram-bot: the retry runs with it (a shared queue reads the job back from the database), the stored
job says it (what Info, Vary and Upscale read back), and a restart before the retry finishes runs it again
with that seed, not with the one that came out black."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.models import GenerationRequest, GenerationResult, Job, JobState
from bot.ports import ProgressCallback
from tests.fakes import FakeBackend
from tests.test_telegram_support import PRIVATE, Bench, bench

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


@dataclass
class FilteredBackend(FakeBackend):
    """A WebUI with an NSFW filter: the image of a flagged seed is blacked out, every time that seed is run. The
    first seed it is asked for is flagged; `hold_retry` holds every later run until released."""

    flagged: set[int] = field(default_factory=set)
    hold_retry: bool = False

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if not self.flagged:
            self.flagged.add(request.seed)
        self.black = request.seed in self.flagged
        self.hold = self.hold_retry and not self.black
        return await super().generate(job_id, request, source, on_progress)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def stored(bench: Bench, job_id: str) -> Job:
    assert bench.app is not None
    job = await bench.app.services.store.get(job_id)
    assert job is not None
    return job


def seeds(backend: FakeBackend) -> list[int]:
    return [request.seed for _, request in backend.calls]


async def test_the_retry_seed_is_the_jobs_seed(storage: dict[str, Any], bench: Bench) -> None:
    bench.backend = backend = FilteredBackend()
    bench.overrides = storage
    await bench.open()
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a fox in the snow --seed 1234")
    job_id = await bench.job_from(PRIVATE, sent.message_id)
    await bench.finished(job_id)
    assert seeds(backend)[0] == 1234 and len(seeds(backend)) == 2, seeds(backend)
    retry_seed = seeds(backend)[1]
    assert retry_seed != 1234  # the same seed would come out black again
    job = await stored(bench, job_id)
    assert job.state is JobState.SUCCEEDED and job.request.seed == retry_seed, job.request.seed
    await bench.sim.wait_for(lambda: any(f"seed {retry_seed}" in (m.caption or "") for m in bench.sim.visible(PRIVATE)))


async def test_a_restart_runs_the_retry_again_with_its_new_seed(storage: dict[str, Any], bench: Bench) -> None:
    bench.backend = backend = FilteredBackend(hold_retry=True)
    bench.overrides = storage
    await bench.open()
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a fox in the snow --seed 1234")
    job_id = await bench.job_from(PRIVATE, sent.message_id)
    await bench.sim.wait_for(lambda: len(backend.calls) == 2)  # black once, then held on a new seed
    retry_seed = seeds(backend)[1]
    assert retry_seed != 1234
    bench.backend = after = FilteredBackend(flagged={1234})  # the next process's backend: the same filter
    await bench.restart()
    await bench.finished(job_id)
    assert seeds(after) == [retry_seed], seeds(after)
    assert (await stored(bench, job_id)).request.seed == retry_seed
