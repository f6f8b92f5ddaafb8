"""Migrations for both stores from one ordered list: storage/migrations/NNN_name.sql.

A migration is one number. `NNN_name.sql` is its SQLite SQL, and also its PostgreSQL SQL when it is
dialect-neutral; `NNN_name.pg.sql` beside it is the PostgreSQL version when the dialects differ. Each store
records the last number applied (SQLite: PRAGMA user_version; PostgreSQL: the schema_version table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

Dialect = Literal["sqlite", "postgres"]
MIGRATION_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)(\.pg)?\.sql$")


@dataclass(frozen=True)
class Migration:
    """One step of the schema, with the SQL for each dialect."""

    number: int
    name: str
    sqlite: str
    postgres: str

    def sql(self, dialect: Dialect) -> str:
        return self.sqlite if dialect == "sqlite" else self.postgres


def all_migrations() -> list[Migration]:
    """Every migration shipped in storage/migrations, in number order."""
    sqlite: dict[int, tuple[str, str]] = {}
    postgres: dict[int, str] = {}
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if not match:
            continue
        number, text = int(match.group(1)), entry.read_text(encoding="utf-8")
        if match.group(3):
            postgres[number] = text
        else:
            sqlite[number] = (match.group(2), text)
    orphans = sorted(set(postgres) - set(sqlite))
    if orphans:
        raise RuntimeError(f"migrations {orphans}: a .pg.sql file without its .sql (SQLite) file")
    return [
        Migration(number, name, text, postgres.get(number, text)) for number, (name, text) in sorted(sqlite.items())
    ]


def statements(sql: str) -> list[str]:
    """The statements of a migration file (split on `;` at a line end; no `;` inside bodies)."""
    return [statement for statement in sql.split(";\n") if statement.strip()]


def latest_migration() -> int:
    """The number of the newest migration this code ships."""
    return all_migrations()[-1].number
