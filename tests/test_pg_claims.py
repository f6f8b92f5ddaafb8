"""Claiming jobs from PostgreSQL for several processes: atomic under races, leased, signalled, and in the order
bot/scheduler.py's FairScheduler would pick them (against the shared ledger), on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import SecretStr

from bot.models import Destination, GenerationRequest, Job, JobState
from bot.ports import ServerSettings
from bot.scheduler import FairScheduler, QueuedJob
from storage.postgres.accounts import PgAccountStore
from storage.postgres.claims import FairPolicy, Lease, PgClaims
from storage.postgres.db import PgDatabase
from storage.postgres.jobs import PgJobStore
from storage.postgres.listen import Signals
from tests.postgres_support import database_url  # noqa: F401 (the `url` fixture)


@pytest.fixture
async def db(url: str) -> AsyncIterator[PgDatabase]:
    database = await PgDatabase.open(SecretStr(url), pool_size=4)
    yield database
    await database.close()


def make_job(user: str, server: str, cost: float, checkpoint: str = "sdxl.safetensors", preset: str = "sdxl") -> Job:
    request = GenerationRequest(
        preset=preset, user_prompt="p", prompt="p", checkpoint=checkpoint, sampler="Euler", steps=20,
        cfg_scale=7, width=512, height=512, seed=1,
    )  # fmt: skip
    destination = Destination(platform="discord", server_id=server, channel_id=f"c{server}", user_id=user)
    return Job(request=request, destination=destination, cost=cost)


def queued(job: Job) -> QueuedJob:
    """The job as bot/engine.py hands it to the in-memory scheduler."""
    return QueuedJob(
        job_id=job.id, server=job.queue_key, user=f"discord:{job.destination.user_id}", cost=max(job.cost, 0.001),
        checkpoint=job.request.checkpoint, preset=job.request.preset,
    )  # fmt: skip


async def test_no_job_is_claimed_twice_by_four_racing_claimers(db: PgDatabase, url: str) -> None:
    jobs = [make_job(f"u{i % 17}", f"s{i % 5}", 1.0 + i % 7) for i in range(1000)]
    await PgJobStore(db).create_all(jobs, None)
    claimers = [await PgDatabase.open(SecretStr(url), pool_size=2) for _ in range(4)]
    got: dict[str, list[str]] = {}

    async def claim_all(index: int, database: PgDatabase) -> None:
        claims, owner = PgClaims(database), f"process-{index}"
        mine = got.setdefault(owner, [])
        while (job := await claims.claim(["gpu"], owner, 60)) is not None:
            assert job.state is JobState.RUNNING and job.backend == "gpu"
            mine.append(job.id)

    try:
        await asyncio.gather(*(claim_all(i, database) for i, database in enumerate(claimers)))
    finally:
        for database in claimers:
            await database.close()
    claimed = [job_id for ids in got.values() for job_id in ids]
    assert len(claimed) == 1000 and set(claimed) == {job.id for job in jobs}, "every job once, none twice"
    assert all(len(ids) > 0 for ids in got.values()), "all four claimers took part"
    owners = await db.fetchall("SELECT lease_owner, COUNT(*) FROM jobs WHERE state = 'running' GROUP BY 1")
    assert {row[0]: row[1] for row in owners} == {owner: len(ids) for owner, ids in got.items()}


async def test_a_lapsed_lease_is_claimed_again_as_a_retry(db: PgDatabase) -> None:
    job = make_job("u1", "s1", 2.0)
    await PgJobStore(db).create(job, None)
    claims = PgClaims(db)
    first = await claims.claim(["gpu"], "dead-process", 0)  # a lease that lapses at once: the process died
    assert first is not None and first.id == job.id and first.attempts == 1
    again = await claims.claim(["gpu"], "live-process", 60)
    assert again is not None and again.id == job.id and again.attempts == 2, "its retry"
    assert await claims.renew(job.id, "dead-process", 60) is Lease.LOST  # the old owner learns it lost it
    assert await claims.renew(job.id, "live-process", 60) is Lease.HELD
    assert await claims.claim(["gpu"], "third", 60) is None, "a held lease is not claimable"


async def test_notify_wakes_a_waiting_claimer_and_carries_cancels(db: PgDatabase, url: str) -> None:
    signals = await Signals().start(SecretStr(url))
    try:
        waiter = asyncio.create_task(signals.wait_for_work(30))
        job = make_job("u1", "s1", 1.0)
        await PgJobStore(db).create(job, None)  # another connection queues a job
        assert await waiter, "the NOTIFY sent at commit woke the waiter"
        claims = PgClaims(db)
        assert (await claims.claim(["gpu"], "p1", 60)) is not None
        await claims.request_cancel(job.id)
        assert await asyncio.wait_for(signals.cancels.get(), 30) == job.id
        assert await claims.renew(job.id, "p1", 60) is Lease.CANCEL
    finally:
        await signals.stop()


async def test_requeue_gives_the_job_back_where_it_stood(db: PgDatabase) -> None:
    jobs = [make_job("a", "s1", 1.0), make_job("a", "s1", 1.0), make_job("b", "s1", 1.0)]
    for job in jobs:
        await PgJobStore(db).create(job, None)
    claims = PgClaims(db)
    taken = await claims.claim(["gpu"], "p1", 60)
    assert taken is not None and taken.id == jobs[0].id
    assert await claims.requeue(taken.id, "p1")
    again = await claims.claim(["gpu"], "p2", 60)
    assert again is not None and again.id == jobs[0].id, "its charge refunded, it is first again"


async def _same_order(db: PgDatabase, waves: list[list[Job]], policy: FairPolicy, loaded: list[str | None]) -> None:
    """Jobs arrive in waves; after each wave some are claimed. SQL and FairScheduler must pick alike."""
    scheduler = FairScheduler(
        affinity=policy.affinity, window=policy.window, max_pass_over=policy.max_pass_over,
        max_pass_over_seconds=policy.max_pass_over_seconds,
    )  # fmt: skip
    claims, store, turn = PgClaims(db, policy), PgJobStore(db), 0
    for wave in waves:
        for job in wave:
            await store.create(job, None)
            scheduler.add(queued(job))
        for _ in range(len(wave) * 2 // 3 + 1):
            checkpoint = loaded[turn % len(loaded)]
            turn += 1
            expected = scheduler.pick(None, checkpoint)
            got = await claims.claim(["gpu"], "p", 60, loaded_checkpoint=checkpoint)
            assert (got.id if got else None) == (expected.job_id if expected else None), f"pick {turn}"


@pytest.mark.parametrize("seed", [7, 8, 9, 10, 11, 12])
async def test_the_sql_order_is_fair_schedulers_order(db: PgDatabase, seed: int) -> None:
    rng = random.Random(seed)
    waves = [
        [make_job(f"u{rng.randrange(6)}", f"s{rng.randrange(3)}", round(rng.uniform(0.5, 9.5), 3)) for _ in range(n)]
        for n in (25, 10, 18, 6)
    ]
    await _same_order(db, waves, FairPolicy(affinity=False), [None])


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
async def test_model_affinity_and_its_bound_match_the_scheduler(db: PgDatabase, seed: int) -> None:
    rng = random.Random(seed)
    models = ["flux.safetensors", "sdxl.safetensors", "sd15.safetensors"]
    waves = [
        [
            make_job(f"u{rng.randrange(5)}", f"s{rng.randrange(2)}", round(rng.uniform(1, 6), 3), rng.choice(models))
            for _ in range(n)
        ]
        for n in (30, 12)
    ]
    await _same_order(db, waves, FairPolicy(window=6, max_pass_over=3), ["flux.safetensors", "sdxl.safetensors"])


async def test_a_paused_server_is_not_claimed_from(db: PgDatabase) -> None:
    held, free = make_job("u1", "paused", 1.0), make_job("u2", "open", 5.0)
    for job in (held, free):
        await PgJobStore(db).create(job, None)
    await PgAccountStore(db).save_server(ServerSettings(platform="discord", server_id="paused", paused=True))
    claims = PgClaims(db)
    taken = await claims.claim(["gpu"], "p", 60)
    assert taken is not None and taken.id == free.id
    assert await claims.claim(["gpu"], "p", 60) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_equal_costs_tie_as_the_scheduler_breaks_ties(db: PgDatabase, seed: int) -> None:
    """Every job costs the same: most picks are ties, broken by who was served longest ago."""
    rng = random.Random(seed)
    waves = [[make_job(f"u{rng.randrange(4)}", f"s{rng.randrange(3)}", 1.0) for _ in range(n)] for n in (20, 9, 12)]
    await _same_order(db, waves, FairPolicy(affinity=False), [None])


async def test_a_lost_listen_connection_wakes_the_waiters_and_comes_back(db: PgDatabase, url: str) -> None:
    signals = Signals()
    listening = asyncio.create_task(signals.run(SecretStr(url), retry_seconds=0.05))
    try:
        await asyncio.wait_for(signals.listening.wait(), 30)
        admin = await asyncpg.connect(url)
        try:  # the server ends the listener's session (a restart, a failover, an idle timeout…)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert await signals.wait_for_work(30), "waiters are woken to look at the store"
        await asyncio.wait_for(signals.listening.wait(), 30)
        await PgJobStore(db).create(make_job("u1", "s1", 1.0), None)
        assert await signals.wait_for_work(30), "the new connection hears the next NOTIFY"
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
