"""What the SQLite and PostgreSQL job stores do the same way: creates batched by group commit, all-or-none
creates, reading and saving a job, reading images, timings and the ledger. Each store gives its SQL dialect
where they differ: the column list, the batch insert, the update (both databases take `?` placeholders).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar

from bot.errors import UserError
from bot.models import Job, StoredImage
from bot.ports import QuotaLimits
from storage.job_batch import GroupCommit, NewJob
from storage.job_rows import RowLike, image_from_row, job_from_row


class JobDb(Protocol):
    """What the shared writes need of either database."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def fetchone(self, sql: str, params: tuple[object, ...] = ()) -> RowLike | None: ...

    async def fetchall(self, sql: str, params: tuple[object, ...] = ()) -> Sequence[RowLike]: ...


DbT = TypeVar("DbT", bound=JobDb)


class JobStoreBase(Generic[DbT]):
    """The part of the job store both databases share, over a store's `_insert` (a checked batch) and `_update`."""

    columns: str  # the job columns job_from_row reads, in the store's dialect

    def __init__(self, db: DbT) -> None:
        self.db = db
        self._group = GroupCommit(self._write)

    async def _insert(self, conn: Any, batch: Sequence[NewJob]) -> list[UserError | None]:
        """Check each job's queue cap and quota in order and write those that fit, in the caller's transaction."""
        raise NotImplementedError

    async def _update(self, conn: Any, job: Job) -> None:
        """Write what changed as the job ran, in the caller's transaction."""
        raise NotImplementedError

    async def create(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> None:
        """Queue the insert; concurrent creates share one transaction (group commit), each checked in turn."""
        await self._group.submit((job, limits, max_queued))

    async def _write(self, batch: list[NewJob]) -> Sequence[UserError | None]:
        async with self.db.transaction() as conn:
            return await self._insert(conn, batch)

    async def create_all(self, jobs: Sequence[Job], limits: QuotaLimits | None, max_queued: int | None = None) -> None:
        """All the jobs or none: the first refusal rolls the whole transaction back."""
        async with self.db.transaction() as conn:
            outcomes = await self._insert(conn, [(job, limits, max_queued) for job in jobs])
            refused = next((outcome for outcome in outcomes if outcome is not None), None)
            if refused is not None:
                raise refused

    async def get(self, job_id: str) -> Job | None:
        row = await self.db.fetchone(f"SELECT {self.columns} FROM jobs WHERE id = ?", (job_id,))
        return job_from_row(row) if row else None

    async def save(self, job: Job) -> None:
        async with self.db.transaction() as conn:
            await self._update(conn, job)

    async def images(self, job_id: str) -> list[StoredImage]:
        rows = await self.db.fetchall(
            "SELECT * FROM images WHERE job_id = ? AND kind = 'result' ORDER BY idx", (job_id,)
        )
        return [image_from_row(row) for row in rows]

    async def image(self, image_id: str) -> StoredImage | None:
        row = await self.db.fetchone("SELECT * FROM images WHERE id = ?", (image_id,))
        return image_from_row(row) if row else None

    async def timings(self) -> dict[str, float]:
        rows = await self.db.fetchall("SELECT preset, seconds_per_step FROM timings")
        return {row["preset"]: float(row["seconds_per_step"]) for row in rows}

    async def ledger_balance(self) -> dict[str, float]:
        """Amount per ledger state (reserved rows of finished jobs would mean a leak)."""
        rows = await self.db.fetchall("SELECT state, SUM(amount) AS total FROM quota_ledger GROUP BY state")
        return {row["state"]: float(row["total"]) for row in rows}
