"""The inbox (issue 12 item 4): a command Telegram was told we received is handled, once, even across a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.db import Database
from storage.inbox import SqliteInbox
from tests.telegram_watch import count, open_watched
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


async def seed(data_dir: Path, chat_id: int, message_id: int, update: dict[str, object]) -> None:
    """What a process killed after recording an update leaves behind: a pending inbox row."""
    db = await Database.open(data_dir / "imagebridge.sqlite3")
    try:
        assert await SqliteInbox(db).record("telegram", str(chat_id), str(message_id), json.dumps(update))
    finally:
        await db.close()


async def jobs_for(bench: Bench, chat_id: int, message_id: int) -> int:
    return await count(
        bench,
        f"SELECT COUNT(*) FROM jobs WHERE channel_id = '{chat_id}' "
        f"AND json_extract(destination, '$.source_message_id') = '{message_id}'",
    )


async def test_recorded_commands_are_replayed_once_after_a_crash(bench: Bench) -> None:
    sim = bench.sim
    # A: recorded, then confirmed to Telegram (next offset), then the process died before writing the job.
    confirmed = await sim.send_text(GROUP, 5, "/imagine@test_bot a lantern")
    update_a = sim._updates[-1]
    await sim.take_updates(update_a["update_id"] + 1, 0)
    await seed(bench.data_dir, GROUP, confirmed.message_id, update_a)
    # B: recorded but not confirmed: Telegram hands it out again, the inbox already has it.
    unconfirmed = await sim.send_text(PRIVATE, PRIVATE, "/imagine a kite")
    await seed(bench.data_dir, PRIVATE, unconfirmed.message_id, sim._updates[-1])
    assert update_a["update_id"] in sim.polls.confirmed

    watch = await open_watched(bench)
    await watch.handled(GROUP, confirmed.message_id)
    await watch.handled(PRIVATE, unconfirmed.message_id)
    await sim.wait_for(lambda: sim.polls.handed_out[sim._update_id] >= 1)
    fresh = await sim.send_text(PRIVATE, PRIVATE, "/imagine after the restart")
    await watch.handled(PRIVATE, fresh.message_id)

    assert await jobs_for(bench, GROUP, confirmed.message_id) == 1, "the confirmed command was not lost"
    assert await jobs_for(bench, PRIVATE, unconfirmed.message_id) == 1, "the redelivered command ran once"
    assert await jobs_for(bench, PRIVATE, fresh.message_id) == 1
    assert (str(PRIVATE), str(unconfirmed.message_id)) in watch.recorded, "Telegram did send it again"
    assert await count(bench, "SELECT COUNT(*) FROM inbox WHERE state = 'pending'") == 0


async def test_a_command_whose_job_was_written_is_not_run_again(bench: Bench) -> None:
    watch = await open_watched(bench)
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a bell")
    await watch.handled(PRIVATE, sent.message_id)
    assert bench.app is not None
    payload = json.dumps({"update_id": 1, "message": bench.sim.message_json(sent)})
    # Killed after the job's transaction but before the inbox row was settled.
    async with bench.app.db.transaction() as conn:
        await conn.execute("UPDATE inbox SET state = 'pending', payload = ?", (payload,))
    await bench.close()
    watch = await open_watched(bench)
    follow = await bench.sim.send_text(PRIVATE, PRIVATE, "/queue")
    await watch.handled(PRIVATE, follow.message_id)
    assert await jobs_for(bench, PRIVATE, sent.message_id) == 1
    assert await count(bench, "SELECT COUNT(*) FROM inbox WHERE state = 'pending'") == 0


async def test_settled_rows_keep_no_prompt(bench: Bench) -> None:
    watch = await open_watched(bench)
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a private matter")
    await watch.handled(PRIVATE, sent.message_id)
    assert await count(bench, "SELECT COUNT(*) FROM inbox WHERE payload LIKE '%private matter%'") == 0
    assert await count(bench, "SELECT COUNT(*) FROM inbox WHERE state = 'settled'") == 1


async def test_an_update_that_could_not_be_recorded_is_fetched_again(bench: Bench) -> None:
    watch = await open_watched(bench)
    watch.failures = 1
    sent = await bench.sim.send_text(GROUP, 5, "/imagine@test_bot a locked database")
    update_id = bench.sim._update_id
    await watch.handled(GROUP, sent.message_id)
    assert bench.sim.polls.handed_out[update_id] == 2, "not confirmed until it was recorded"
    assert watch.recorded.count((str(GROUP), str(sent.message_id))) == 2
    assert await jobs_for(bench, GROUP, sent.message_id) == 1
    follow = await bench.sim.send_text(GROUP, 5, "/queue@test_bot")
    await watch.handled(GROUP, follow.message_id)  # polling goes on


async def test_an_unreadable_inbox_row_does_not_stop_the_start(bench: Bench) -> None:
    db = await Database.open(bench.data_dir / "imagebridge.sqlite3")
    try:
        assert await SqliteInbox(db).record("telegram", str(PRIVATE), "999", "{not json")
    finally:
        await db.close()
    watch = await open_watched(bench)
    assert (str(PRIVATE), "999") in watch.settled
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/queue")
    await watch.handled(PRIVATE, sent.message_id)
