"""Prometheus metrics with the official client, on a registry of their own (one per bot, none global).

Values the job queue already holds (queue depth, backend health, model switches) are read when scraped by a
collector; events only seen as they happen (finished jobs, 429s, quota denials) are counted as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.models import Job, JobState

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bot.jobs import Jobs

log = logging.getLogger(__name__)

JobsProvider = Callable[[], "Jobs | None"]  # the job queue's port, None before it exists
StateCounts = Callable[[], Awaitable[dict[str, int]]]

GENERATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
QUEUE_BUCKETS = (0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)


class JobsCollector(Collector):
    """Reads the live job queue at scrape time: queue depth per server, backend health, model switches, job states."""

    def __init__(self, jobs_provider: JobsProvider) -> None:
        self.jobs_provider = jobs_provider
        self.state_counts: dict[str, int] = {}  # refreshed from the database before each scrape

    def collect(self) -> Iterator[Metric]:
        jobs = self.jobs_provider()
        depth = GaugeMetricFamily("imagebridge_queue_depth", "Jobs waiting, per server queue.", labels=["server"])
        health = GaugeMetricFamily(
            "imagebridge_backend_healthy", "1 if the backend is in the pool, 0 if not.", labels=["backend", "kind"]
        )
        busy = GaugeMetricFamily("imagebridge_backend_busy", "1 while the backend runs a job.", labels=["backend"])
        switches = CounterMetricFamily(
            "imagebridge_model_switches", "Checkpoint changes on a backend since start.", labels=["backend"]
        )
        states = GaugeMetricFamily("imagebridge_jobs", "Jobs by state.", labels=["state"])
        if jobs is not None:
            per_server: dict[str, int] = {}
            for _, job in jobs.queued_jobs():
                per_server[job.queue_key] = per_server.get(job.queue_key, 0) + 1
            for server, count in sorted(per_server.items()):
                depth.add_metric([server], count)
            for backend in jobs.backends():
                if backend.remote:  # another process's: its own /metrics reports it (summing stays right)
                    continue
                name = backend.name
                health.add_metric([name, backend.kind], 1.0 if backend.healthy else 0.0)
                busy.add_metric([name], 1.0 if backend.current is not None else 0.0)
                switches.add_metric([name], backend.model_switches)
            for state, count in self._states(jobs).items():
                states.add_metric([state], count)
        yield from (depth, health, busy, switches, states)

    def _states(self, jobs: Jobs) -> dict[str, int]:
        counts = {state.value: 0 for state in JobState}
        counts.update(self.state_counts)
        # The queue and the workers are the truth for live jobs, whatever the last database count said.
        counts[JobState.QUEUED.value] = len(jobs.queued_jobs())
        counts[JobState.RUNNING.value] = len(jobs.running_jobs())
        return counts


class OpsMetrics:
    """All metrics of one bot. Cheap to keep even when no HTTP endpoint serves them."""

    def __init__(self, jobs_provider: JobsProvider, state_counts: StateCounts | None = None) -> None:
        self.registry = CollectorRegistry()
        self._state_counts = state_counts
        self.jobs_collector = JobsCollector(jobs_provider)
        self.registry.register(self.jobs_collector)
        self.generation_seconds = Histogram(
            "imagebridge_generation_seconds",
            "Seconds from a job starting on a backend to its outcome being stored.",
            ["backend", "preset", "state"],
            buckets=GENERATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "imagebridge_queue_wait_seconds",
            "Seconds a job waited in the queue before a backend took it.",
            ["platform"],
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.finished = Counter(
            "imagebridge_jobs_finished", "Jobs that reached a final state.", ["state"], registry=self.registry
        )
        self.rate_limited = Counter(
            "imagebridge_platform_rate_limited",
            "HTTP 429 answers from a chat platform.",
            ["platform"],
            registry=self.registry,
        )
        self.quota_denials = Counter(
            "imagebridge_quota_denials", "Requests refused because a quota was used up.", registry=self.registry
        )

    def observe_job(self, job: Job) -> None:
        """Record a job that reached its final state (the engine calls it as each job ends)."""
        self.finished.labels(job.state.value).inc()
        if job.started_at is not None:
            waited = (job.started_at - job.created_at).total_seconds()
            self.queue_seconds.labels(job.destination.platform).observe(max(0.0, waited))
            if job.finished_at is not None:
                took = (job.finished_at - job.started_at).total_seconds()
                labels = (job.backend or "", job.request.preset, job.state.value)
                self.generation_seconds.labels(*labels).observe(max(0.0, took))

    def record_rate_limited(self, platform: str) -> None:
        """Count one 429 from a chat platform."""
        self.rate_limited.labels(platform).inc()

    def record_quota_denial(self) -> None:
        """Count one request refused for quota."""
        self.quota_denials.inc()

    async def render(self) -> bytes:
        """The Prometheus text exposition, with job counts freshly read from the database."""
        if self._state_counts is not None:
            try:
                self.jobs_collector.state_counts = await self._state_counts()
            except Exception:
                log.exception("counting jobs by state failed; serving the last count")
        return generate_latest(self.registry)
