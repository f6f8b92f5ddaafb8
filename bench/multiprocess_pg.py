"""`python -m bench.multiprocess_pg`: one PostgreSQL queue served by 1 and by 3 `imagebridge run` processes.

The load of tests/test_multiprocess_pg.py without kills: 300 jobs from 30 users in 5 Telegram groups (the
Telegram simulator; one process polls, the others only run workers), two A1111 simulators every process runs
workers for. Figures: jobs per second (first start to last finish, from the store) and the submission ack
(message sent to the simulator -> job stored with its quota) p50/p99. Starts its own throwaway PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from simulators.a1111 import A1111Simulator
from simulators.telegram import TelegramSimulator
from tests.postgres_support import PostgresServer, fresh_database, running_postgres
from tests.test_multiprocess_pg import GROUPS, JOBS_PER_USER, TOKEN, USERS, Fleet, job_cost

PROMPT = re.compile(r"fleet job (\d+) ")


async def one_run(server: PostgresServer, processes: int, folder: Path) -> dict[str, Any]:
    url = await fresh_database(server)
    sim = TelegramSimulator(token=TOKEN, time_scale=0.02)
    await sim.start()
    for chat in GROUPS:
        sim.add_chat(chat, title=f"group {chat}")
    backends = [A1111Simulator(seconds_per_step=0.02, model_load_seconds=0.05, previews=False) for _ in range(2)]
    addresses = [await backend.start() for backend in backends]
    await asyncio.to_thread(folder.mkdir)
    fleet = Fleet(tmp=folder, url=url, sim=sim, backends=backends, addresses=addresses, conn=await asyncpg.connect(url))
    try:
        fleet.limit = job_cost(folder) * (JOBS_PER_USER + 0.5)
        fleet.start(processes)
        await fleet.until(lambda: _polling(sim), 60)
        sent_at: dict[int, float] = {}
        sent = 0
        for chat in GROUPS:
            for user in USERS[chat]:
                for _ in range(JOBS_PER_USER):
                    sent += 1
                    sent_at[sent] = time.time()
                    await sim.send_text(chat, user, f"/imagine fleet job {sent} --seed {sent}")
        await fleet.until(lambda: _delivered(fleet, sent), 300)
        rows = await fleet.conn.fetch(
            "SELECT request->>'prompt' AS prompt, created_at, started_at, finished_at FROM jobs"
        )
        acks = sorted(
            row["created_at"].timestamp() - sent_at[int(found.group(1))]
            for row in rows
            if (found := PROMPT.search(row["prompt"] + " "))
        )
        first = min(row["started_at"] for row in rows)
        last = max(row["finished_at"] for row in rows)
        for process in fleet.processes:
            await process.terminate()
        return {
            "processes": processes,
            "jobs": len(rows),
            "jobs_per_s": round(len(rows) / (last - first).total_seconds(), 2),
            "ack_p50_ms": round(1000 * acks[len(acks) // 2], 1),
            "ack_p99_ms": round(1000 * acks[min(len(acks) - 1, int(len(acks) * 0.99))], 1),
        }
    finally:
        for process in fleet.processes:
            await process.kill()
        await fleet.conn.close()
        for backend in backends:
            await backend.stop()
        await sim.stop()


async def _polling(sim: TelegramSimulator) -> bool:
    return sim.count("getUpdates") > 0


async def _delivered(fleet: Fleet, count: int) -> bool:
    return int(await fleet.value("SELECT COUNT(*) FROM jobs WHERE delivery = 'delivered'")) >= count


async def main() -> None:
    with running_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        for processes in (1, 3):
            figures = await one_run(server, processes, Path(tmp) / f"run{processes}")
            figures["at"] = datetime.now(UTC).isoformat(timespec="seconds")
            print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
