"""Several processes on one PostgreSQL: a job one backend cannot run (a LoRA it lacks) is given back once and not
offered to that backend again, which meanwhile runs the jobs behind it; the backend that has the LoRA runs it.
Two Apps stand for two processes (the one-bot-per-database lock bypassed, as in tests/test_pg_settings_cache.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import App, build_app
from bot.ports import BackendHealth, Inventory
from commands.dispatch import dispatch_text
from storage.postgres.claims import PgClaims
from storage.postgres.db import PgDatabase
from storage.postgres.jobs import PgJobStore
from storage.postgres.lock import PgProcessLock
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound
from tests.postgres_support import PostgresServer, drop_database, fresh_database
from tests.test_pg_claims import make_job

LORAS = {"detail": {"file": "add-detail-xl", "weight": 0.6, "triggers": ["detailed"], "max_weight": 1.0}}
PRESETS: dict[str, Any] = {"sdxl": {"base_resolution": 256, "loras": LORAS}}
LORA = "--preset sdxl --lora detail:0.8"


@dataclass
class StockedBackend(FakeBackend):
    """A FakeBackend that lists its LoRAs, as an A1111 server's /sdapi/v1/loras does."""

    loras: frozenset[str] = field(default_factory=frozenset)

    async def health(self) -> BackendHealth:
        return BackendHealth(ok=True, models=["x"], inventory=Inventory(loras=self.loras))


@dataclass
class Pair:
    bare: App  # process A: its backend lacks the LoRA
    stocked: App  # process B: its backend has it
    a: StockedBackend
    b: StockedBackend


@pytest.fixture
async def pair(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Pair]:
    async def no_lock(self: PgProcessLock, *_args: Any) -> PgProcessLock:
        return self

    monkeypatch.setattr(PgProcessLock, "acquire", no_lock)
    url = await fresh_database(postgres_server)
    a = StockedBackend(name="a")
    b = StockedBackend(name="b", loras=frozenset({"add-detail-xl"}), hold=True)
    apps: list[App] = []
    for name, backend in (("a", a), ("b", b)):
        settings = make_settings(tmp_path / name, storage={"url": url}, presets=PRESETS)
        apps.append(await build_app(settings, [RecordingOutbound()], backends=[backend]))
        await apps[-1].start()
    yield Pair(apps[0], apps[1], a, b)
    b.release.set()
    for app in apps:
        await app.stop()
    await drop_database(postgres_server, url)


async def imagine(app: App, text: str) -> str:
    reply = await dispatch_text(app.services, invocation(), text)
    assert reply is not None and reply.job_id, reply
    return reply.job_id


async def test_a_job_given_back_for_a_missing_lora_is_not_offered_again_and_the_jobs_behind_it_run(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.shared_queue")
    first = await imagine(pair.stocked, f"/imagine first {LORA}")
    await asyncio.wait_for(pair.b.started.wait(), 10)  # B holds it: the next LoRA job must wait for B
    assert [call[0] for call in pair.b.calls] == [first]
    lora_job = await imagine(pair.stocked, f"/imagine second {LORA}")
    plain = [await imagine(pair.bare, f"/imagine plain {n} --preset sdxl") for n in range(3)]  # behind it in u1's line

    for job_id in plain:  # A runs them while the LoRA job waits for B
        await asyncio.wait_for(pair.bare.engine.finished_event(job_id).wait(), 15)
    assert [call[0] for call in pair.a.calls] == plain, "A ran only the plain jobs"

    pair.b.hold = False
    pair.b.release.set()
    await asyncio.wait_for(pair.stocked.engine.finished_event(lora_job).wait(), 15)
    assert [call[0] for call in pair.b.calls] == [first, lora_job], "the LoRA job ran on B"
    given_back = [r for r in caplog.records if lora_job in r.getMessage() and "given back" in r.getMessage()]
    assert len(given_back) <= 1, f"A gave the LoRA job back {len(given_back)} times"


async def test_a_mark_holds_only_while_the_backend_stays_as_it_was(postgres_server: PostgresServer) -> None:
    url = await fresh_database(postgres_server)
    db = await PgDatabase.open(SecretStr(url), pool_size=2)
    try:
        lora_job, plain = make_job("u1", "s1", 1.0), make_job("u1", "s1", 1.0)
        await PgJobStore(db).create_all([lora_job, plain], None)
        claims = PgClaims(db)
        taken = await claims.claim(["a"], "p1", 60, fit_marks=["a#before"])
        assert taken is not None and taken.id == lora_job.id
        assert await claims.requeue(taken.id, "p1", taken.attempts - 1, unfit="a#before")
        behind = await claims.claim(["a"], "p1", 60, fit_marks=["a#before"])
        assert behind is not None and behind.id == plain.id, "the job behind it goes to the same backend"
        assert await claims.claim(["a"], "p1", 60, fit_marks=["a#before"]) is None, "not offered again as it was"
        again = await claims.claim(["a"], "p1", 60, fit_marks=["a#after"])  # what it has changed: a new inventory
        assert again is not None and again.id == lora_job.id and again.attempts == 1
    finally:
        await db.close()
        await drop_database(postgres_server, url)
