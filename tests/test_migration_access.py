"""Migration 004: interaction tokens written by older versions are removed; the queue-cap index exists."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from storage.db import Database, migrations


async def test_stored_interaction_tokens_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    first = dict(migrations())[1]
    with sqlite3.connect(path) as connection:  # a database as version 1 left it, with a token in a job row
        connection.executescript(first)
        messages = {"discord_app": "1000", "discord_token": "tok-secret-c4n4ry", "discord_channel": "700"}
        connection.execute(
            "INSERT INTO jobs (id, platform, server_id, channel_id, user_id, destination, request, preset, state, "
            "cost, created_at, messages) VALUES ('j1', 'discord', '500', '700', '42', '{}', '{}', 'sd15', "
            "'succeeded', 1.0, '2026-01-01T00:00:00+00:00', ?)",
            (json.dumps(messages),),
        )
        connection.execute("PRAGMA user_version = 1")
    db = await Database.open(path)
    try:
        row = await db.fetchone("SELECT messages FROM jobs WHERE id = 'j1'")
        index = await db.fetchone("SELECT name FROM sqlite_master WHERE name = 'jobs_queued'")
    finally:
        await db.close()
    assert row is not None and json.loads(row[0]) == {"discord_app": "1000", "discord_channel": "700"}
    assert index is not None
