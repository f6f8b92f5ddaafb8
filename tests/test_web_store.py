"""The gallery's store on both databases: keyset pages newest first with no row twice, filters, viewer rights,
sign-in links used once, usage from the ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.app import App
from bot.models import utcnow
from commands.dispatch import dispatch_text
from storage.web import Filters, SignIn, SqliteWebStore, Viewer
from tests.conftest import AppFactory, invocation


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def finished_jobs(app_factory: AppFactory) -> tuple[App, SqliteWebStore, list[str]]:
    app = await app_factory(quota={"enabled": False})
    ids = []
    for index in range(7):
        user, server = ("alice", "s1") if index % 3 else ("bob", "s2")
        reply = await dispatch_text(app.services, invocation(user=user, server=server), f"/imagine picture {index}%_")
        assert reply is not None and reply.job_id, reply
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 10)
        ids.append(reply.job_id)
    return app, SqliteWebStore(app.db), ids  # type: ignore[arg-type]


async def test_pages_filters_and_rights(app_factory: AppFactory, store_kind: str) -> None:
    _, store, ids = await finished_jobs(app_factory)
    assert type(store).__name__ == ("PgWebStore" if store_kind == "postgres" else "SqliteWebStore")
    admin, seen, after = Viewer("console", "root", admin=True), [], None
    while page := await store.page(admin, Filters(), after, 2):
        seen += [tile.id for tile in page]
        after = page[-1].cursor
    assert seen == ids[::-1], "newest first, every job once, across pages"
    alice = Viewer("console", "alice", servers=("s1",))
    assert {tile.user_id for tile in await store.page(alice, Filters(), None, 50)} == {"alice"}
    assert await store.job(alice, ids[0]) is None and await store.job(admin, ids[0]) is not None  # bob's, in s2
    found = await store.page(admin, Filters(text="picture 4%_"), None, 50)
    assert [tile.id for tile in found] == [ids[4]], "LIKE wildcards in the search are literal"
    assert [t.id for t in await store.page(admin, Filters(user="bob", server="console:s2"), None, 50)] == [
        ids[6], ids[3], ids[0]
    ]  # fmt: skip
    assert isinstance(await store.page(admin, Filters(), "not a time|12", 5), list), "a forged cursor is no error"
    assert "console:s2" in await store.servers(admin)
    assert await store.usage(admin, utcnow().date() - timedelta(days=1)) == []  # quota off: no ledger rows


async def test_a_sign_in_link_works_once(app_factory: AppFactory) -> None:
    store = SqliteWebStore((await app_factory(start=False)).db)  # type: ignore[arg-type]
    now = utcnow()
    await store.issue("tok-1", SignIn("console", "alice", "Alice", "s9"), now + timedelta(minutes=10))
    assert await store.redeem("tok-1", now) == SignIn("console", "alice", "Alice", "s9")
    assert await store.redeem("tok-1", now) is None, "used up"
    await store.issue("tok-2", SignIn("console", "alice", "Alice", "s9"), now - timedelta(minutes=1))
    assert await store.redeem("tok-2", now) is None, "expired"
    assert await store.servers_of("console", "alice") == ("s9",)


async def test_a_private_job_is_only_its_owners_and_the_admins(app_factory: AppFactory) -> None:
    from bot.models import Destination, Job, JobState

    app, store, ids = await finished_jobs(app_factory)
    template = await app.services.store.get(ids[1])  # alice's, in s1
    assert template is not None
    where = Destination(platform="console", server_id="s1", channel_id="c1", user_id="carol", private=True)
    secret = Job(request=template.request, destination=where, cost=1.0)
    jobs = app.services.store
    await jobs.create(secret, None)
    secret.state, secret.finished_at = JobState.SUCCEEDED, utcnow()
    await jobs.save(secret)
    alice = Viewer("console", "alice", servers=("s1",))
    carol = Viewer("console", "carol", servers=("s1",))
    assert secret.id not in {tile.id for tile in await store.page(alice, Filters(), None, 50)}
    assert await store.job(alice, secret.id) is None, "not even by its id"
    assert secret.id in {tile.id for tile in await store.page(carol, Filters(), None, 50)}
    assert await store.job(Viewer("console", "root", admin=True), secret.id) is not None
