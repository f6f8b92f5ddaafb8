"""/healthz and /metrics against a running bot (real engine, SQLite, FakeBackend) over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.ops import MetricsConfig, OpsServer, create
from bot.app import App
from bot.models import JobState
from commands.dispatch import dispatch_text
from storage.maintenance import count_jobs_by_state
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def submit(app: App, prompt: str, user: str = "u1") -> str:
    reply = await dispatch_text(app.services, invocation(user=user), f"/imagine {prompt}")
    assert reply is not None and reply.job_id
    return reply.job_id


@pytest.fixture
async def platforms() -> dict[str, bool]:
    return {"console": True}


@pytest.fixture
async def ops(app_factory: AppFactory, platforms: dict[str, bool]) -> AsyncIterator[tuple[App, OpsServer, FakeBackend]]:
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend)
    server = OpsServer(lambda: app.engine, lambda: platforms, 0, state_counts=lambda: count_jobs_by_state(app.db))
    await server.start()
    try:
        yield app, server, backend
    finally:
        await server.stop()


async def test_healthz_reports_loop_platforms_and_backends(ops: tuple[App, OpsServer, FakeBackend]) -> None:
    _, server, _ = ops
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["loop"] == "alive"
    assert body["platforms"] == {"console": True}
    assert body["backends"] == {"fake": True}


async def test_healthz_is_503_when_a_platform_is_disconnected(
    ops: tuple[App, OpsServer, FakeBackend], platforms: dict[str, bool]
) -> None:
    _, server, _ = ops
    platforms["telegram"] = False
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["platforms"] == {"console": True, "telegram": False}


async def test_healthz_is_503_when_no_backend_is_healthy(ops: tuple[App, OpsServer, FakeBackend]) -> None:
    app, server, _ = ops
    app.engine.workers[0].take_out("test says so")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["backends"] == {"fake": False}


async def test_metrics_while_a_job_runs_and_after_it_finished(ops: tuple[App, OpsServer, FakeBackend]) -> None:
    app, server, backend = ops
    first = await submit(app, "a lighthouse")
    async with asyncio.timeout(5):
        await backend.started.wait()
    second = await submit(app, "a harbour", user="u2")
    async with httpx.AsyncClient(base_url=server.url) as client:
        during = samples((await client.get("/metrics")).text)
        assert during[("imagebridge_queue_depth", (("server", "console:s1"),))] == 1
        assert during[("imagebridge_jobs", (("state", "running"),))] == 1
        assert during[("imagebridge_jobs", (("state", "queued"),))] == 1
        assert during[("imagebridge_backend_healthy", (("backend", "fake"), ("kind", "a1111")))] == 1
        assert during[("imagebridge_backend_busy", (("backend", "fake"),))] == 1
        assert during[("imagebridge_model_switches_total", (("backend", "fake"),))] == 0

        backend.release.set()
        async with asyncio.timeout(5):
            for job_id in (first, second):
                await app.engine.finished_event(job_id).wait()
        for job_id in (first, second):
            job = await app.services.store.get(job_id)
            assert job is not None and job.state is JobState.SUCCEEDED
            server.observe_job(job)
        server.record_rate_limited("discord")
        server.record_quota_denial()
        response = await client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    assert not any(name == "imagebridge_queue_depth" for name, _ in after)
    assert after[("imagebridge_jobs", (("state", "succeeded"),))] == 2
    assert after[("imagebridge_jobs", (("state", "queued"),))] == 0
    generation = (("backend", "fake"), ("preset", app.settings.first_preset), ("state", "succeeded"))
    assert after[("imagebridge_generation_seconds_count", generation)] >= 1
    assert after[("imagebridge_queue_wait_seconds_count", (("platform", "console"),))] == 2
    assert after[("imagebridge_jobs_finished_total", (("state", "succeeded"),))] == 2
    assert after[("imagebridge_platform_rate_limited_total", (("platform", "discord"),))] == 1
    assert after[("imagebridge_quota_denials_total", ())] == 1


async def test_each_server_has_its_own_registry(app_factory: AppFactory) -> None:
    app = await app_factory()
    one = OpsServer(lambda: app.engine, dict, 0)
    two = OpsServer(lambda: app.engine, dict, 0)
    one.record_quota_denial()
    assert b"imagebridge_quota_denials_total 1.0" in await one.metrics.render()
    assert b"imagebridge_quota_denials_total 0.0" in await two.metrics.render()


def test_create_serves_only_with_a_port() -> None:
    metrics, server = create({}, lambda: None, dict)
    assert server is None and metrics is not None
    metrics, server = create(MetricsConfig(port=9100, host="0.0.0.0"), lambda: None, dict)
    assert server is not None and server.port == 9100 and server.metrics is metrics
    with pytest.raises(ValueError, match="prot"):
        create({"prot": 1}, lambda: None, dict)
