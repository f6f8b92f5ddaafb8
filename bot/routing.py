"""Which backend may take which job, what to refuse up front, which buttons to offer, and black-image retries.

Every question goes through bot/fit.py with each worker's latest inventory. A job goes only to a
backend that can run its preset as written; a request no backend can run is refused before anything
is queued or charged; a result offers only the buttons some backend can serve.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from bot.errors import InvalidRequest
from bot.fit import Need, Unfit, lora_names
from bot.i18n import t
from bot.models import GenerationRequest, Job, JobKind
from bot.presets import Preset
from bot.replies import Action

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1


class Unrunnable(InvalidRequest):
    """No configured backend can run this request as written; says why for each, in the user's language."""

    def __init__(self, preset: str, reasons: list[tuple[str, Unfit]], key: str = "fit.refused") -> None:
        self.preset = preset
        self.reasons = reasons
        super().__init__(t("en", key, preset=preset, reasons=self._reasons("en")), key=key)

    def _reasons(self, lang: str | None) -> str:
        reasons = "; ".join(f"{name}: {reason.text(lang)}" for name, reason in self.reasons)
        return reasons or t(lang, "fit.no_backends")

    def localized(self, lang: str | None) -> str:
        return t(lang, self.key or "fit.refused", preset=self.preset, reasons=self._reasons(lang))


class Router:
    """Routing decisions for one engine's workers."""

    def __init__(self, workers: list[Worker], presets: dict[str, Preset]) -> None:
        self.workers = workers
        self.presets = presets
        self.avoid: dict[str, set[str]] = {}  # job id -> backends that must not run it again (black image)
        self.black_retried: set[str] = set()  # jobs that had their one retry after a black image
        self._needs: dict[str, Need | None] = {}  # job id -> what it asks (a pick asks for each job it passes)

    def reasons(self, need: Need) -> list[tuple[str, Unfit]]:
        """Why each backend cannot run the need; a backend that can is left out."""
        found = []
        for worker in self.workers:
            reason = worker.fit(need)
            if reason is not None:
                found.append((worker.backend.name, reason))
        return found

    def can_run(self, need: Need) -> bool:
        """Some configured backend (in rotation or not) can run it with what it last reported."""
        return any(worker.fit(need) is None for worker in self.workers)

    def check(
        self, preset: Preset, kind: JobKind, count: int, prompt: str, variation: bool = False, references: int = 0
    ) -> None:
        """Refuse (Unrunnable) what no backend can run: before anything is stored, queued or charged."""
        loras = lora_names(prompt) if kind not in ("upscale", "edit") else frozenset()
        self._refuse_unless_runnable(Need(preset, kind, count, variation, loras, references))

    def check_request(self, request: GenerationRequest) -> None:
        preset = self.presets.get(request.preset)
        if preset is not None:
            self._refuse_unless_runnable(Need.of(preset, request))

    def _refuse_unless_runnable(self, need: Need) -> None:
        if not self.workers or self.can_run(need):
            return
        raise Unrunnable(need.preset.name, self.reasons(need))

    def runs(self, worker: Worker, job: Job) -> bool:
        """Whether this worker may take this job now."""
        if worker.backend.name in self.avoid.get(job.id, ()):
            return False
        need = self.need(job)
        return need is None or worker.fit(need) is None

    def need(self, job: Job) -> Need | None:
        """What the job asks of a backend; None when its preset left the config (any backend may try)."""
        if job.id not in self._needs:
            preset = self.presets.get(job.request.preset)
            self._needs[job.id] = None if preset is None else Need.of(preset, job.request)
        return self._needs[job.id]

    def stranded(self, jobs: list[Job]) -> list[tuple[Job, Unrunnable]]:
        """Queued jobs no backend can run any more (a checkpoint was removed, a restart with a new config).

        Judged only once every backend has answered at least once: one never reached may have what they need.
        """
        if not self.workers or not all(worker.answered for worker in self.workers):
            return []
        found = []
        for job in jobs:
            need = self.need(job)
            if need is not None and not self.can_run(need):
                found.append((job, Unrunnable(need.preset.name, self.reasons(need), "fit.stranded")))
        return found

    def others(self, worker: Worker, job: Job) -> list[Worker]:
        """Workers in rotation, other than this one, that can run the job."""
        return [w for w in self.workers if w is not worker and w.healthy and not w.drained and self.runs(w, job)]

    def offered(self, job: Job) -> frozenset[Action]:
        """The result buttons some backend can serve for this job."""
        actions = {Action.INFO, Action.DELETE}
        if self.can_edit():  # an edit runs on an edit preset, whatever made the image
            actions.add(Action.EDIT)
        preset = self.presets.get(job.request.preset)
        if preset is None:
            return frozenset(actions)
        request = job.request
        if request.kind == "upscale":
            return frozenset(actions)
        references = len(request.reference_image_ids)
        if self.can_run(Need(preset, request.kind, request.count, references=references)):
            actions.add(Action.REROLL)
        if self.can_run(Need(preset, request.kind, request.count, variation=True, references=references)):
            actions.add(Action.VARY)
        if self.can_run(Need(preset, "upscale")):
            actions.add(Action.UPSCALE)
        return frozenset(actions)

    def can_edit(self) -> bool:
        """Some edit preset (max_references > 0) can run an edit of one image: the Edit button is offered."""
        return any(
            self.can_run(Need(preset, "edit", 1, references=1))
            for preset in self.presets.values()
            if preset.max_references > 0
        )

    def retry_black(self, job: Job, worker: Worker) -> str | None:
        """One retry after an all-black result, never with the same backend and seed: another backend that can
        run the preset, else the same one with a new seed. Returns where it goes ("" for a new seed), or None."""
        if job.id in self.black_retried:
            return None
        self.black_retried.add(job.id)
        self.avoid.setdefault(job.id, set()).add(worker.backend.name)
        others = self.others(worker, job)
        if others:
            return ", ".join(other.backend.name for other in others)
        self.avoid.pop(job.id, None)
        job.request = job.request.model_copy(update={"seed": secrets.randbelow(MAX_SEED + 1)})
        return ""

    def forget(self, job_id: str) -> None:
        self.avoid.pop(job_id, None)
        self._needs.pop(job_id, None)
        self.black_retried.discard(job_id)
