"""Insert new jobs on PostgreSQL: queue cap and quota checked and reserved in the insert's transaction.

Several processes may insert at once, so each transaction first takes advisory locks on the users and
servers it charges (in a fixed order, so two transactions never wait on each other in a circle): the
usage it reads cannot change before it commits. The checks themselves are storage/job_batch.py's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

from bot.errors import AlreadyHandled, UserError
from bot.models import Job, utcnow
from storage.job_batch import NewJob, UsageKey, UserKey, admit_batch, capped_users, charged_keys, reservation_rows
from storage.postgres.db import Connection
from storage.postgres.fair import level_flows

COLUMNS = (
    "id, platform, server_id, channel_id, user_id, destination, request, preset, priority, created_at, "
    "state, started_at, finished_at, backend, backend_task_id, attempts, error, delivery, cost, messages"
)
INSERT_JOB = f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join(f'${n}' for n in range(1, 21))})"
INSERT_RESERVATION = (
    "INSERT INTO quota_ledger (job_id, platform, server_id, user_id, day, amount, state, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, 'reserved', $7)"
)
NEW_JOB_CHANNEL = "imagebridge_jobs"
# Settle a command's inbox row; whether it was settled before (the row existed, not pending, at the statement's
# start or once the row lock was ours), in one round trip.
SETTLE_COMMAND = """
WITH settled AS (
    UPDATE inbox SET state = 'settled', payload = ''
    WHERE platform = $1 AND chat_id = $2 AND message_id = $3 AND state = 'pending' RETURNING 1
)
SELECT NOT EXISTS (SELECT 1 FROM settled)
   AND EXISTS (SELECT 1 FROM inbox WHERE platform = $1 AND chat_id = $2 AND message_id = $3)
"""


def job_values(job: Job) -> tuple[object, ...]:
    """The row for INSERT_JOB: datetimes as they are, JSON as text (asyncpg sends text to jsonb)."""
    dest = job.destination
    return (
        job.id,
        dest.platform,
        dest.server_id,
        dest.channel_id,
        dest.user_id,
        dest.model_dump_json(),
        job.request.model_dump_json(),
        job.request.preset,
        job.priority,
        job.created_at,
        job.state.value,
        job.started_at,
        job.finished_at,
        job.backend,
        job.backend_task_id,
        job.attempts,
        job.error,
        job.delivery.value,
        job.cost,
        json.dumps(job.messages),
    )


async def _lock_charged(conn: Connection, batch: Sequence[NewJob]) -> None:
    keys = set()
    for job, limits, cap in batch:
        dest = job.destination
        if limits is not None or cap is not None:
            keys.add(f"user:{dest.platform}:{dest.user_id}")
        if limits is not None:
            keys.add(f"server:{dest.platform}:{dest.server_id}")
    for key in sorted(keys):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 17))", key)


async def _usage(conn: Connection, keys: set[UsageKey]) -> dict[UsageKey, float]:
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for column, platform, ident, day in keys:
        groups[(column, platform, day)].append(ident)
    used: dict[UsageKey, float] = dict.fromkeys(keys, 0.0)
    for (column, platform, day), idents in groups.items():
        rows = await conn.fetch(
            f"SELECT {column}, COALESCE(SUM(amount), 0) FROM quota_ledger WHERE platform = $1 AND day = $2 "
            f"AND state != 'refunded' AND {column} = ANY($3::text[]) GROUP BY {column}",
            platform,
            day,
            idents,
        )
        for ident, amount in rows:
            used[(column, platform, str(ident), day)] = float(amount)
    return used


async def _queued(conn: Connection, users: set[UserKey]) -> dict[UserKey, int]:
    counts: dict[UserKey, int] = dict.fromkeys(users, 0)
    by_platform: dict[str, list[str]] = defaultdict(list)
    for platform, user_id in users:
        by_platform[platform].append(user_id)
    for platform, user_ids in by_platform.items():
        rows = await conn.fetch(
            "SELECT user_id, COUNT(*) FROM jobs WHERE state = 'queued' AND platform = $1 "
            "AND user_id = ANY($2::text[]) GROUP BY user_id",
            platform,
            user_ids,
        )
        for user_id, count in rows:
            counts[(platform, str(user_id))] = int(count)
    return counts


async def insert_jobs(conn: Connection, batch: Sequence[NewJob]) -> list[UserError | None]:
    """As storage/job_batch.insert_jobs, on PostgreSQL; a NOTIFY per batch wakes claimers at commit.

    A job whose command message (its Telegram inbox row) was settled already made its job in another process
    (one that lost the polling role mid-handler while the new holder replayed the command): refused, quietly.
    """
    handled = await handled_elsewhere(conn, batch)
    fresh = [new for new in batch if command_key(new[0]) not in handled]
    outcomes = iter(await _insert(conn, fresh) if fresh else [])
    return [
        AlreadyHandled.of("error.already_handled") if command_key(new[0]) in handled else next(outcomes)
        for new in batch
    ]


def command_key(job: Job) -> tuple[str, str, str] | None:
    """The inbox key of the command message that made the job (platform, chat, message), if any."""
    dest = job.destination
    return (dest.platform, dest.channel_id, dest.source_message_id) if dest.source_message_id else None


async def handled_elsewhere(conn: Connection, batch: Sequence[NewJob]) -> set[tuple[str, str, str]]:
    """Settle each batch command's inbox row in this transaction; the commands whose row was settled already.

    The row lock makes two processes' inserts for one command take turns: the second sees the row settled."""
    keys = {key for new in batch if (key := command_key(new[0])) is not None}
    return {key for key in sorted(keys) if await conn.fetchval(SETTLE_COMMAND, *key)}


async def _insert(conn: Connection, batch: Sequence[NewJob]) -> list[UserError | None]:
    await _lock_charged(conn, batch)
    keys, users = charged_keys(batch), capped_users(batch)
    used = await _usage(conn, keys) if keys else {}
    queued = await _queued(conn, users) if users else {}
    outcomes, admitted = admit_batch(batch, used, queued)
    now = utcnow()
    reservations = reservation_rows(admitted, now)
    if reservations:
        await conn.executemany(INSERT_RESERVATION, reservations)
    if admitted:
        fresh = [job for job, _ in admitted]
        await conn.executemany(INSERT_JOB, [job_values(job) for job in fresh])
        await level_flows(conn, fresh)
        await conn.execute("SELECT pg_notify($1, $2)", NEW_JOB_CHANNEL, fresh[0].id)
    return outcomes
