"""The shared queue as every process reads it (bot/shared_views.py keeps a replica of it in memory).

One read-only, repeatable-read transaction (one snapshot) gives the queued and running rows, the queued ones'
fair order — the very ORDER a claim walks (storage/postgres/fair.py), over every backend and without a limit —
and the paused servers. A row that did not change since the last read is not parsed again (its Job is the
same object as before: readers treat the view's jobs as read-only snapshots).

Each read also lists the processes connected (their LISTEN connections are named `imagebridge <owner>`), so a
process can take over the status messages of a dead one's waiting jobs (`adopt_status`, one taker per job), and
the chats the bot was removed from (storage/postgres/gone_chats.py), whose jobs every process cancels.

`QUEUE_CHANNEL` is NOTIFYed where the queue changes without another signal (a claim, a release): with the
new-work, cancel and finished channels (storage/postgres/listen.py) it tells every process to read again.
"""

from __future__ import annotations

import json
from typing import Any

from bot.models import Job
from bot.queue_store import STATUS_OWNER, QueueRead, Running, StatusPost, Waiting
from storage.job_rows import job_from_row
from storage.postgres.db import PgDatabase
from storage.postgres.fair import ORDER, ORDER_BY
from storage.postgres.gone_chats import GONE_CHATS, PgGoneChats
from storage.postgres.job_insert import COLUMNS

QUEUE_CHANNEL = "imagebridge_queue"  # a job was claimed or released: every process's view reads again
LIVE = f"SELECT {COLUMNS}, lease_owner FROM jobs WHERE state IN ('queued', 'running')"
FAIR = f"SELECT id, passed_over, EXTRACT(EPOCH FROM first_passed_at)::float8 AS first_passed FROM ({ORDER}{ORDER_BY}) o"
PAUSED = (
    "SELECT platform || ':' || server_id FROM server_settings WHERE COALESCE((settings->>'paused')::boolean, FALSE)"
)
LIVE_OWNERS = "SELECT substr(application_name, 13) FROM pg_stat_activity WHERE application_name LIKE 'imagebridge %'"
ADOPT = f"""
UPDATE jobs SET messages = jsonb_set(messages, '{{{STATUS_OWNER}}}', to_jsonb($3::text))
WHERE id = $1 AND state = 'queued' AND messages->>'{STATUS_OWNER}' = $2 AND NOT EXISTS (
    SELECT 1 FROM pg_stat_activity a WHERE a.application_name = 'imagebridge ' || $2)
"""
POSTED = f"""
SELECT messages, EXISTS (SELECT 1 FROM pg_stat_activity a
    WHERE a.application_name = 'imagebridge ' || (j.messages->>'{STATUS_OWNER}')) AS live
FROM jobs j WHERE id = $1
"""
CHANGING = ("state", "started_at", "backend", "backend_task_id", "attempts", "messages", "destination", "cost")


class PgQueueView(PgGoneChats):
    """Reads the whole shared queue (bot/queue_store.py QueueReader) from PostgreSQL."""

    changes = QUEUE_CHANNEL

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self._parsed: dict[str, tuple[tuple[Any, ...], Job]] = {}  # job id -> (its changing columns, the Job)

    async def read_queue(self) -> QueueRead:
        async with self.db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(LIVE)
            fair = await conn.fetch(FAIR)
            paused = frozenset(str(key) for (key,) in await conn.fetch(PAUSED))
            clock = float(await conn.fetchval("SELECT EXTRACT(EPOCH FROM now())::float8"))
            live = frozenset(str(owner) for (owner,) in await conn.fetch(LIVE_OWNERS))  # as claims.py GONE sees
            gone = frozenset((str(platform), str(chat)) for platform, chat in await conn.fetch(GONE_CHATS))
        jobs = self._jobs(rows)
        ordered = [Waiting(jobs[row["id"]], int(row["passed_over"]), row["first_passed"]) for row in fair]
        in_order = {row["id"] for row in fair}
        held = [jobs[row["id"]] for row in rows if row["state"] == "queued" and row["id"] not in in_order]
        held.sort(key=lambda job: job.created_at)
        running = [Running(jobs[row["id"]], row["lease_owner"]) for row in rows if row["state"] == "running"]
        running.sort(key=lambda one: (one.job.started_at is None, one.job.started_at or one.job.created_at))
        return QueueRead(ordered=ordered, held=held, running=running, paused=paused, clock=clock, live=live, gone=gone)

    async def adopt_status(self, job_id: str, gone: str, owner: str) -> bool:
        async with self.db.transaction() as conn:
            status = await conn.execute(ADOPT, job_id, gone, owner)
        return bool(status.endswith(" 1"))

    async def status_post(self, job_id: str) -> StatusPost | None:
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(POSTED, job_id)
        return None if row is None else StatusPost(json.loads(row["messages"]), bool(row["live"]))

    def _jobs(self, rows: list[Any]) -> dict[str, Job]:
        parsed: dict[str, tuple[tuple[Any, ...], Job]] = {}
        for row in rows:
            key = tuple(row[column] for column in CHANGING)
            known = self._parsed.get(row["id"])
            parsed[row["id"]] = known if known is not None and known[0] == key else (key, job_from_row(row))
        self._parsed = parsed  # finished jobs drop out
        return {job_id: job for job_id, (_, job) in parsed.items()}
