"""A real, throwaway PostgreSQL server for the test session (Debian's postgresql package), no mock.

initdb in a temp folder, postgres on a free loopback port (and a socket in that folder), stopped at the
end. postgres refuses to run as root, so as root the server runs as Debian's `postgres` user. Without the
binaries the PostgreSQL tests skip saying why, unless IMAGEBRIDGE_REQUIRE_POSTGRES=1 (CI) makes that a failure.
Each test gets its own database, copied from a template that holds the migrated schema.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

TEMPLATE = "imagebridge_template"
PASSWORD_ROLE = "bot_with_password"  # a login that needs its password (tests of IMAGEBRIDGE_STORAGE_PASSWORD)
_names = itertools.count()


@dataclass(frozen=True)
class PostgresServer:
    """A running server: the DSN of a database by name."""

    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"


def postgres_bin() -> Path | None:
    """Debian's versioned folder (the newest), else whatever `pg_ctl` is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _unavailable(reason: str) -> None:
    if os.environ.get("IMAGEBRIDGE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (IMAGEBRIDGE_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason} (Debian: apt-get install postgresql)")


def _make_template(server: PostgresServer) -> None:
    """Create the template database and migrate it with our own code (in a thread: no loop runs here)."""
    import asyncpg

    from storage.postgres.db import PgDatabase

    async def build() -> None:
        admin = await asyncpg.connect(server.url())
        try:
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await admin.close()
        db = await PgDatabase.open(SecretStr(server.url(TEMPLATE)), pool_size=2)
        await db.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build()).result()


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A server in a temp folder, with the migrated template database; stopped and removed on exit."""
    binaries = postgres_bin()
    if binaries is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) were found")
    assert binaries is not None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to run the server as")
    folder = Path(tempfile.mkdtemp(prefix="imagebridge-pg-"))
    if os.geteuid() == 0:
        os.chown(folder, account.pw_uid, account.pw_gid)
    data, port = folder / "data", free_port()
    _run([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
    hba = data / "pg_hba.conf"  # the role PASSWORD_ROLE must give its password; every other role is trusted
    hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text(), encoding="utf-8")
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"])
    server = PostgresServer("127.0.0.1", port)
    try:
        _make_template(server)
        yield server
    finally:
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's server (started on first use)."""
    with running_postgres() as server:
        yield server


async def fresh_database(server: PostgresServer) -> str:
    """A new database holding the migrated schema; returns its URL."""
    import asyncpg

    name = f"t{os.getpid()}_{next(_names)}"
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    return server.url(name)


async def drop_database(server: PostgresServer, url: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


def read_pg(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query, read with psql (synchronous, for polling predicates): numbers as numbers, JSON as text."""
    binaries = postgres_bin()
    assert binaries is not None
    query = f"SELECT COALESCE(json_agg(t), '[]') FROM ({sql}) t"
    done = subprocess.run(
        [str(binaries / "psql"), "-X", "-A", "-t", "-q", "-d", url, "-c", query],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    if done.returncode != 0:
        return []  # not there yet (the bot creates the schema at its first start)
    rows = json.loads(done.stdout or "[]")
    return [
        tuple(json.dumps(value) if isinstance(value, dict | list) else value for value in row.values()) for row in rows
    ]


@pytest.fixture(name="url")
async def database_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh migrated database's URL, dropped after the test (fixture `url`)."""
    made = await fresh_database(postgres_server)
    yield made
    await drop_database(postgres_server, made)
