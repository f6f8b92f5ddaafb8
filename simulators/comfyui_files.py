"""ComfyUI's file routes (`server.py` `image_upload`, `view_image`) over the simulator's in-memory folders.

Folders map `subfolder/name` (or `name`) to bytes, per type: input, output, temp.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from PIL import Image

Folders = dict[str, dict[str, bytes]]


def _escapes(subfolder: str) -> bool:
    return ".." in subfolder.split("/") or subfolder.startswith("/")


def view(folders: Folders, query: Mapping[str, str]) -> web.Response:
    """GET /view: 400 for a bad name, 403 for a subfolder escape, 404 if missing; `preview=jpeg;80` re-encodes."""
    name = query.get("filename", "")
    if not name or name[0] == "/" or ".." in name:
        return web.Response(status=400)
    folder = folders.get(query.get("type", "output"))
    subfolder = query.get("subfolder", "")
    if folder is None:
        return web.Response(status=400)
    if _escapes(subfolder):
        return web.Response(status=403)
    data = folder.get(f"{subfolder}/{name}" if subfolder else name)
    if data is None:
        return web.Response(status=404)
    if "preview" in query:
        image_format, *rest = query["preview"].split(";")
        image_format = image_format if image_format in ("webp", "jpeg") else "webp"
        quality = int(rest[-1]) if rest and rest[-1].isdigit() else 90
        buffer = io.BytesIO()
        with Image.open(io.BytesIO(data)) as img:
            img.convert("RGB").save(buffer, format=image_format, quality=quality)
        return web.Response(body=buffer.getvalue(), content_type=f"image/{image_format}")
    return web.Response(body=data, content_type="image/png")


def upload(folders: Folders, form: Mapping[str, Any]) -> web.Response:
    """POST /upload/image: into `type`/`subfolder`; a clash is renamed "x (1).png" unless the bytes are the same."""
    image = form.get("image")
    if not isinstance(image, web.FileField) or not image.filename:
        return web.Response(status=400)
    kind = str(form.get("type") or "input")
    subfolder = str(form.get("subfolder", ""))
    folder = folders.get(kind)
    if folder is None or _escapes(subfolder):
        return web.Response(status=400)
    with image.file:  # aiohttp's temporary file: closed here, not left to the garbage collector
        data = image.file.read()
    overwrite = str(form.get("overwrite", "")) in ("true", "1")
    name, (stem, ext), counter = image.filename, os.path.splitext(image.filename), 1
    while not overwrite and (key := f"{subfolder}/{name}" if subfolder else name) in folder:
        if folder[key] == data:  # the same picture again keeps its name
            break
        name, counter = f"{stem} ({counter}){ext}", counter + 1
    folder[f"{subfolder}/{name}" if subfolder else name] = data
    return web.json_response({"name": name, "subfolder": subfolder, "type": kind})
