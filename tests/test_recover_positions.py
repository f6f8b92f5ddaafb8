"""After a restart the waiting jobs' status messages follow the queue again (SQLite, through the real
python-telegram-bot): a job recovered as "Queued #2" is edited to "Queued #1" when the line moves, not left
as it was until it starts."""

from __future__ import annotations

import asyncio

import pytest

from tests.gated import GatedBackend
from tests.test_telegram_support import PRIVATE, Bench, bench

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


async def test_recovered_waiting_jobs_are_moved_as_the_line_moves(bench: Bench) -> None:
    backend = bench.backend = GatedBackend()
    await bench.open()
    ids = []
    for text in ("/imagine the first", "/imagine the second", "/imagine the third"):
        after = max((m.message_id for m in bench.sim.visible(PRIVATE)), default=0)
        await bench.sim.send_text(PRIVATE, PRIVATE, text)
        ids.append(await bench.job_from(PRIVATE, after))
        async with asyncio.timeout(10):
            await backend.started.wait()  # the first runs before the others queue behind it
    third = next(m for m in bench.sim.visible(PRIVATE) if ids[2] in (m.text or ""))
    assert "Queued #2" in (third.text or ""), third.text

    bench.backend = backend = GatedBackend()  # the next process: the first runs again, the others wait
    await bench.restart()
    assert bench.app is not None
    bench.app.engine.positions.interval = 0.0
    async with asyncio.timeout(10):
        await backend.started.wait()
    backend.gates[0].set()  # the first finishes, the second starts: the third is next
    await bench.finished(ids[0])
    await bench.sim.wait_for(lambda: "Queued #1" in (third.text or ""))
    assert ids[2] in (third.text or "") and backend.taken == 2  # moved while it still waits
    for gate in backend.gates:
        gate.set()
    for job_id in ids[1:]:
        await bench.finished(job_id)
