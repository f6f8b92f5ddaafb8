"""One worker per backend: take the next fair job, run it, store the result, hand it to delivery.

The worker never waits on a chat platform: progress goes to the notifier, which only records it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import asdict, is_dataclass
from typing import cast

from bot import presenter
from bot.errors import BackendError, BackendUnavailable
from bot.fit import BackendView, Need, Unfit, why_not
from bot.i18n import t
from bot.imagecheck import ImageFacts, inspect
from bot.lifecycle import stop_tasks
from bot.logs import current_job
from bot.models import GenerationResult, Job, JobState, Progress, StoredImage, utcnow
from bot.pool import PoolPolicy, check
from bot.ports import Backend, Editor, ImageFiles, Inventory, JobStore, ProgressCallback
from bot.routing import Router
from bot.settings import Settings
from bot.worksource import StatusSink, WorkSource

log = logging.getLogger(__name__)


def _sorted(value: object) -> object:
    """JSON for what an inventory holds: sets in a fixed order (the same digest in every process)."""
    if isinstance(value, frozenset | set):
        return sorted(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(type(value).__name__)


class BlackImage(BackendError):
    """Every image came back all black (NaN in the model or VAE, or Flux with the wrong settings)."""


def black_image_error(job: Job) -> BlackImage:
    """An all-black result: for Flux the preset's settings, otherwise a NaN in the model or VAE."""
    flux = "flux" in job.request.checkpoint.lower()
    return BlackImage.of("backend.black_flux" if flux else "backend.black")


class Worker:
    """Runs jobs on one backend, one at a time."""

    def __init__(
        self,
        work: WorkSource,
        backend: Backend,
        *,
        store: JobStore,
        files: ImageFiles,
        notifier: StatusSink,
        router: Router,
        settings: Settings,
    ) -> None:
        self.work = work  # the queue: next job, outcomes
        self.backend = backend
        self.store = store
        self.files = files
        self.notifier = notifier
        self.router = router
        self.settings = settings
        self.consecutive_errors = 0
        self.current: Job | None = None
        self.loaded_checkpoint: str | None = None
        self.healthy = True
        self.health_detail = ""
        self.drained = False  # an admin's /admin drain: finish the running job, take no new ones (health keeps it)
        self.completed = 0
        self.model_switches = 0
        self._finishing: set[asyncio.Task[None]] = set()
        self._notice = ""  # why the current job moved here from another backend, shown with its progress
        self.inventory: Inventory | None = None  # what the backend last reported having
        self.answered = False  # a health check has passed at least once
        self._fits: dict[tuple[object, ...], Unfit | None] = {}
        self._fit_mark: str | None = None

    def set_inventory(self, inventory: Inventory | None) -> bool:
        """A passing health check's inventory; True when what the backend has changed."""
        first, self.answered = not self.answered, True
        if inventory is None or inventory == self.inventory:
            return first
        self.inventory = inventory
        self._fits.clear()
        self._fit_mark = None
        return True

    @property
    def fit_mark(self) -> str:
        """This backend as routing judges it now: its name and a digest of what it can do and has. A shared queue
        marks a job this backend gave back with it, and offers the job again once what the backend has changes."""
        if self._fit_mark is None:
            view = {"capabilities": asdict(self.backend.capabilities), "inventory": self.inventory}
            text = json.dumps(view, sort_keys=True, default=_sorted)
            self._fit_mark = f"{self.backend.name}#{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        return self._fit_mark

    def fit(self, need: Need) -> Unfit | None:
        """Why this backend cannot run the need as written (None: it can), from what it last reported."""
        key = need.key
        if key not in self._fits:
            view = BackendView(self.backend.name, self.backend.kind, self.backend.capabilities, self.inventory)
            self._fits[key] = why_not(need, view)
        return self._fits[key]

    @property
    def policy(self) -> PoolPolicy:
        return self.work.pool_policy()

    def take_out(self, reason: str) -> None:
        """Out of rotation until a health check passes."""
        if self.healthy:
            log.warning("backend %s leaves the pool: %s", self.backend.name, reason)
        self.healthy = False
        self.health_detail = reason

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            await stop_tasks(self._finishing)

    async def _loop(self) -> None:
        await check(self)  # learn the loaded checkpoint (affinity) and whether it answers at all
        while True:
            if not self.healthy:
                await self._wait_until_healthy()
            job = await self.work.next_job(self)
            self.current = job
            try:
                await self.process(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                await self._crashed(job)
            finally:
                self.current = None
                current_job.set(None)
                self.work.released()

    async def _crashed(self, job: Job) -> None:
        log.exception("job %s: unexpected error in worker %s", job.id, self.backend.name)
        job.state = JobState.FAILED
        job.error = t(presenter.lang_of(job), "backend.crashed", job=job.id)
        await self.work.complete(job, [], None)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._finishing.discard(task)
        self.work.released()

    @property
    def busy(self) -> bool:
        """Running a job, or still storing and delivering one."""
        return self.current is not None or bool(self._finishing)

    async def interrupt(self) -> None:
        if self.current is not None:
            try:
                await self.backend.interrupt(self.current.id)
            except BackendError as exc:
                log.warning("interrupt on %s failed: %s", self.backend.name, exc)

    async def process(self, job: Job) -> None:
        current_job.set(job.id)  # every log line of this job, and of tasks it starts, carries its id
        work = self.work
        job.state = JobState.RUNNING
        job.started_at = utcnow()
        if not work.store_counts_attempts:  # a shared store counted this attempt when the job was claimed
            job.attempts += 1
        job.backend = self.backend.name
        job.backend_task_id = job.id
        # The "running" row is written beside the request, not before it: the backend starts at once, and a
        # crash in between leaves the job "queued", which a restart runs again exactly as it would "running".
        saved = asyncio.get_running_loop().create_task(self.store.save(job), name=f"running-{job.id}")
        self._notice = work.take_move_note(job.id)
        where = presenter.on_backend(job, self.backend.name)
        self._on_progress(job, Progress(note=where))
        if job.request.checkpoint != self.loaded_checkpoint:
            self.model_switches += int(self.loaded_checkpoint is not None)
        started = time.monotonic()
        try:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation racing completion.
                async with asyncio.timeout(self.settings.limits.job_timeout_seconds):
                    result = await self._run_on_backend(job)
            finally:
                await saved  # every later write about this job comes after the "running" one
        except TimeoutError:
            await self.interrupt()
            timeout = self.settings.limits.job_timeout_seconds
            await self._failed(job, BackendError.of("backend.timeout", retryable=True, seconds=timeout))
            return
        except BackendUnavailable as exc:
            await self._unavailable(job, exc)
            return
        except BackendError as exc:
            await self._failed(job, exc)
            return
        self.loaded_checkpoint = job.request.checkpoint
        self.consecutive_errors = 0
        if work.stop_requested(job.id):  # interrupted by a shutdown, not by the user
            await work.requeue(job)
            return
        if work.cancel_requested(job.id) or result.interrupted:
            job.state = JobState.CANCELLED
            await work.complete(job, [], None)
            return
        # Storing and delivering run beside the next generation: the backend never waits on us.
        elapsed = time.monotonic() - started
        task = asyncio.get_running_loop().create_task(self._finish(job, result, elapsed), name=f"finish-{job.id}")
        self._finishing.add(task)
        task.add_done_callback(self._finished)

    async def _finish(self, job: Job, result: GenerationResult, elapsed: float) -> None:
        try:
            stored = await self._store_images(job, result)
        except BlackImage as exc:
            await self._black(job, exc)
            return
        except BackendError as exc:
            await self._failed(job, exc)
            return
        except Exception:
            await self._crashed(job)
            return
        per_step = elapsed / max(1, job.request.count) / job.request.step_megapixels
        self.work.note_timing(job.request.preset, per_step)
        await self.store.record_timing(job.request.preset, per_step)
        job.state = JobState.SUCCEEDED
        job.error = None
        self.completed += 1
        await self.work.complete(job, stored, job.cost)

    def _on_progress(self, job: Job, progress: Progress) -> None:
        if self._notice:  # keep telling the user why the job moved, whatever the backend reports
            progress = progress.model_copy(update={"note": " · ".join(filter(None, [progress.note, self._notice]))})
        self.notifier.publish(job, presenter.running(job, progress))

    async def _run_on_backend(self, job: Job) -> GenerationResult:
        """`edit()` for an edit (references read from the store: a restart changes nothing), else `generate()`."""
        report: ProgressCallback = lambda p: self._on_progress(job, p)  # noqa: E731
        if job.request.kind != "edit":
            return await self.backend.generate(job.id, job.request, await self._source_bytes(job), report)
        if not self.backend.capabilities.edits:
            raise BackendError.of("backend.no_edits", name=self.backend.name)
        sources = [await self._stored_bytes(image_id) for image_id in job.request.reference_image_ids]
        return await cast(Editor, self.backend).edit(job.id, job.request, sources, report)

    async def _stored_bytes(self, image_id: str) -> bytes:
        image = await self.store.image(image_id)
        if image is None:
            raise BackendError.of("backend.source_gone")
        return await self.files.read(image.path)

    async def _source_bytes(self, job: Job) -> bytes | None:
        image_id = job.request.source_image_id
        if image_id is None:
            return None
        image = await self.store.image(image_id)
        if image is None:
            raise BackendError.of("backend.source_gone")
        return await self.files.read(image.path)

    async def _store_images(self, job: Job, result: GenerationResult) -> list[StoredImage]:
        if not result.images:
            raise BackendError.of("backend.no_images", retryable=True)
        facts: list[ImageFacts] = await asyncio.to_thread(lambda: [inspect(image.data) for image in result.images])
        if all(fact.black for fact in facts):
            raise black_image_error(job)
        stored = []
        for index, (image, fact) in enumerate(zip(result.images, facts, strict=True)):
            extension = "png" if fact.format == "PNG" else fact.format.lower()
            path = await self.files.write(job.id, f"{index + 1}.{extension}", image.data)
            stored.append(
                StoredImage(
                    id=f"{job.id}-{index}",
                    job_id=job.id,
                    index=index,
                    path=path,
                    sha256=fact.sha256,
                    width=fact.width,
                    height=fact.height,
                    seed=image.seed,
                    infotext=image.infotext or fact.infotext,
                )
            )
        return stored

    async def _failed(self, job: Job, error: BackendError) -> None:
        limits = self.settings.limits
        if self.work.cancel_requested(job.id):
            job.state = JobState.CANCELLED
            await self.work.complete(job, [], None)
            return
        if error.key == "backend.wrong_checkpoint" and await self._moved_after_recheck(job):
            return
        if error.retryable:
            self.consecutive_errors += 1
            if self.consecutive_errors >= self.policy.max_consecutive_errors:
                self.take_out(f"{self.consecutive_errors} jobs failed in a row ({error.user_message})")
        if error.retryable and job.attempts < limits.max_attempts:
            log.warning("job %s attempt %d failed on %s: %s; retrying", job.id, job.attempts, self.backend.name, error)
            await asyncio.sleep(limits.retry_backoff_seconds * job.attempts)
            await self.work.requeue(job)
            return
        log.warning("job %s failed on %s: %s", job.id, self.backend.name, error)
        job.state = JobState.FAILED
        job.error = error.localized(presenter.lang_of(job))  # the job's language; the log line above stays English
        await self.work.complete(job, [], None)

    async def _moved_after_recheck(self, job: Job) -> bool:
        """The backend lacked what its last check listed: read its inventory again, and requeue the job if
        another backend can run it."""
        await check(self)
        router = self.router
        need = router.need(job)
        if need is None or router.runs(self, job) or not router.can_run(need):
            return False
        log.warning("job %s: %s no longer has %s; requeued", job.id, self.backend.name, job.request.checkpoint)
        await self.work.requeue(job)
        return True

    async def _black(self, job: Job, error: BlackImage) -> None:
        """Retry once where it can help (another backend, else a new seed), then explain."""
        where = None if self.work.cancel_requested(job.id) else self.router.retry_black(job, self)
        if where is None:
            await self._failed(job, error)
            return
        lang = presenter.lang_of(job)
        if where:
            note = t(lang, "fit.black_elsewhere", backend=self.backend.name, others=where)
        else:
            note = t(lang, "fit.black_new_seed", backend=self.backend.name, seed=job.request.seed)
            await self.store.set_request(job)  # before the requeue: the rerun, a restart and Info read this seed
        log.warning("job %s came back black on %s; retrying (%s)", job.id, self.backend.name, where or "new seed")
        self.work.note_move(job.id, note)
        await self.work.requeue(job)
        self.notifier.publish(job, presenter.moving(job, note))

    async def _unavailable(self, job: Job, error: BackendUnavailable) -> None:
        log.warning("backend %s unavailable during job %s: %s", self.backend.name, job.id, error)
        self.take_out(error.user_message)
        if not error.mid_job:
            job.attempts -= 1  # the backend never had it running: this attempt does not count
        elif job.attempts >= self.settings.limits.max_attempts:  # it may be what brings the backend down
            lost = BackendError.of("backend.lost_too_often", name=self.backend.name, times=job.attempts)
            await self._failed(job, lost)
            return
        others = self.router.others(self, job)
        if others:
            reason = error.localized(presenter.lang_of(job))
            self.work.note_move(job.id, presenter.moved_note(job, self.backend.name, reason))
            status = presenter.moving(job, reason)
        else:
            status = presenter.waiting_for_backend(job, self.work.why_waiting(presenter.lang_of(job)))
        await self.work.requeue(job)
        self.notifier.publish(job, status)

    async def _wait_until_healthy(self) -> None:
        delays = self.policy.health_delays
        attempt = 0
        while not self.healthy:
            await asyncio.sleep(delays[min(attempt, len(delays) - 1)])
            attempt += 1
            if await check(self):
                await self.work.wake_workers()
