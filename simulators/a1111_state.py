"""The simulated server's global job state, as ``modules/shared_state.py`` keeps it.

``/progress`` reads it without the queue lock; it describes whatever job runs now, and keeps
stale values (``job_no``, ``sampling_step``, ``interrupted``...) after the job ends, as A1111 does.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

from simulators import images

log = logging.getLogger(__name__)


@dataclass
class RecordedRequest:
    """One request the simulator received: ``json`` is the parsed body (None if absent or not JSON)."""

    method: str
    path: str
    json: Any
    auth_ok: bool


@dataclass(frozen=True)
class PreviewSource:
    """What the running job is drawing, so a live preview can be rendered on demand."""

    prompt: str
    seed: int
    width: int
    height: int
    black: bool


_PREVIEW_MAX_SIDE = 512


@dataclass
class ProgressState:
    """A1111's ``shared.state``: flags, counters and the live preview."""

    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    time_start: float = 0.0
    textinfo: str | None = None
    current_image: str | None = None
    current_image_sampling_step: int = 0
    preview: PreviewSource | None = None

    def begin(self, job: str) -> None:
        """``state.begin()``: a job starts; flags are reset, so an earlier interrupt is lost."""
        self.sampling_step = 0
        self.time_start = time.monotonic()
        self.job_count = -1
        self.job_no = 0
        self.job_timestamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
        self.current_image = None
        self.current_image_sampling_step = 0
        self.preview = None
        self.skipped = False
        self.interrupted = False
        self.stopping_generation = False
        self.textinfo = None
        self.job = job

    def end(self) -> None:
        """``state.end()``: only the job name and count are cleared."""
        self.job = ""
        self.job_count = 0
        self.preview = None

    def nextjob(self) -> None:
        """One batch (or hires pass) done."""
        self.job_no += 1
        self.sampling_step = 0
        self.current_image_sampling_step = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "interrupted": self.interrupted,
            "stopping_generation": self.stopping_generation,
            "job": self.job,
            "job_count": self.job_count,
            "job_timestamp": self.job_timestamp,
            "job_no": self.job_no,
            "sampling_step": self.sampling_step,
            "sampling_steps": self.sampling_steps,
        }

    def _refresh_preview(self, every: int) -> None:
        """``set_current_image``: draw a new preview once ``every`` more steps have passed."""
        source = self.preview
        if source is None or every < 0 or self.sampling_step == 0:
            return
        if self.sampling_step - self.current_image_sampling_step < every:
            return
        scale = min(1.0, _PREVIEW_MAX_SIDE / max(source.width, source.height))
        w, h = max(8, int(source.width * scale)), max(8, int(source.height * scale))
        final = images.render_image(source.prompt, source.seed, w, h, black=source.black)
        fraction = self.sampling_step / self.sampling_steps if self.sampling_steps > 0 else 1.0
        self.current_image = images.b64(images.encode_png(images.partial_image(final, fraction), None))
        self.current_image_sampling_step = self.sampling_step

    def progress_body(self, *, skip_current_image: bool, previews: bool, every: int) -> dict[str, Any]:
        """The GET ``/progress`` answer (``progressapi``)."""
        body: dict[str, Any]
        if self.job_count == 0:
            body = {
                "progress": 0,
                "eta_relative": 0,
                "state": self.as_dict(),
                "current_image": None,
                "textinfo": self.textinfo,
            }
        else:
            progress = 0.01 + self.job_no / self.job_count
            if self.sampling_steps > 0:
                progress += 1 / self.job_count * self.sampling_step / self.sampling_steps
            elapsed = time.monotonic() - self.time_start
            eta_relative = elapsed / progress - elapsed if progress else 0.0
            if previews and not skip_current_image:
                self._refresh_preview(every)
            body = {
                "progress": min(progress, 1),
                "eta_relative": eta_relative,
                "state": self.as_dict(),
                "current_image": self.current_image,
                "textinfo": self.textinfo,
            }
        if skip_current_image:  # the model's default: null, not absent
            body["current_image"] = None
        return body
