"""JobStore on PostgreSQL: jobs, their images, the quota ledger and timings, written together atomically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from bot.errors import UserError
from bot.models import DeliveryState, Job, JobState, StoredImage, utcnow
from storage.job_batch import NewJob
from storage.job_rows import image_from_row, job_from_row
from storage.job_store_base import JobStoreBase
from storage.postgres.chat_records import PgChatRecords
from storage.postgres.db import Connection, PgDatabase
from storage.postgres.job_insert import COLUMNS, insert_jobs

UPDATE_JOB = (
    "UPDATE jobs SET state = $2, started_at = $3, finished_at = $4, backend = $5, backend_task_id = $6, "
    "attempts = $7, error = $8, delivery = $9, cost = $10 WHERE id = $1"
)
CANCEL_CHANNEL = "imagebridge_cancels"
INSERT_IMAGE = (
    "INSERT INTO images (id, job_id, kind, idx, path, sha256, width, height, seed, infotext, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)


def _mutable(job: Job) -> tuple[object, ...]:
    return (
        job.id,
        job.state.value,
        job.started_at,
        job.finished_at,
        job.backend,
        job.backend_task_id,
        job.attempts,
        job.error,
        job.delivery.value,
        job.cost,
    )


class PgJobStore(JobStoreBase[PgDatabase], PgChatRecords):
    """JobStore on PostgreSQL."""

    columns = COLUMNS

    async def _insert(self, conn: Connection, batch: Sequence[NewJob]) -> list[UserError | None]:
        return await insert_jobs(conn, batch)

    async def _update(self, conn: Connection, job: Job) -> None:
        await conn.execute(UPDATE_JOB, *_mutable(job))
        if job.state is JobState.CANCELLED:  # a process running it elsewhere learns at once
            await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, job.id)

    async def finish(self, job: Job, images: Sequence[StoredImage], actual_cost: float | None) -> None:
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.executemany(
                INSERT_IMAGE,
                [
                    (i.id, job.id, "result", i.index, i.path, i.sha256, i.width, i.height, i.seed, i.infotext, now)
                    for i in images
                ],
            )
            if actual_cost is None:
                await conn.execute(
                    "UPDATE quota_ledger SET state = 'refunded', updated_at = $1 WHERE job_id = $2", now, job.id
                )
            else:
                await conn.execute(
                    "UPDATE quota_ledger SET state = 'settled', amount = $1, updated_at = $2 WHERE job_id = $3",
                    actual_cost,
                    now,
                    job.id,
                )
            await self._update(conn, job)

    async def set_request(self, job: Job) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET request = $1 WHERE id = $2", job.request.model_dump_json(), job.id)

    async def set_delivery(self, job_id: str, state: DeliveryState) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET delivery = $1 WHERE id = $2", state.value, job_id)

    async def set_message(self, job_id: str, key: str, value: str) -> None:
        await self.set_messages(job_id, {key: value})

    async def in_states(self, states: Sequence[JobState]) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM jobs WHERE state = ANY(?::text[]) ORDER BY created_at, seq",
            ([state.value for state in states],),
        )
        return [job_from_row(row) for row in rows]

    async def undelivered(self) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM jobs WHERE delivery = 'pending' ORDER BY finished_at, seq"
        )
        return [job_from_row(row) for row in rows]

    async def history(self, platform: str, user_id: str, limit: int) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM jobs WHERE platform = ? AND user_id = ? ORDER BY created_at DESC, seq DESC LIMIT ?",
            (platform, user_id, limit),
        )
        return [job_from_row(row) for row in rows]

    async def usage(self, platform: str, server_id: str, user_id: str, day: date) -> tuple[float, float]:
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(amount) FILTER (WHERE user_id = ?), 0), "
            "COALESCE(SUM(amount) FILTER (WHERE server_id = ?), 0) FROM quota_ledger "
            "WHERE platform = ? AND day = ? AND state != 'refunded' AND (user_id = ? OR server_id = ?)",
            (user_id, server_id, platform, day.isoformat(), user_id, server_id),
        )
        return (float(row[0]), float(row[1])) if row else (0.0, 0.0)

    async def add_source_image(self, image: StoredImage) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                INSERT_IMAGE + " ON CONFLICT (id) DO NOTHING",
                image.id,
                None,
                "source",
                0,
                image.path,
                image.sha256,
                image.width,
                image.height,
                None,
                "",
                utcnow(),
            )

    async def delete_images(self, job_id: str) -> list[StoredImage]:
        """Remove a job's result image rows (the Delete button); returns them so the files can go too."""
        async with self.db.transaction() as conn:
            rows = await conn.fetch("DELETE FROM images WHERE job_id = $1 AND kind = 'result' RETURNING *", job_id)
        return sorted((image_from_row(row) for row in rows), key=lambda image: image.index)

    async def stats(self, platform: str, server_id: str, since: datetime) -> list[tuple[str, int, float]]:
        rows = await self.db.fetchall(
            "SELECT user_id, SUM((request->>'count')::int), SUM(cost) FROM jobs "
            "WHERE platform = ? AND server_id = ? AND state = 'succeeded' AND finished_at >= ? "
            "GROUP BY user_id ORDER BY 3 DESC, 1",
            (platform, server_id, since),
        )
        return [(str(row[0]), int(row[1] or 0), float(row[2] or 0.0)) for row in rows]

    async def record_timing(self, preset: str, seconds_per_step: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO timings (preset, seconds_per_step, samples) VALUES ($1, $2, 1) ON CONFLICT (preset) DO "
                "UPDATE SET seconds_per_step = 0.7 * timings.seconds_per_step + 0.3 * EXCLUDED.seconds_per_step, "
                "samples = timings.samples + 1",
                preset,
                seconds_per_step,
            )
