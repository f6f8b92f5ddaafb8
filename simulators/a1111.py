"""A faithful stand-in for the AUTOMATIC1111 / Forge ``/sdapi/v1`` API, on aiohttp.

Generations run one at a time in arrival order behind a FIFO lock, holding their connection
open; ``/progress`` reads the global state without the lock. Wire shapes, error bodies and
quirks follow shared/reference/backends.md §1, §2 and §8. Tests drive it through the public
attributes (``running``, ``requests``, ``model_switches``...) and the fault hooks
(``fail_next``, ``hang_next``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal, cast

from aiohttp import web

from simulators.a1111_catalog import (
    A1111_VAES,
    DEFAULT_CHECKPOINTS,
    FORGE_MODULES,
    UPSCALERS,
    VERSIONS,
    Checkpoint,
    CheckpointCatalog,
    Flavour,
    default_options,
)
from simulators.a1111_jobs import (
    JobPlan,
    check_in_job,
    decode_init_images,
    echo_parameters,
    info_json,
    render_batch,
)
from simulators.a1111_routes import build_app
from simulators.a1111_state import PreviewSource, ProgressState, RecordedRequest

log = logging.getLogger(__name__)

__all__ = ["A1111Simulator", "RecordedRequest", "build_app", "serve"]

# How long stop() lets in-flight handlers run before their connections are dropped.
_SHUTDOWN_GRACE = 0.05


class A1111Simulator:
    """An A1111 (or Forge, with ``flavour="forge"``) server on loopback.

    ``seconds_per_step`` is the sampling time per step, ``model_load_seconds`` the time a
    checkpoint switch takes, ``auth`` the ``--api-auth`` user and password,
    ``preview_every`` the ``show_progress_every_n_steps`` option and ``previews`` whether
    live previews are on. ``checkpoints``, ``modules`` (Forge's VAE / text-encoder files, A1111's
    VAEs), ``loras`` and ``upscalers`` are what the list endpoints report.
    """

    def __init__(
        self,
        *,
        flavour: Literal["a1111", "forge"] = "a1111",
        seconds_per_step: float = 0.01,
        model_load_seconds: float = 0.2,
        checkpoints: list[str] | None = None,
        modules: list[str] | None = None,
        loras: list[str] | None = None,
        upscalers: list[str] | None = None,
        auth: tuple[str, str] | None = None,
        preview_every: int = 5,
        previews: bool = True,
    ) -> None:
        if flavour not in ("a1111", "forge"):
            raise ValueError(f"unknown flavour {flavour!r}")
        self.flavour: Flavour = flavour
        self.seconds_per_step = seconds_per_step
        self.model_load_seconds = model_load_seconds
        self.auth = auth
        self.catalog = CheckpointCatalog(checkpoints or list(DEFAULT_CHECKPOINTS))
        # Forge's /sd-modules (VAE and text encoders) or A1111's /sd-vae, and /loras: file names.
        self.modules = list(FORGE_MODULES if flavour == "forge" else A1111_VAES) if modules is None else modules
        self.loras = list(loras or [])
        # The upscaler models installed (``/upscalers``); "None", "Lanczos" and "Nearest" are always there.
        self.upscalers = [u for u in UPSCALERS if upscalers is None or u.model_name is None or u.name in upscalers]
        self._loaded: Checkpoint = self.catalog.checkpoints[0]
        self.options: dict[str, Any] = default_options(flavour, self._loaded, preview_every, previews)
        self.version = VERSIONS[flavour]
        self.url = ""
        self.model_switches = 0
        self.completed_jobs = 0
        self.requests: list[RecordedRequest] = []
        self.running = asyncio.Event()
        self.state = ProgressState()
        self.lock = asyncio.Lock()  # asyncio.Lock hands itself to waiters in FIFO order
        self._wake = asyncio.Event()  # set by /interrupt and /skip to cut a step short
        self._changed = asyncio.Condition()
        self._faults: dict[str, list[tuple[int, Any]]] = {}
        self._hangs: dict[str, int] = {}
        self._crash_prompts: list[str] = []
        self.crashes = 0  # generations that took the server down (crash_on)
        self._runner: web.AppRunner | None = None

    # ----- public attributes and hooks -------------------------------------------------

    @property
    def loaded_checkpoint(self) -> str:
        """Title of the checkpoint in memory."""
        return self._loaded.title

    @property
    def loaded(self) -> Checkpoint:
        return self._loaded

    def fail_next(self, path: str, status: int, body: Any, times: int = 1) -> None:
        """The next ``times`` POSTs to ``path`` answer ``status`` with JSON ``body``."""
        self._faults.setdefault(path, []).extend([(status, body)] * times)

    def hang_next(self, path: str) -> None:
        """The next POST to ``path`` never answers; stop() drops its connection."""
        self._hangs[path] = self._hangs.get(path, 0) + 1

    def crash_on(self, text: str) -> None:
        """Every generation whose prompt contains ``text`` takes the WebUI down while it runs, as a CUDA fault or
        the OOM killer does to its process: the connection is dropped without an answer. The server is back
        at once (a supervisor restarts it), so health checks pass and the same prompt crashes it again."""
        self._crash_prompts.append(text)

    def crashes_on(self, prompt: str) -> bool:
        crashed = any(text in prompt for text in self._crash_prompts)
        self.crashes += crashed
        return crashed

    async def wait_for_step(self, step: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (public API)
        """Return once a running job has reached sampling step ``step``."""
        await self._wait(lambda: self.running.is_set() and self.state.sampling_step >= step, timeout)

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once ``count`` requests in all have been received (and recorded)."""
        await self._wait(lambda: len(self.requests) >= count, timeout)

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port); returns the base URL."""
        runner = web.AppRunner(build_app(self), shutdown_timeout=_SHUTDOWN_GRACE, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        sockets = [s for s in runner.addresses if isinstance(s, tuple)]
        bound_port = sockets[0][1] if sockets else port
        self.url = f"http://{host}:{bound_port}"
        log.info("%s simulator listening on %s", self.flavour, self.url)
        return self.url

    async def stop(self) -> None:
        """Close the server; requests still in flight have their connections dropped."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.running.clear()
        log.info("%s simulator on %s stopped", self.flavour, self.url)

    # ----- hooks used by the routes ----------------------------------------------------

    async def record(self, entry: RecordedRequest) -> None:
        self.requests.append(entry)
        await self._notify()

    def take_fault(self, path: str) -> tuple[int, Any] | None:
        queue = self._faults.get(path)
        return queue.pop(0) if queue else None

    def take_hang(self, path: str) -> bool:
        if self._hangs.get(path, 0) <= 0:
            return False
        self._hangs[path] -= 1
        return True

    def interrupt(self) -> None:
        """``state.interrupt()``: lost if nothing is running, since the next job resets it."""
        self.state.interrupted = True
        self._wake.set()

    def skip(self) -> None:
        self.state.skipped = True
        self._wake.set()

    # ----- jobs ------------------------------------------------------------------------

    async def generate(self, plan: JobPlan, init_images: list[str] | None) -> dict[str, Any]:
        """Run one txt2img/img2img job behind the queue lock; returns the 200 body."""
        async with self.lock:
            if init_images is not None:  # decoded inside the lock, as img2imgapi does
                plan.init_images = decode_init_images(self.flavour, init_images)
            self.state.begin("scripts_txt2img" if plan.kind == "txt2img" else "scripts_img2img")
            self._wake.clear()
            self.running.set()
            stored = self.options["sd_model_checkpoint"]
            try:
                checkpoint = await self._checkpoint_for(plan)
                check_in_job(self.flavour, plan, {u.name for u in self.upscalers})
                infotexts, encoded = await self._sample(plan, checkpoint)
                body = {
                    "images": encoded if plan.send_images else [],
                    "parameters": echo_parameters(plan),
                    "info": info_json(plan, checkpoint, self.version, infotexts, self.state.job_timestamp),
                }
                self.completed_jobs += 1
                return body
            finally:
                if plan.restore_afterwards:  # option values only: the weights stay loaded
                    self.options["sd_model_checkpoint"] = stored
                self.state.end()
                self.running.clear()
                await self._notify()

    async def _checkpoint_for(self, plan: JobPlan) -> Checkpoint:
        """Apply ``override_settings.sd_model_checkpoint``, then load the option's model."""
        override = plan.override_checkpoint
        if override is not None:
            found = self.catalog.find(override)
            if found is not None:
                self.options["sd_model_checkpoint"] = found.title
            # Both drop an unknown override silently (process_images pops it before set_config) and run the
            # job on the model the options name: the image comes from another checkpoint, with a 200.
        wanted = self.catalog.find(self.options["sd_model_checkpoint"]) or self._loaded
        if wanted != self._loaded:
            await self._load(wanted)
        return self._loaded

    async def _load(self, checkpoint: Checkpoint) -> None:
        job = self.state.job
        self.state.job = "load model"
        log.info("loading %s", checkpoint.title)
        await asyncio.sleep(self.model_load_seconds)
        self._loaded = checkpoint
        self.options["sd_checkpoint_hash"] = checkpoint.sha256
        self.model_switches += 1
        self.state.job = job

    async def load_from_options(self, checkpoint: Checkpoint) -> None:
        """A1111's ``sd_model_checkpoint`` onchange: wait for the queue, then load."""
        async with self.lock:
            self.state.begin("load model")
            try:
                if checkpoint != self._loaded:
                    await self._load(checkpoint)
            finally:
                self.state.end()

    async def with_lock(self, job: str, steps: int, check: Callable[[], None] | None = None) -> None:
        """A short locked job (extras) that shows up in ``/progress``; ``check`` may raise."""
        async with self.lock:
            self.state.begin(job)
            self._wake.clear()
            self.state.job_count = 1
            try:
                if check is not None:
                    check()
                await self._run_steps(steps)
            finally:
                self.state.end()

    async def _sample(self, plan: JobPlan, checkpoint: Checkpoint) -> tuple[list[str], list[str]]:
        state = self.state
        state.job_count = plan.n_iter * len(plan.passes)
        w, h = plan.out_size
        infotexts: list[str] = []
        encoded: list[str] = []
        for n in range(plan.n_iter):
            if state.skipped:
                state.skipped = False
                self._wake.clear()
            if state.interrupted or state.stopping_generation:
                break
            if plan.n_iter > 1:
                state.job = f"Batch {n + 1} out of {plan.n_iter}"
            seed = plan.all_seeds[n * plan.batch_size]
            state.preview = PreviewSource(plan.prompt, seed, w, h, plan.is_black(checkpoint))
            for steps in plan.passes:
                await self._run_steps(steps)
                state.nextjob()
                if state.interrupted or state.skipped:
                    break
            batch = await asyncio.to_thread(render_batch, plan, checkpoint, self.version, n)
            encoded.extend(image for image, _ in batch)
            infotexts.extend(text for _, text in batch)
        return infotexts, encoded

    async def _run_steps(self, steps: int) -> None:
        state = self.state
        state.sampling_steps = steps
        state.sampling_step = 0
        for i in range(steps):
            if state.interrupted or state.skipped or state.stopping_generation:
                return
            await self._pause(self.seconds_per_step)
            if state.interrupted or state.skipped:
                return
            state.sampling_step = i + 1
            await self._notify()

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)


async def serve(
    port: int,
    flavour: str,
    seconds_per_step: float,
    model_load_seconds: float,
    auth: tuple[str, str] | None,
    host: str = "127.0.0.1",
) -> None:
    """Run a simulator until cancelled (``imagebridge simulate a1111``)."""
    if flavour not in ("a1111", "forge"):
        raise ValueError(f"unknown flavour {flavour!r}; use 'a1111' or 'forge'")
    sim = A1111Simulator(
        flavour=cast(Flavour, flavour),
        seconds_per_step=seconds_per_step,
        model_load_seconds=model_load_seconds,
        auth=auth,
    )
    url = await sim.start(host, port)
    print(f"A1111 simulator ({flavour}) on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
