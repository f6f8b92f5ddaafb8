"""Insert a batch of new jobs in one transaction: quota read once per batch, rows written with executemany.

Every aiosqlite call is a hop to the database thread; a burst of commands used to pay three hops a job.
Here a batch pays a fixed handful however many jobs it holds, and each job is still checked against
what the jobs before it in the batch reserved.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import aiosqlite

from bot.errors import InvalidRequest, QuotaExceeded, UserError
from bot.models import Job, utcnow
from bot.ports import QuotaLimits

FIXED_COLUMNS = "id, platform, server_id, channel_id, user_id, destination, request, preset, priority, created_at"
# What changes as a job runs: the one list both the insert and `UPDATE jobs` use. Not `messages`: platform
# adapters add their message ids key by key (`set_message`), and a whole-row save must never erase them.
MUTABLE_COLUMNS = (
    "state",
    "started_at",
    "finished_at",
    "backend",
    "backend_task_id",
    "attempts",
    "error",
    "delivery",
    "cost",
)
JOB_COLUMNS = FIXED_COLUMNS + ", " + ", ".join(MUTABLE_COLUMNS) + ", messages"
INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * len(JOB_COLUMNS.split(',')))})"
UPDATE_JOB = f"UPDATE jobs SET {', '.join(f'{column} = ?' for column in MUTABLE_COLUMNS)} WHERE id = ?"
INSERT_RESERVATION = (
    "INSERT INTO quota_ledger (job_id, platform, server_id, user_id, day, amount, state, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?)"
)
IN_CHUNK = 500  # well under SQLite's bound-variable limit

# (column, platform, id, day) -> amount reserved or charged
UsageKey = tuple[str, str, str, str]
# (platform, user id) -> jobs waiting
UserKey = tuple[str, str]
# One create: the job, its quota limits (None: not charged) and the most jobs its user may have waiting.
NewJob = tuple[Job, QuotaLimits | None, int | None]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def mutable_values(job: Job) -> tuple[object, ...]:
    """Values for MUTABLE_COLUMNS, in that order."""
    return (
        job.state.value,
        iso(job.started_at),
        iso(job.finished_at),
        job.backend,
        job.backend_task_id,
        job.attempts,
        job.error,
        job.delivery.value,
        job.cost,
    )


def job_row(job: Job) -> tuple[object, ...]:
    dest = job.destination
    fixed = (
        job.id,
        dest.platform,
        dest.server_id,
        dest.channel_id,
        dest.user_id,
        dest.model_dump_json(),
        job.request.model_dump_json(),
        job.request.preset,
        job.priority,
        iso(job.created_at),
    )
    return (*fixed, *mutable_values(job), json.dumps(job.messages))


def checks(job: Job, limits: QuotaLimits) -> list[tuple[UsageKey, float | None, str]]:
    """The user's and the server's limit for this job's day, with the message key of each refusal."""
    dest, day = job.destination, limits.day.isoformat()
    return [
        (("user_id", dest.platform, dest.user_id, day), limits.user, "error.quota_user_today"),
        (("server_id", dest.platform, dest.server_id, day), limits.server, "error.quota_server_today"),
    ]


async def _usage(conn: aiosqlite.Connection, keys: set[UsageKey]) -> dict[UsageKey, float]:
    """What is already reserved or charged for each key, one grouped query per column, platform and day."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for column, platform, ident, day in keys:
        groups[(column, platform, day)].append(ident)
    used: dict[UsageKey, float] = dict.fromkeys(keys, 0.0)
    for (column, platform, day), idents in groups.items():
        for start in range(0, len(idents), IN_CHUNK):
            chunk = idents[start : start + IN_CHUNK]
            sql = (
                f"SELECT {column}, COALESCE(SUM(amount), 0) FROM quota_ledger WHERE platform = ? AND day = ? "
                f"AND state != 'refunded' AND {column} IN ({', '.join('?' * len(chunk))}) GROUP BY {column}"
            )
            async with conn.execute(sql, (platform, day, *chunk)) as cursor:
                for ident, amount in await cursor.fetchall():
                    used[(column, platform, str(ident), day)] = float(amount)
    return used


def reserve(used: dict[UsageKey, float], job: Job, limits: QuotaLimits) -> QuotaExceeded | None:
    """Charge the job to `used` if it fits both limits; the refusal otherwise."""
    wanted = checks(job, limits)
    for key, limit, what in wanted:
        if limit is not None and used[key] + job.cost > limit + 1e-9:
            return QuotaExceeded.of(what, cost=job.cost, left=max(0.0, limit - used[key]), limit=limit)
    for key, limit, _ in wanted:
        if limit is not None:
            used[key] += job.cost
    return None


async def _queued(conn: aiosqlite.Connection, users: set[UserKey]) -> dict[UserKey, int]:
    """Jobs each user has waiting, read in the same transaction as the insert (the partial index jobs_queued)."""
    counts: dict[UserKey, int] = dict.fromkeys(users, 0)
    by_platform: dict[str, list[str]] = defaultdict(list)
    for platform, user_id in users:
        by_platform[platform].append(user_id)
    for platform, user_ids in by_platform.items():
        for start in range(0, len(user_ids), IN_CHUNK):
            chunk = user_ids[start : start + IN_CHUNK]
            sql = (
                "SELECT user_id, COUNT(*) FROM jobs WHERE state = 'queued' AND platform = ? "
                f"AND user_id IN ({', '.join('?' * len(chunk))}) GROUP BY user_id"
            )
            async with conn.execute(sql, (platform, *chunk)) as cursor:
                for user_id, count in await cursor.fetchall():
                    counts[(platform, str(user_id))] = int(count)
    return counts


def admit(queued: dict[UserKey, int], job: Job, max_queued: int | None) -> InvalidRequest | None:
    """Refuse the job if its user already has `max_queued` jobs waiting."""
    if max_queued is None:
        return None
    key = (job.destination.platform, job.destination.user_id)
    if queued[key] >= max_queued:
        return InvalidRequest.of("error.too_many_queued", count=queued[key], limit=max_queued)
    return None


def charged_keys(batch: Sequence[NewJob]) -> set[UsageKey]:
    """The users' and servers' days whose usage the batch's quota checks read."""
    return {
        key
        for job, limits, _ in batch
        if limits is not None
        for key, limit, _ in checks(job, limits)
        if limit is not None
    }


def capped_users(batch: Sequence[NewJob]) -> set[UserKey]:
    """The users whose waiting jobs the batch's queue caps count."""
    return {(job.destination.platform, job.destination.user_id) for job, _, cap in batch if cap is not None}


def admit_batch(
    batch: Sequence[NewJob], used: dict[UsageKey, float], queued: dict[UserKey, int]
) -> tuple[list[UserError | None], list[tuple[Job, QuotaLimits | None]]]:
    """Each job's refusal (None: it fits) in order, each checked against what the jobs before it took; and the
    jobs that fit with the limits their reservation is charged under (None: not charged)."""
    outcomes: list[UserError | None] = []
    admitted: list[tuple[Job, QuotaLimits | None]] = []
    for job, limits, max_queued in batch:
        refused: UserError | None = admit(queued, job, max_queued)
        if refused is None and limits is not None:
            refused = reserve(used, job, limits)
        outcomes.append(refused)
        if refused is not None:
            continue
        if max_queued is not None:
            queued[(job.destination.platform, job.destination.user_id)] += 1
        admitted.append((job, limits))
    return outcomes, admitted


def reservation_rows(admitted: Sequence[tuple[Job, QuotaLimits | None]], now: object) -> list[tuple[object, ...]]:
    """INSERT_RESERVATION's rows for the admitted jobs that are charged (`now` in the store's time type)."""
    return [
        (job.id, job.destination.platform, job.destination.server_id, job.destination.user_id,
         limits.day.isoformat(), job.cost, now)
        for job, limits in admitted
        if limits is not None
    ]  # fmt: skip


async def insert_jobs(conn: aiosqlite.Connection, batch: Sequence[NewJob]) -> list[UserError | None]:
    """Check each job's queue cap and quota in order, then write the jobs that fit and their reservations.

    Both checks read and write in one transaction, so racing commands cannot pass the cap or the quota.
    """
    keys, users = charged_keys(batch), capped_users(batch)
    used = await _usage(conn, keys) if keys else {}
    queued = await _queued(conn, users) if users else {}
    outcomes, admitted = admit_batch(batch, used, queued)
    now = iso(utcnow())
    reservations = reservation_rows(admitted, now)
    if reservations:
        await conn.executemany(INSERT_RESERVATION, reservations)
    if admitted:
        await conn.executemany(INSERT_JOB, [job_row(job) for job, _ in admitted])
    return outcomes


Outcomes = Sequence[BaseException | None]


class GroupCommit:
    """Concurrent creates share one transaction, each still checked in turn: a burst of commands costs one
    commit, and is written (and answered with its places in line) together. `write` runs one batch."""

    def __init__(self, write: Callable[[list[NewJob]], Awaitable[Outcomes]]) -> None:
        self._write = write
        self._pending: list[tuple[NewJob, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, new: NewJob) -> None:
        """Wait until the job is written, or raise why it was refused."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((new, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="job-group-commit")
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            outcomes: Outcomes
            try:
                outcomes = await self._write([new for new, _ in batch])
            except Exception as exc:
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)
