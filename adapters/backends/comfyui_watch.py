"""Reading one prompt's events from the ComfyUI WebSocket (ComfyUI v0.3.64 `main.py`, `server.py`, `execution.py`).

- A sampling step sends, in this order: `progress_state`, the metadata preview (event 4) to a socket that
  negotiated `supports_preview_metadata`, `progress`, and the plain preview (event 1) to any other socket.
  So the preview arrives *before* its `progress`: every progress keeps the latest preview.
- A prompt queued without a client_id (the web UI, scripts) sends `progress` and plain previews to every
  socket. Metadata previews carry their prompt_id; a plain preview is ours only when we did not negotiate
  metadata and the `progress` just before it was ours.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from adapters.backends.comfyui_errors import execution_error
from bot.errors import BackendUnavailable
from bot.models import Progress
from bot.ports import ProgressCallback


@dataclass
class Running:
    """One prompt of a job: its id, what we saw of it, and the cancel that may arrive at any time."""

    prompt_id: str = ""
    index: int = 0  # which image of the job (each image is its own prompt)
    count: int = 1
    previews: bool = True
    started: bool = False
    wanted_cancel: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    metadata: bool = False  # the server answered our feature_flags: our previews come as event 4
    ours_last: bool = False  # the last progress on the socket was our prompt's (for plain previews)
    preview: bytes | None = None
    last: Progress = field(default_factory=Progress)

    def progress(self, value: int, top: int) -> Progress:
        """Progress over the whole job: image `index` of `count`, step `value` of `top`."""
        fraction = (self.index + value / top) / self.count
        return Progress(fraction=fraction, step=self.index * top + value, steps=self.count * top, preview=self.preview)


def preview_of(frame: bytes, running: Running) -> bytes | None:
    """The image of a binary frame if it is a preview of our prompt, else None."""
    if len(frame) < 8 or not running.previews:
        return None
    event, second = struct.unpack(">II", frame[:8])
    if event == 1:  # plain: no prompt id; ours only if metadata was not negotiated and the last progress was ours
        return frame[8:] if not running.metadata and running.ours_last else None
    if event == 4:
        try:
            meta = json.loads(frame[8 : 8 + second])
        except ValueError:
            return None
        return frame[8 + second :] if isinstance(meta, dict) and meta.get("prompt_id") == running.prompt_id else None
    return None


async def watch(ws: ClientConnection, running: Running, on_progress: ProgressCallback, name: str) -> bool:
    """Read events until our prompt's `executing` node null. Returns whether it was interrupted."""
    interrupted = False
    async for frame in ws:
        if isinstance(frame, bytes):
            preview = preview_of(frame, running)
            if preview is not None:
                running.preview = preview
                running.last = running.last.model_copy(update={"preview": preview})
                on_progress(running.last)
            continue
        message = json.loads(frame)
        kind, data = message.get("type"), message.get("data") or {}
        if kind == "feature_flags":
            running.metadata = bool(data.get("supports_preview_metadata"))
            continue
        ours = data.get("prompt_id") == running.prompt_id
        if kind == "progress":
            running.ours_last = ours
        if not ours:
            continue
        if kind == "execution_start":
            running.started = True
        elif kind == "progress":
            running.last = running.progress(int(data.get("value", 0)), max(1, int(data.get("max", 1))))
            on_progress(running.last)
        elif kind == "execution_error":
            raise execution_error(data)
        elif kind == "execution_interrupted":
            interrupted = True
        elif kind == "executing" and data.get("node") is None:
            return interrupted
    raise BackendUnavailable.of("backend.comfy_closed", name=name)
