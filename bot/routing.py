"""Which backend may take which job, what to refuse up front, which buttons to offer, and black-image retries.

Every question goes through bot/fit.py with each worker's latest inventory. A job goes only to a
backend that can run its preset as written; a request no backend can run is refused before anything
is queued or charged; a result offers only the buttons some backend can serve. On a queue several processes
share, the other processes' backends count too, as their processes publish them (`BackendFit`, the board of
bot/shared_backends.py): per kind and preset whether they can run it at all, and for what a request adds (LoRAs,
references...) whether they gave the job back (`Stranded.marks`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, get_args

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
KINDS: tuple[JobKind, ...] = get_args(JobKind)
VARIED: tuple[JobKind, ...] = ("txt2img", "img2img")  # the kinds a variation (the V buttons) can be of


def fit_key(kind: str, preset: str, variation: bool = False) -> str:
    """A kind of job on a preset, as the board names what a backend cannot run ("txt2img:sdxl", and for a
    variation "txt2img+variation:sdxl")."""
    return f"{kind}{'+variation' if variation else ''}:{preset}"


@dataclass(frozen=True)
class BackendFit:
    """What a backend can run, as its process publishes it to the others (bot/shared_backends.py): whether it has
    answered a health check, its fit mark (bot/worker.py) and why it cannot run any job of a kind on a preset,
    for each it cannot (a preset its process does not know is absent: that process lets its backends try it)."""

    answered: bool
    mark: str
    unfit: Mapping[str, Unfit] = field(default_factory=dict, hash=False)

    def why_not(self, kind: str, preset: str, variation: bool = False) -> Unfit | None:
        """Why it cannot run any job of this kind on this preset (a variation, if asked), or None if it may."""
        reason = self.unfit.get(fit_key(kind, preset))
        return reason or (self.unfit.get(fit_key(kind, preset, True)) if variation else None)

    def rules_out(self, need: Need) -> Unfit | None:
        return self.why_not(need.kind, need.preset.name, need.variation)


def backend_fit(worker: Worker, presets: Mapping[str, Preset]) -> BackendFit:
    """A worker's fits for the board: the least a job of each kind asks of each preset (a request can only add
    to it: LoRAs, variations, references), so a kind and preset listed unfit is unfit for every such job."""
    unfit = {}
    for preset in presets.values():
        needs = [Need(preset, kind) for kind in KINDS] + [Need(preset, kind, variation=True) for kind in VARIED]
        for need in needs:
            reason = worker.fit(need)
            if reason is not None:
                unfit[fit_key(need.kind, preset.name, need.variation)] = reason
    return BackendFit(worker.answered, worker.fit_mark, unfit)


@dataclass(frozen=True)
class Stranded:
    """A queued job no backend of any process can run: ended failed with `error` if the job carries every one of
    `marks` (other processes' backends whose fits allow its kind and preset, and that gave it back as they are)."""

    job: Job
    error: Unrunnable
    marks: list[str]


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
        self.elsewhere: Callable[[], Sequence[tuple[str, BackendFit]]] = tuple  # other processes' backends

    def reasons(self, need: Need) -> list[tuple[str, Unfit]]:
        """Why each backend (of any process) cannot run the need; a backend that can (or may) is left out."""
        found = []
        for worker in self.workers:
            reason = worker.fit(need)
            if reason is not None:
                found.append((worker.backend.name, reason))
        for name, fit in self.elsewhere():
            reason = fit.rules_out(need)
            if reason is not None and (name, reason) not in found:  # two processes' backends of one name: once
                found.append((name, reason))
        return found

    def can_run(self, need: Need) -> bool:
        """Some configured backend (in rotation or not) can run it with what it last reported; another process's
        when its fits allow the need's kind and preset."""
        return self.can_run_here(need) or any(fit.rules_out(need) is None for _, fit in self.elsewhere())

    def can_run_here(self, need: Need) -> bool:
        """Some backend of this process can run it."""
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
        if not (self.workers or self.elsewhere()) or self.can_run(need):
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

    def stranded_anywhere(self, jobs: list[Job]) -> list[Stranded]:
        """`stranded` over every process's backends (a shared queue), judged once each has answered at least once.

        A backend of another process counts as unable when its fits rule out the job's kind and preset, or when it
        gave the job back as it is now: its mark goes in `Stranded.marks` for the store to check on the job.
        """
        others = list(self.elsewhere())
        if not (self.workers or others) or not all(worker.answered for worker in self.workers):
            return []
        if not all(fit.answered for _, fit in others):
            return []
        found = []
        for job in jobs:
            preset = self.presets.get(job.request.preset)
            need = None if preset is None else Need.of(preset, job.request)  # not cached: most run elsewhere
            if need is None or self.can_run_here(need):
                continue
            able = [(name, fit) for name, fit in others if fit.rules_out(need) is None]
            reasons = [*self.reasons(need), *((name, Unfit("gave_back")) for name, _ in able)]
            error = Unrunnable(need.preset.name, reasons, "fit.stranded")
            found.append(Stranded(job, error, [fit.mark for _, fit in able]))
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
