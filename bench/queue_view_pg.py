"""`python -m bench.queue_view_pg [--jobs N]`: what a process pays to keep its view of the shared queue.

One read of the shared queue (storage/postgres/queue_view.py: queued and running rows, the fair order over all
of them, paused servers) with N jobs queued: the first read parses every row, later reads only the rows that
changed; then one forecast over the replica (bot/queue_replica.py), as /queue and the position updates run it.
Needs Debian's postgresql package (it starts its own server, as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from pydantic import SecretStr

from bench.store_pg import LIMITS, job
from bot.placement import Lane, forecast
from bot.queue_replica import QueueReplica, ReplicaOrder
from bot.scheduler import FairScheduler
from storage.postgres.db import PgDatabase
from storage.postgres.jobs import PgJobStore
from storage.postgres.queue_view import PgQueueView
from tests.postgres_support import PostgresServer, fresh_database, running_postgres

ROUNDS = 20


async def run(jobs: int, server: PostgresServer) -> None:
    url = await fresh_database(server)
    db = await PgDatabase.open(SecretStr(url), pool_size=4)
    store = PgJobStore(db)
    for index in range(jobs):
        await store.create(job(index), LIMITS, 10_000)
    view = PgQueueView(db)
    started = time.perf_counter()
    read = await view.read_queue()
    first = time.perf_counter() - started
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        read = await view.read_queue()
        times.append(time.perf_counter() - started)
    replica = QueueReplica(view, lambda: None)
    replica.apply(read)
    lanes = [Lane(0.0, "m1", lambda _job: True), Lane(3.0, "m2", lambda _job: True)]
    started = time.perf_counter()
    for _ in range(ROUNDS):
        order = ReplicaOrder(replica.entries(lambda _job: 4.0, skip=()), FairScheduler(), replica.now())
        places = forecast(order, lanes)
    placed = (time.perf_counter() - started) / ROUNDS
    await db.close()
    print(f"read of {len(read.ordered)} queued jobs: first {first * 1000:.0f} ms (every row parsed), "
          f"then median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")  # fmt: skip
    print(f"forecast over the replica ({len(places)} placed, 2 lanes): {placed * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_view_pg")
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    with running_postgres() as server:
        asyncio.run(run(args.jobs, server))


if __name__ == "__main__":
    main()
