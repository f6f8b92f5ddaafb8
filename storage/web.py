"""The web gallery's reads and its sign-in links: keyset pages of finished jobs, who may see which chat, usage."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.models import Job, StoredImage
from storage.db import Database
from storage.job_batch import JOB_COLUMNS
from storage.job_batch import iso as _iso
from storage.job_rows import RowLike, image_from_row, job_from_row

SERVERS_TTL_SECONDS = 60.0
KEEP_EXPIRED = timedelta(days=2)  # sign-in links this long past their expiry are deleted


def token_hash(token: str) -> str:
    """Only a hash of a sign-in token is stored: the database never holds a usable credential."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """Who looks: an admin sees every chat; anyone else the chats they belong to and their own jobs."""

    platform: str
    user_id: str
    admin: bool = False
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filters:
    user: str = ""
    server: str = ""  # "platform:server_id"
    preset: str = ""
    text: str = ""


@dataclass(frozen=True)
class Tile:
    """One finished job in the grid."""

    id: str
    platform: str
    server_id: str
    user_id: str
    user_name: str
    preset: str
    prompt: str
    created_at: str
    image_id: str | None
    cursor: str  # "created_at|rowid" of this row, for the next page


@dataclass(frozen=True)
class SignIn:
    platform: str
    user_id: str
    user_name: str
    server_id: str


class SqliteWebStore:
    """The gallery's SQL; every query is bounded by the viewer's rights before any filter.

    Built on a PostgreSQL database it is a PgWebStore (storage/postgres/web.py), as `pathlib.Path()` is a
    PosixPath: the web adapter names one class, the database decides the dialect.
    """

    # The dialect's spelling of the few things SQLite and PostgreSQL write differently.
    PROMPT = "json_extract(j.request, '$.user_prompt')"
    USER_NAME = "json_extract(j.destination, '$.user_name')"
    ROWID = "j.rowid"
    # A private job (results by DM) is its owner's and the bot admins' only: never in a chat's shared gallery.
    SHARED = "COALESCE(json_extract(j.destination, '$.private'), 0) = 0"

    def __new__(cls, db: Database) -> SqliteWebStore:
        if cls is SqliteWebStore and getattr(db, "dialect", "sqlite") == "postgres":
            from storage.postgres.web import PgWebStore

            return super().__new__(PgWebStore)
        return super().__new__(cls)

    def __init__(self, db: Database) -> None:
        self.db = db
        self._all_servers: tuple[float, list[str]] = (float("-inf"), [])

    # ---- sign-in links -------------------------------------------------------------------------
    async def issue(self, token: str, who: SignIn, expires_at: datetime) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO web_tokens (token_hash, platform, user_id, user_name, server_id, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (token_hash(token), who.platform, who.user_id, who.user_name, who.server_id, _iso(expires_at)),
            )
            await conn.execute(
                "INSERT OR IGNORE INTO web_members (platform, user_id, server_id) VALUES (?, ?, ?)",
                (who.platform, who.user_id, who.server_id),
            )
            # Links long past their expiry are of no use, even as a record: keep the table small.
            await conn.execute("DELETE FROM web_tokens WHERE expires_at < ?", (_iso(expires_at - KEEP_EXPIRED),))

    async def redeem(self, token: str, now: datetime) -> SignIn | None:
        """The link's owner if the token is known, unexpired and unused; it is used up in the same transaction."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE web_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? "
                "RETURNING platform, user_id, user_name, server_id",
                (_iso(now), token_hash(token), _iso(now)),
            )
            row = await cursor.fetchone()
            await cursor.close()
        return SignIn(row[0], row[1], row[2], row[3]) if row else None

    async def servers_of(self, platform: str, user_id: str) -> tuple[str, ...]:
        """The chats a user belongs to: where they made jobs or asked for a sign-in link."""
        rows = await self.db.fetchall(
            "SELECT server_id FROM web_members WHERE platform = ? AND user_id = ? "
            "UNION SELECT DISTINCT server_id FROM jobs WHERE platform = ? AND user_id = ?",
            (platform, user_id, platform, user_id),
        )
        return tuple(sorted(str(row[0]) for row in rows))

    # ---- gallery -------------------------------------------------------------------------------
    @staticmethod
    def _visible(viewer: Viewer, shared: str = "TRUE") -> tuple[str, list[object]]:
        """The viewer's rows: their chats' (those that pass `shared`) and their own."""
        if viewer.admin:
            return "TRUE", []
        marks = ", ".join("?" * len(viewer.servers)) or "NULL"
        return f"j.platform = ? AND ((j.server_id IN ({marks}) AND {shared}) OR j.user_id = ?)", [
            viewer.platform,
            *viewer.servers,
            viewer.user_id,
        ]

    async def page(self, viewer: Viewer, filters: Filters, after: str | None, size: int) -> list[Tile]:
        """Up to `size` finished jobs older than the cursor, newest first (keyset: no OFFSET).

        A member's view is two index walks (their chats; their own jobs), each newest first and cut at `size`,
        then merged: the work is bounded by what they may see, not by the whole table.
        """
        clauses, params = self._filters(filters, after)
        if viewer.admin:
            scopes: list[tuple[str, list[object]]] = [("TRUE", [])]
        else:
            marks = ", ".join("?" * len(viewer.servers)) or "NULL"
            scopes = [
                (f"j.platform = ? AND j.server_id IN ({marks}) AND {self.SHARED}", [viewer.platform, *viewer.servers]),
                ("j.platform = ? AND j.user_id = ?", [viewer.platform, viewer.user_id]),
            ]
        branches, values = [], []
        for scope, scope_params in scopes:
            branches.append(
                f"SELECT * FROM (SELECT {self._tile_columns()} FROM jobs j WHERE j.state = 'succeeded' AND {scope} "
                f"AND {' AND '.join(clauses)} ORDER BY j.created_at DESC, {self.ROWID} DESC LIMIT ?) AS branch"
            )
            values += [*scope_params, *params, size]
        rows = await self.db.fetchall(
            f"{' UNION '.join(branches)} ORDER BY created_at DESC, rid DESC LIMIT ?", (*values, size)
        )
        return [_tile(row) for row in rows]

    async def job(self, viewer: Viewer, job_id: str) -> Job | None:
        """The job if this viewer may see it."""
        where, params = self._visible(viewer, self.SHARED)
        row = await self.db.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ? AND {where}", (job_id, *params))
        return job_from_row(row) if row else None

    async def image(self, viewer: Viewer, image_id: str) -> StoredImage | None:
        """A result image if this viewer may see its job."""
        where, params = self._visible(viewer, self.SHARED)
        row = await self.db.fetchone(
            f"SELECT i.* FROM images i JOIN jobs j ON j.id = i.job_id WHERE i.id = ? AND i.kind = 'result' AND {where}",
            (image_id, *params),
        )
        return image_from_row(row) if row else None

    async def servers(self, viewer: Viewer) -> list[str]:
        """The chats ("platform:server_id") the viewer may filter by."""
        if not viewer.admin:
            return [f"{viewer.platform}:{server}" for server in viewer.servers]
        made, found = self._all_servers
        if time.monotonic() - made < SERVERS_TTL_SECONDS:  # every chat with a job is a scan: not on every page
            return found
        rows = await self.db.fetchall(
            "SELECT platform || ':' || server_id FROM web_members UNION "
            "SELECT platform || ':' || server_id FROM server_settings UNION "
            "SELECT DISTINCT platform || ':' || server_id FROM jobs WHERE state = 'succeeded'"
        )
        found = sorted(str(row[0]) for row in rows)
        self._all_servers = (time.monotonic(), found)
        return found

    def _tile_columns(self) -> str:
        return (
            f"j.id, j.platform, j.server_id, j.user_id, j.preset, j.created_at, {self.ROWID} AS rid, "
            f"{self.PROMPT} AS prompt, {self.USER_NAME} AS name, "
            "(SELECT i.id FROM images i WHERE i.job_id = j.id AND i.kind = 'result' ORDER BY i.idx LIMIT 1) AS image"
        )

    def _when(self, created: str) -> object:
        """A cursor's time as the dialect compares it (SQLite: the ISO text itself)."""
        return created

    def _filters(self, filters: Filters, after: str | None) -> tuple[list[str], list[object]]:
        """The viewer's filters and the keyset cursor ("created_at|rowid" of the last row seen) as SQL."""
        clauses, params = ["TRUE"], list[object]()
        if filters.server and ":" in filters.server:
            platform, server_id = filters.server.split(":", 1)
            clauses.append("j.platform = ? AND j.server_id = ?")
            params += [platform, server_id]
        if filters.user:
            clauses.append("j.user_id = ?")
            params.append(filters.user)
        if filters.preset:
            clauses.append("j.preset = ?")
            params.append(filters.preset)
        if filters.text:
            clauses.append(f"{self.PROMPT} LIKE ? ESCAPE '\\'")
            escaped = filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        if after and "|" in after:
            created, rowid = after.rsplit("|", 1)
            try:
                when = self._when(created)
            except ValueError:
                return ["FALSE"], []  # a cursor nobody made: an empty page
            clauses.append(f"(j.created_at < ? OR (j.created_at = ? AND {self.ROWID} < ?))")
            params += [when, when, int(rowid) if rowid.isdigit() else 0]
        return clauses, params

    # ---- dashboard -----------------------------------------------------------------------------
    async def usage(self, viewer: Viewer, since: date) -> list[tuple[str, str, str, str, float, int]]:
        """(day, platform, server, user, cost, jobs) per day since a date, from the quota ledger."""
        where, params = self._visible(viewer)
        where = where.replace("j.", "q.")
        rows = await self.db.fetchall(
            "SELECT q.day, q.platform, q.server_id, q.user_id, SUM(q.amount), COUNT(*) FROM quota_ledger q "
            f"WHERE q.day >= ? AND q.state != 'refunded' AND {where} GROUP BY 1, 2, 3, 4 ORDER BY 1",
            (since.isoformat(), *params),
        )
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4] or 0), int(r[5])) for r in rows]


def _tile(row: RowLike) -> Tile:
    created = row["created_at"]
    created = created.isoformat() if isinstance(created, datetime) else created  # timestamptz on PostgreSQL
    return Tile(
        id=row["id"],
        platform=row["platform"],
        server_id=row["server_id"],
        user_id=row["user_id"],
        user_name=row["name"] or row["user_id"],
        preset=row["preset"],
        prompt=row["prompt"] or "",
        created_at=created,
        image_id=row["image"],
        cursor=f"{created}|{row['rid']}",
    )
