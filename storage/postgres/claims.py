"""Claiming jobs from PostgreSQL, for several processes: fair, atomic, leased.

`claim` walks the queue in the fair order computed in SQL (storage/postgres/fair.py), applies model
affinity to the first few jobs this caller can run as bot/scheduler.py does, and takes the chosen row with
`FOR UPDATE SKIP LOCKED`: a row another claimer is taking is skipped, never waited for, and never taken
twice. Repeated picks from one state come out in the fair order, so skipping the row a concurrent claimer
took yields the job a single process would have picked next.

A claimed job carries a lease (owner, expiry). Its owner renews it while the job runs; a process that dies
stops renewing, and once the lease lapses (or at once, when its owner is a process, host:pid:random, whose
LISTEN connection, named after it, is gone from the server) the job is queued again, its fair-share charge
taken back, and any claimer may take it. Every claim counts an attempt (attempts + 1), so a lapsed job's next
claim is its retry.

How the engine uses it (bot/shared_queue.py): a worker's "next job" is `claim` (waiting on
storage/postgres/listen.py's `Signals.work` when there is none); while it runs, `renew` about every third of
the lease (LOST: stop, another process has it; CANCEL: interrupt it); "complete" is the store's `finish` then
`release`; "requeue" is `requeue`; the worker then no longer counts attempts itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.models import Job
from storage.job_rows import job_from_row
from storage.postgres.backend_board import undrained
from storage.postgres.db import Connection, PgDatabase
from storage.postgres.fair import ELIGIBLE, ORDER, ORDER_BY, charge, level_flows, refund
from storage.postgres.job_insert import COLUMNS, NEW_JOB_CHANNEL
from storage.postgres.jobs import CANCEL_CHANNEL
from storage.postgres.listen import FINISHED_CHANNEL
from storage.postgres.queue_view import QUEUE_CHANNEL

log = logging.getLogger(__name__)

GONE = (  # an owner that is a process (host:pid:random) whose LISTEN connection, named after it, is gone
    "({owner} LIKE '%:%:%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
    "WHERE a.application_name = 'imagebridge ' || {owner}))"
)
PICK = "pick_tick, pick_server_last, pick_user_last"
SLACK = 16  # candidates read beyond the affinity window, for rows other claimers hold
DEAD = f"""state = 'running' AND lease_owner IS NOT NULL AND (lease_until < now() OR (
        {GONE.format(owner="lease_owner")}))"""  # a running job whose runner is gone (or hung past its lease)
LAPSED = f"""
WITH lapsed AS (
    SELECT id FROM jobs WHERE {DEAD} AND ($1::int IS NULL OR attempts < $1)
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs j SET state = 'queued', lease_owner = NULL, lease_until = NULL,
    backend = CASE WHEN j.backend_task_id IS NULL THEN NULL ELSE j.backend END
FROM lapsed WHERE j.id = lapsed.id
RETURNING {", ".join(f"j.{column.strip()}" for column in COLUMNS.split(","))}, {PICK}
"""
EXHAUSTED = f"""
UPDATE jobs SET lease_owner = $2, lease_until = now() + $3::interval
WHERE id IN (SELECT id FROM jobs WHERE {DEAD} AND attempts >= $1 AND lease_owner <> $2 FOR UPDATE SKIP LOCKED)
RETURNING {COLUMNS}
"""

STRAND = f"""
WITH stranded AS (
    SELECT j.id, c.error FROM jsonb_to_recordset($1::jsonb) AS c(id text, marks text[], error text)
    JOIN jobs j ON j.id = c.id
    WHERE j.state = 'queued' AND c.marks <@ j.unfit_marks
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE jobs j SET state = 'failed', error = stranded.error, finished_at = now(), delivery = 'pending'
FROM stranded WHERE j.id = stranded.id
RETURNING {", ".join(f"j.{column.strip()}" for column in COLUMNS.split(","))}
"""  # the whole outcome at once: a process that dies before its own finish() leaves it ended, refunded, to deliver


class Lease(StrEnum):
    """What renewing a lease found."""

    HELD = "held"
    CANCEL = "cancel"  # held, and someone asked for the job to be cancelled
    LOST = "lost"  # no longer this owner's (it lapsed and was claimed again, or the job ended)


@dataclass(frozen=True)
class FairPolicy:
    """bot/scheduler.py's affinity settings ([scheduler] in the config)."""

    affinity: bool = True
    window: int = 8
    max_pass_over: int = 4
    max_pass_over_seconds: float = 300.0

    def overdue(self, passed_over: int, first_passed_at: datetime | None, now: datetime) -> bool:
        if passed_over >= self.max_pass_over:
            return True
        return first_passed_at is not None and (now - first_passed_at).total_seconds() >= self.max_pass_over_seconds


class PgClaims:
    """The claiming side of the PostgreSQL store (bot/shared_queue.py uses it through bot/ports.py JobClaims)."""

    def __init__(self, db: PgDatabase, policy: FairPolicy | None = None, max_attempts: int | None = None) -> None:
        self.db = db
        self.policy = policy or FairPolicy()
        self.max_attempts = max_attempts  # a dead runner's job at this many attempts is not queued again (None: no cap)

    async def claim(
        self,
        backends: Sequence[str],
        owner: str,
        lease_seconds: float,
        *,
        presets: Collection[str] | None = None,
        loaded_checkpoint: str | None = None,
        fit_marks: Collection[str] = (),
    ) -> Job | None:
        """Take the next job, in the fair order, that one of `backends` can run, or None when there is none.

        A queued job that names a backend (a task to resume there) goes only to that backend; `presets`
        narrows to the presets these backends can run (None: any); a job given back with every one of
        `fit_marks` (the backends as they are now, see `requeue`) is skipped. The job comes back running, leased
        to `owner` for `lease_seconds`, its backend the one it named or the first of `backends`.
        """
        await self.reap()
        window = self.policy.window if self.policy.affinity and loaded_checkpoint else 1
        async with self.db.transaction() as conn:
            backends = await undrained(conn, backends)  # an admin's drain, from any process, holds at once
            if not backends:
                return None
            rows = await conn.fetch(
                f"{ORDER}{ELIGIBLE}{ORDER_BY} LIMIT {window + SLACK}",
                list(backends),
                _list(presets),
                list(fit_marks) or None,
            )
            candidates = list(rows)
            now = await conn.fetchval("SELECT now()")  # the server's clock: every process measures on the same one
            while candidates:
                shown = candidates[:window]
                chosen_at = self._choose(shown, loaded_checkpoint, now)
                chosen = shown[chosen_at]
                if await conn.fetchval(
                    "SELECT id FROM jobs WHERE id = $1 AND state = 'queued' FOR UPDATE SKIP LOCKED", chosen["id"]
                ):
                    return await self._take(conn, chosen, shown[:chosen_at], backends, owner, lease_seconds)
                candidates.remove(chosen)  # another claimer holds it: the next in the fair order
        return None

    def _choose(self, shown: Sequence[Any], loaded_checkpoint: str | None, now: datetime) -> int:
        """bot/scheduler.py FairScheduler.choose: the first on the loaded checkpoint or passed over enough."""
        if len(shown) == 1:
            return 0
        for place, row in enumerate(shown):
            if row["checkpoint"] == loaded_checkpoint or self.policy.overdue(
                row["passed_over"], row["first_passed_at"], now
            ):
                return place
        return 0

    async def _take(
        self, conn: Connection, chosen: Any, passed: Sequence[Any], backends: Sequence[str], owner: str, lease: float
    ) -> Job:
        if passed:  # affinity passed these over: counted, so none waits past the bound
            await conn.execute(
                "UPDATE jobs SET passed_over = passed_over + 1, first_passed_at = COALESCE(first_passed_at, now()) "
                "WHERE id IN (SELECT id FROM jobs WHERE id = ANY($1::text[]) AND state = 'queued' "
                "FOR UPDATE SKIP LOCKED)",
                [row["id"] for row in passed],
            )
        row = await conn.fetchrow(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $2, "
            f"lease_until = now() + $3::interval, backend = COALESCE(backend, $4) WHERE id = $1 RETURNING {COLUMNS}",
            chosen["id"],
            owner,
            timedelta(seconds=lease),
            backends[0] if backends else None,
        )
        await charge(conn, row["id"], row["platform"], row["server_id"], row["user_id"], float(chosen["cost"]))
        await conn.execute("SELECT pg_notify($1, $2)", QUEUE_CHANNEL, row["id"])  # every process's view moves
        return job_from_row(row)

    async def renew(self, job_id: str, owner: str, lease_seconds: float) -> Lease:
        """Extend the lease; says whether it is still held and whether a cancel was asked for (a cancel stays
        on the row, so a job given back and claimed again is seen as cancelled at its new owner's first renew)."""
        async with self.db.transaction() as conn:
            cancel = await conn.fetchval(
                "UPDATE jobs SET lease_until = now() + $3::interval WHERE id = $1 AND lease_owner = $2 "
                "AND state = 'running' RETURNING cancel_requested",
                job_id,
                owner,
                timedelta(seconds=lease_seconds),
            )
        if cancel is None:
            return Lease.LOST
        return Lease.CANCEL if cancel else Lease.HELD

    async def renew_all(self, owner: str, lease_seconds: float) -> int:
        """One heartbeat for every job this owner runs; returns how many leases it still holds."""
        async with self.db.transaction() as conn:
            status = await conn.execute(
                "UPDATE jobs SET lease_until = now() + $2::interval WHERE lease_owner = $1 AND state = 'running'",
                owner,
                timedelta(seconds=lease_seconds),
            )
        return int(status.rsplit(" ", 1)[-1])

    async def release(self, job_id: str, owner: str) -> bool:
        """The job is finished (its final state saved by the store): drop the lease. False if it was not held."""
        async with self.db.transaction() as conn:
            status = await conn.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
                job_id,
                owner,
            )
            await conn.execute("SELECT pg_notify($1, $2)", QUEUE_CHANNEL, job_id)  # it left the running jobs
        return bool(status.endswith(" 1"))

    async def requeue(self, job_id: str, owner: str, attempts: int | None = None, unfit: str | None = None) -> bool:
        """Give a held job back unrun (its backend failed): queued again where it stood, its charge refunded.

        `attempts`, when given, replaces the count (a backend that never finished the job does not use one).
        `unfit`: the mark of a backend that cannot run the job (claimed with that mark, it is skipped)."""
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, backend = NULL, "
                "attempts = COALESCE($3, attempts), "
                "unfit_marks = CASE WHEN $4::text IS NULL OR $4::text = ANY(unfit_marks) THEN unfit_marks "
                "ELSE array_append(unfit_marks, $4::text) END "
                f"WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING {COLUMNS}, {PICK}",
                job_id,
                owner,
                attempts,
                unfit,
            )
            if row is None:
                return False
            await self._returned(conn, [row])
        return True

    async def request_cancel(self, job_id: str) -> None:
        """Ask whichever process runs the job to stop it: kept on the row (seen at renew) and sent with NOTIFY."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET cancel_requested = TRUE WHERE id = $1", job_id)
            await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, job_id)

    async def cancel_queued(self, job_id: str) -> Job | None:
        """Take a queued job out of the queue as cancelled (no claimer can take it meanwhile); None if it is not
        queued (running somewhere, or over). The caller stores its outcome (refund) and delivers it."""
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                f"UPDATE jobs SET state = 'cancelled' WHERE id = (SELECT id FROM jobs WHERE id = $1 AND "
                f"state = 'queued' FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}",
                job_id,
            )
        return None if row is None else job_from_row(row)

    async def strand(self, stranded: Sequence[tuple[str, Sequence[str], str]]) -> list[Job]:
        """End as failed, refunded, each (job id, marks, error) still queued whose given-back marks include all of
        `marks`, in one transaction: a job another process claims or ends meanwhile is left alone, so each is
        ended once. Returns those ended here; the caller stores the rest of the outcome and delivers it."""
        if not stranded:
            return []
        wanted = json.dumps([{"id": job_id, "marks": list(marks), "error": error} for job_id, marks, error in stranded])
        async with self.db.transaction() as conn:
            rows = await conn.fetch(STRAND, wanted)
            if rows:
                await conn.execute(
                    "UPDATE quota_ledger SET state = 'refunded', updated_at = now() WHERE job_id = ANY($1::text[])",
                    [row["id"] for row in rows],
                )
                await conn.execute("SELECT pg_notify($1, $2)", QUEUE_CHANNEL, rows[0]["id"])  # it left the queue
        return [job_from_row(row) for row in rows]

    async def claim_delivery(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """Take the right to send a finished job's result for `lease_seconds`: False when it is delivered
        already or another process holds that right (so two processes never send the same result)."""
        async with self.db.transaction() as conn:
            status = await conn.execute(
                "UPDATE jobs SET delivery_owner = $2, delivery_until = now() + $3::interval "
                "WHERE id = $1 AND delivery = 'pending' AND (delivery_owner IS NULL OR delivery_owner = $2 "
                f"OR delivery_until < now() OR {GONE.format(owner='delivery_owner')})",
                job_id,
                owner,
                timedelta(seconds=lease_seconds),
            )
        return bool(status.endswith(" 1"))

    async def release_delivery(self, job_id: str, owner: str) -> None:
        """Give the right to send back (a failed send: whichever process retries first may take it)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET delivery_owner = NULL, delivery_until = NULL WHERE id = $1 AND delivery_owner = $2",
                job_id,
                owner,
            )

    async def notify_work(self) -> None:
        """Wake every process's claimers (a server resumed, a backend came back)."""
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_notify($1, '')", NEW_JOB_CHANNEL)

    async def notify_finished(self, job_id: str) -> None:
        """Tell the processes that can deliver it that a job finished here (this one has no way to its chat)."""
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", FINISHED_CHANNEL, job_id)

    async def reap(self) -> list[str]:
        """Queue again every job whose lease lapsed (its process died or hung) and that has attempts left;
        returns their ids. The others wait for `take_exhausted`."""
        async with self.db.transaction() as conn:
            rows = await conn.fetch(LAPSED, self.max_attempts)
            if rows:
                await self._returned(conn, rows)
        if rows:
            log.warning("%d job(s) whose process stopped renewing its lease are queued again", len(rows))
        return [str(row["id"]) for row in rows]

    async def take_exhausted(self, owner: str, lease_seconds: float) -> list[Job]:
        """Jobs whose runner died at their last attempt (`max_attempts`), leased to `owner` to be ended as failed:
        still running, so if `owner` dies before ending them another process takes them over the same way."""
        if self.max_attempts is None:
            return []
        async with self.db.transaction() as conn:
            rows = await conn.fetch(EXHAUSTED, self.max_attempts, owner, timedelta(seconds=lease_seconds))
        return [job_from_row(row) for row in rows]

    @staticmethod
    async def _returned(conn: Connection, rows: Sequence[Any]) -> None:
        for row in rows:
            await refund(conn, row)
        await level_flows(conn, [job_from_row(row) for row in rows])
        await conn.execute("SELECT pg_notify($1, $2)", NEW_JOB_CHANNEL, rows[0]["id"])


def _list(values: Collection[str] | None) -> list[str] | None:
    return None if values is None else list(values)
