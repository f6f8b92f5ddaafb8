"""The board of every process's backends, and drains by name, on the PostgreSQL store several processes share.

Each process publishes its workers' state (bot/shared_backends.py) into `backend_board`, one row per
(process, backend), on change and as a heartbeat; a change is announced on `imagebridge_backends` (NOTIFY,
delivered at commit) and every process reads the board again. A reader first removes the rows of processes
that are gone: their LISTEN connection, named `imagebridge host:pid:random`, is no longer on the server (the
same test as claims.py's leases), or their heartbeat is stale. Drains are rows of `drained_backends`, by
lower-case name, announced on the same channel; `undrained` is the claim's own check, so a backend drained in
any process takes nothing more from the moment the drain is committed. Each row also tells what its backend can
run (bot/routing.py BackendFit: answered, fit mark, and why for each kind and preset it cannot; migration 022).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from pydantic import SecretStr

from bot.fit import Unfit
from bot.jobs import BackendState
from bot.models import Job
from bot.routing import BackendFit
from storage.job_rows import job_from_row
from storage.postgres.db import Connection, PgDatabase
from storage.postgres.job_insert import COLUMNS
from storage.postgres.listen import signalled

log = logging.getLogger(__name__)

CHANNEL = "imagebridge_backends"
GONE = (  # claims.py's GONE, for the board's owner column
    "(owner LIKE '%:%:%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
    "WHERE a.application_name = 'imagebridge ' || owner))"
)
FIELDS = (
    "owner, name, place, kind, healthy, detail, drained, current_job, loaded, completed, model_switches, "
    "answered, fit_mark, unfit"
)
READ = FIELDS.replace("unfit", "unfit::text")
UPSERT = (
    f"INSERT INTO backend_board ({FIELDS}, heartbeat) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, now()) "
    "ON CONFLICT (owner, name) DO UPDATE SET place = EXCLUDED.place, kind = EXCLUDED.kind, "
    "healthy = EXCLUDED.healthy, detail = EXCLUDED.detail, drained = EXCLUDED.drained, "
    "current_job = EXCLUDED.current_job, loaded = EXCLUDED.loaded, completed = EXCLUDED.completed, "
    "model_switches = EXCLUDED.model_switches, answered = EXCLUDED.answered, fit_mark = EXCLUDED.fit_mark, "
    "unfit = EXCLUDED.unfit, heartbeat = now()"
)


async def undrained(conn: Connection, backends: Sequence[str]) -> list[str]:
    """Those of `backends` no admin drained (read in the claim's transaction: a committed drain holds at once)."""
    drained = {row["name"] for row in await conn.fetch(
        "SELECT name FROM drained_backends WHERE name = ANY($1::text[])", [name.lower() for name in backends]
    )}  # fmt: skip
    return [name for name in backends if name.lower() not in drained]


class PgBackendBoard:
    """BackendBoard (bot/queue_store.py) on PostgreSQL, with its own listening connection."""

    def __init__(self, db: PgDatabase, url: SecretStr, password: SecretStr | None = None) -> None:
        self.db = db
        self.url = url
        self.password = password
        self.changed = asyncio.Event()  # set by a notice, or when the connection is lost (notices may be missed)
        self._conn: Any = None
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    # ---- drains ----------------------------------------------------------------------------------

    async def drained_backends(self) -> set[str]:
        return {str(row["name"]) for row in await self.db.fetchall("SELECT name FROM drained_backends")}

    async def record_drain(self, name: str, drained: bool) -> None:
        async with self.db.transaction() as conn:
            if drained:
                await conn.execute(
                    "INSERT INTO drained_backends (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name.lower()
                )
            else:
                await conn.execute("DELETE FROM drained_backends WHERE name = $1", name.lower())
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "drain")

    # ---- the board -------------------------------------------------------------------------------

    async def publish(self, owner: str, states: Sequence[BackendState], announce: bool) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM backend_board WHERE owner = $1 AND NOT (name = ANY($2::text[]))",
                owner,
                [state.name for state in states],
            )
            if states:  # a process with no backend (a platform only) has no rows
                await conn.executemany(UPSERT, [_row(owner, place, state) for place, state in enumerate(states)])
            if announce:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, owner)

    async def withdraw(self, owner: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM backend_board WHERE owner = $1", owner)
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, owner)

    async def read(self, stale_seconds: float) -> list[BackendState]:
        async with self.db.transaction() as conn:
            await conn.execute(
                f"DELETE FROM backend_board WHERE heartbeat < now() - $1::interval OR {GONE}",
                timedelta(seconds=stale_seconds),
            )
            rows = await conn.fetch(f"SELECT {READ} FROM backend_board ORDER BY owner, place")
            running = [row["current_job"] for row in rows if row["current_job"] is not None]
            jobs = await conn.fetch(  # a job that ended since its process published is not shown as running
                f"SELECT {COLUMNS} FROM jobs WHERE id = ANY($1::text[]) AND state = 'running'", running
            )
        current = {job.id: job for job in map(job_from_row, jobs)}
        return [_state(row, current) for row in rows]

    # ---- listening -------------------------------------------------------------------------------

    async def open(self, owner: str) -> None:
        await self._connect(owner)
        self._keeper = asyncio.get_running_loop().create_task(self._keep(owner), name="backend-board-listen")

    async def _connect(self, owner: str) -> None:
        secret = self.password.get_secret_value() if self.password is not None else None
        named = {"application_name": f"imagebridge {owner}"[:63]}  # this process is alive while it is connected
        conn = await asyncpg.connect(self.url.get_secret_value(), password=secret, server_settings=named)
        try:
            await conn.add_listener(CHANNEL, self._on_notice)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        self._lost.clear()

    async def _keep(self, owner: str, retry_seconds: float = 1.0) -> None:
        while True:
            await self._lost.wait()
            log.warning("backend board LISTEN connection lost; connecting again")
            try:
                await self._connect(owner)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("backend board LISTEN failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(retry_seconds)
                continue
            self.changed.set()  # read everything again: notices may have been missed

    def _on_notice(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self.changed.set()

    def _on_lost(self, _conn: object) -> None:
        self._conn = None
        self._lost.set()
        self.changed.set()

    async def wait_for_change(self, seconds: float) -> bool:
        return await signalled(self.changed, seconds)

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


def _row(owner: str, place: int, state: BackendState) -> tuple[object, ...]:
    current = state.current.id if state.current is not None else None
    fit = state.fit or BackendFit(False, "")
    unfit = {key: {"key": reason.key, "params": reason.params} for key, reason in fit.unfit.items()}
    return (
        owner, state.name, place, state.kind, state.healthy, state.detail, state.drained, current, state.loaded,
        state.completed, state.model_switches, fit.answered, fit.mark, json.dumps(unfit, default=str),
    )  # fmt: skip


def _fit(row: Any) -> BackendFit:
    """A row's fits (a process of a version before them writes the defaults: not answered, able to run all)."""
    written = json.loads(row["unfit"])
    unfit = {key: Unfit(str(why["key"]), dict(why.get("params") or {})) for key, why in written.items()}
    return BackendFit(bool(row["answered"]), str(row["fit_mark"]), unfit)


def _state(row: Any, current: dict[str, Job]) -> BackendState:
    return BackendState(
        name=row["name"],
        kind=row["kind"],
        healthy=row["healthy"],
        detail=row["detail"],
        drained=row["drained"],
        current=current.get(row["current_job"]) if row["current_job"] is not None else None,
        loaded=row["loaded"],
        completed=row["completed"],
        model_switches=row["model_switches"],
        process=row["owner"],
        remote=True,
        fit=_fit(row),
    )
