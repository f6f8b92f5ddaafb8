"""Jobs and images from rows of either store (sqlite3.Row, asyncpg.Record)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from bot.models import DeliveryState, Destination, GenerationRequest, Job, JobState, StoredImage


class RowLike(Protocol):
    """A row of either store, read by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _dt(value: str | datetime | None) -> datetime | None:
    """SQLite keeps ISO text, PostgreSQL timestamptz (asyncpg gives a datetime): either way a datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if value else None


def _when(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def job_from_row(row: RowLike) -> Job:
    """A Job from a row of either store (jsonb comes back from asyncpg as text, like SQLite's)."""
    return Job(
        id=row["id"],
        destination=Destination.model_validate_json(row["destination"]),
        request=GenerationRequest.model_validate_json(row["request"]),
        state=JobState(row["state"]),
        cost=row["cost"],
        priority=row["priority"],
        created_at=_when(row["created_at"]),
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        backend=row["backend"],
        backend_task_id=row["backend_task_id"],
        attempts=row["attempts"],
        error=row["error"],
        delivery=DeliveryState(row["delivery"]),
        messages=json.loads(row["messages"]),
    )


def image_from_row(row: RowLike) -> StoredImage:
    return StoredImage(
        id=row["id"],
        job_id=row["job_id"],
        index=row["idx"],
        path=row["path"],
        sha256=row["sha256"],
        width=row["width"],
        height=row["height"],
        seed=row["seed"],
        infotext=row["infotext"],
        kind=row["kind"],
    )
