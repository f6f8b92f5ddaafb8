"""`python -m bench.store_pg [--jobs N]`: the two stores side by side, on a throwaway PostgreSQL.

Figures: jobs queued per second with quota (one create per command, 8 at a time) on SQLite and on
PostgreSQL; jobs claimed per second from PostgreSQL by 1 and by 4 claimers (each on its own connections,
as separate processes would be), with the fair order computed in SQL for every claim. Needs Debian's
postgresql package (it starts its own server, as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from bot.models import Destination, GenerationRequest, Job
from bot.ports import QuotaLimits
from storage.db import Database
from storage.jobs import SqliteJobStore
from storage.postgres.claims import PgClaims
from storage.postgres.db import PgDatabase
from storage.postgres.jobs import PgJobStore
from tests.postgres_support import PostgresServer, fresh_database, running_postgres

LIMITS = QuotaLimits(user=1e9, server=1e9, day=date(2026, 1, 1))


def job(index: int) -> Job:
    request = GenerationRequest(
        preset="sdxl", user_prompt="p", prompt="p", checkpoint=f"m{index % 3}", sampler="Euler", steps=20,
        cfg_scale=7, width=1024, height=1024, seed=index,
    )  # fmt: skip
    where = Destination(platform="discord", server_id=f"s{index % 5}", channel_id="c", user_id=f"u{index % 30}")
    return Job(request=request, destination=where, cost=1.0 + index % 7)


async def queue_rate(store: SqliteJobStore | PgJobStore, jobs: int) -> float:
    started, pending = time.perf_counter(), [job(i) for i in range(jobs)]
    semaphore = asyncio.Semaphore(8)

    async def one(item: Job) -> None:
        async with semaphore:
            await store.create(item, LIMITS, 10_000)

    await asyncio.gather(*(one(item) for item in pending))
    return jobs / (time.perf_counter() - started)


async def claim_rate(url: str, claimers: int) -> tuple[float, int]:
    pools = [await PgDatabase.open(SecretStr(url), pool_size=2, migrate=False) for _ in range(claimers)]
    counts = [0] * claimers

    async def drain(index: int) -> None:
        claims = PgClaims(pools[index])
        while await claims.claim(["gpu"], f"p{index}", 60, loaded_checkpoint="m1") is not None:
            counts[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(drain(index) for index in range(claimers)))
    elapsed = time.perf_counter() - started
    for pool in pools:
        await pool.close()
    return sum(counts) / elapsed, sum(counts)


async def run(jobs: int, server: PostgresServer) -> None:
    with tempfile.TemporaryDirectory(prefix="imagebridge-bench-store-") as folder:
        sqlite = await Database.open(Path(folder) / "bench.sqlite3")
        print(f"queue, SQLite:      {await queue_rate(SqliteJobStore(sqlite), jobs):8.0f} jobs/s")
        await sqlite.close()
    for claimers in (1, 4):
        url = await fresh_database(server)
        pg = await PgDatabase.open(SecretStr(url), pool_size=10)
        rate = await queue_rate(PgJobStore(pg), jobs)
        if claimers == 1:
            print(f"queue, PostgreSQL:  {rate:8.0f} jobs/s")
        await pg.close()
        claimed, total = await claim_rate(url, claimers)
        print(f"claim, {claimers} claimer(s): {claimed:8.0f} jobs/s ({total} of {jobs} claimed, each once)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_pg")
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    with running_postgres() as server:
        asyncio.run(run(args.jobs, server))


if __name__ == "__main__":
    main()
