"""On PostgreSQL too, a group the bot was removed from has its jobs cancelled and refunded, the waiting ones read
from the shared queue (not only those in this process's memory), and none of them is run. Real PTB Application
against the faulty Telegram simulator; the ledger read from the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.telegram_faults import FaultyTelegramSimulator
from tests.fakes import FakeBackend
from tests.postgres_support import PostgresServer, drop_database, fresh_database, read_pg
from tests.telegram_faults_support import FaultBench, fault_config
from tests.test_telegram_support import GROUP, PRIVATE

pytestmark = pytest.mark.telegram


class PgFaultBench(FaultBench):
    url: str = ""

    def ledger(self, job_id: str) -> str:
        found = read_pg(self.url, f"SELECT state FROM quota_ledger WHERE job_id = '{job_id}'")
        return str(found[0][0]) if found else "none"


@pytest.fixture
async def pg_bench(tmp_path: Path, postgres_server: PostgresServer) -> AsyncIterator[PgFaultBench]:
    url = await fresh_database(postgres_server)
    sim = FaultyTelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    sim.add_chat(GROUP, title="artists", admins=(1,))
    quota = {"enabled": True, "user_daily": 100000.0, "server_daily": 100000.0}
    bench = PgFaultBench(
        sim=sim,
        backend=FakeBackend(),
        data_dir=tmp_path / "data",
        config=fault_config(sim),
        overrides={"quota": quota, "storage": {"url": url}},
    )
    bench.url = url
    yield bench
    await bench.close()
    await sim.stop()
    await drop_database(postgres_server, url)


async def test_kicked_from_group_cancels_the_shared_queues_jobs(pg_bench: PgFaultBench) -> None:
    pg_bench.backend.hold = True
    await pg_bench.open()
    await pg_bench.sim.send_text(GROUP, 5, "/imagine@test_bot running --preset sd15")
    running = await pg_bench.job_from(GROUP)
    await pg_bench.backend.started.wait()
    before = max(m.message_id for m in pg_bench.sim.visible(GROUP))
    await pg_bench.sim.send_text(GROUP, 6, "/imagine@test_bot waiting --preset sd15")
    waiting = await pg_bench.job_from(GROUP, after=before)
    await pg_bench.sim.kick(GROUP)
    await pg_bench.finished(running, within=20)
    await pg_bench.finished(waiting, within=20)
    assert pg_bench.ledger(running) == "refunded" and pg_bench.ledger(waiting) == "refunded"
    assert [job for job, _ in pg_bench.backend.calls] == [running], "the waiting job never ran"
    assert pg_bench.sim.bot_photos(GROUP) == []
