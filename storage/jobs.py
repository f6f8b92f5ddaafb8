"""The job repository: jobs, their images, the quota ledger and timings, written together atomically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import aiosqlite

from bot.errors import UserError
from bot.models import DeliveryState, Job, JobState, StoredImage, utcnow
from storage.chat_records import SqliteChatRecords
from storage.db import Database
from storage.job_batch import JOB_COLUMNS, UPDATE_JOB, NewJob, insert_jobs, mutable_values
from storage.job_batch import iso as _iso
from storage.job_rows import job_from_row
from storage.job_store_base import JobStoreBase


class SqliteJobStore(JobStoreBase[Database], SqliteChatRecords):
    """JobStore on SQLite."""

    columns = JOB_COLUMNS

    async def _insert(self, conn: aiosqlite.Connection, batch: Sequence[NewJob]) -> list[UserError | None]:
        return await insert_jobs(conn, batch)

    async def _update(self, conn: aiosqlite.Connection, job: Job) -> None:
        await conn.execute(UPDATE_JOB, (*mutable_values(job), job.id))

    async def finish(self, job: Job, images: Sequence[StoredImage], actual_cost: float | None) -> None:
        now = _iso(utcnow())
        async with self.db.transaction() as conn:
            for image in images:
                await conn.execute(
                    "INSERT INTO images (id, job_id, kind, idx, path, sha256, width, height, seed, infotext, "
                    "created_at) VALUES (?, ?, 'result', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image.id,
                        job.id,
                        image.index,
                        image.path,
                        image.sha256,
                        image.width,
                        image.height,
                        image.seed,
                        image.infotext,
                        now,
                    ),
                )
            if actual_cost is None:
                await conn.execute(
                    "UPDATE quota_ledger SET state = 'refunded', updated_at = ? WHERE job_id = ?", (now, job.id)
                )
            else:
                await conn.execute(
                    "UPDATE quota_ledger SET state = 'settled', amount = ?, updated_at = ? WHERE job_id = ?",
                    (actual_cost, now, job.id),
                )
            await self._update(conn, job)

    async def set_request(self, job: Job) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET request = ? WHERE id = ?", (job.request.model_dump_json(), job.id))

    async def set_delivery(self, job_id: str, state: DeliveryState) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET delivery = ? WHERE id = ?", (state.value, job_id))

    async def set_message(self, job_id: str, key: str, value: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET messages = json_set(messages, ?, ?) WHERE id = ?", (f"$.{key}", value, job_id)
            )

    async def in_states(self, states: Sequence[JobState]) -> list[Job]:
        marks = ", ".join("?" * len(states))
        rows = await self.db.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY created_at, rowid",
            tuple(state.value for state in states),
        )
        return [job_from_row(row) for row in rows]

    async def undelivered(self) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE delivery = 'pending' ORDER BY finished_at, rowid"
        )
        return [job_from_row(row) for row in rows]

    async def history(self, platform: str, user_id: str, limit: int) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE platform = ? AND user_id = ? ORDER BY created_at DESC, rowid DESC "
            "LIMIT ?",
            (platform, user_id, limit),
        )
        return [job_from_row(row) for row in rows]

    async def usage(self, platform: str, server_id: str, user_id: str, day: date) -> tuple[float, float]:
        totals = []
        for column, value in (("user_id", user_id), ("server_id", server_id)):
            row = await self.db.fetchone(
                f"SELECT COALESCE(SUM(amount), 0) FROM quota_ledger WHERE platform = ? AND {column} = ? "
                "AND day = ? AND state != 'refunded'",
                (platform, value, day.isoformat()),
            )
            totals.append(float(row[0]) if row else 0.0)
        return totals[0], totals[1]

    async def add_source_image(self, image: StoredImage) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO images (id, job_id, kind, idx, path, sha256, width, height, seed, infotext, "
                "created_at) VALUES (?, NULL, 'source', 0, ?, ?, ?, ?, NULL, '', ?)",
                (image.id, image.path, image.sha256, image.width, image.height, _iso(utcnow())),
            )

    async def delete_images(self, job_id: str) -> list[StoredImage]:
        """Remove a job's result image rows (the Delete button); returns them so the files can go too."""
        found = await self.images(job_id)
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM images WHERE job_id = ? AND kind = 'result'", (job_id,))
        return found

    async def stats(self, platform: str, server_id: str, since: datetime) -> list[tuple[str, int, float]]:
        rows = await self.db.fetchall(
            "SELECT user_id, SUM(json_extract(request, '$.count')), SUM(cost) FROM jobs "
            "WHERE platform = ? AND server_id = ? AND state = 'succeeded' AND finished_at >= ? "
            "GROUP BY user_id ORDER BY 3 DESC, 1",
            (platform, server_id, since.astimezone(UTC).isoformat()),
        )
        return [(str(row[0]), int(row[1] or 0), float(row[2] or 0.0)) for row in rows]

    async def record_timing(self, preset: str, seconds_per_step: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO timings (preset, seconds_per_step, samples) VALUES (?, ?, 1) ON CONFLICT(preset) DO "
                "UPDATE SET seconds_per_step = 0.7 * seconds_per_step + 0.3 * excluded.seconds_per_step, "
                "samples = samples + 1",
                (preset, seconds_per_step),
            )
