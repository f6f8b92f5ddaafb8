"""Fast, deterministic stand-in images for the backend simulators.

Pictures are built from Pillow's C-level gradients and a few shapes whose colours and
positions come from a sha256 of the prompt and seed, so the same (prompt, seed) always
gives the same pixels and a 1024x1024 renders and encodes in a few milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import re
from collections.abc import Mapping

from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

log = logging.getLogger(__name__)

# Backgrounds are drawn small and scaled up: the picture stays smooth and cheap.
_BASE_SIDE = 128


def _digest(prompt: str, seed: int) -> bytes:
    return hashlib.sha256(f"{prompt}\x00{seed}".encode()).digest()


def _colour(digest: bytes, offset: int) -> tuple[int, int, int]:
    return (digest[offset % 32], digest[(offset + 1) % 32], digest[(offset + 2) % 32])


def _base_image(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    d = _digest(prompt, seed)
    angle = d[9] * 360 / 256
    ramp = Image.linear_gradient("L").rotate(angle, resample=Image.Resampling.BILINEAR, expand=False)
    ramp = ramp.resize((_BASE_SIDE, _BASE_SIDE), Image.Resampling.BILINEAR)
    background = ImageOps.colorize(ramp, _colour(d, 0), _colour(d, 3), _colour(d, 6))
    glow = Image.radial_gradient("L").resize((_BASE_SIDE, _BASE_SIDE), Image.Resampling.BILINEAR)
    glow = glow.transform(
        glow.size,
        Image.Transform.AFFINE,
        (1, 0, (d[10] - 128) / 4, 0, 1, (d[11] - 128) / 4),
        fillcolor=255,
    )
    spot = Image.new("RGB", glow.size, _colour(d, 12))
    background = Image.composite(background, spot, glow)
    # Smooth at half size, then 2x2 blocks: PNG encoding (the costly part) gets much cheaper.
    half = background.resize((max(1, (width + 1) // 2), max(1, (height + 1) // 2)), Image.Resampling.BILINEAR)
    img = half.resize((width, height), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    for i in range(4):
        base = 16 + i * 4
        x0 = d[base] * width // 256
        y0 = d[base + 1] * height // 256
        size = (d[base + 2] % 96 + 32) * min(width, height) // 512 + 4
        colour = _colour(d, base + 3)
        box = (x0, y0, x0 + size, y0 + size)
        if d[base + 3] % 2:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return img


def render_image(
    prompt: str,
    seed: int,
    width: int,
    height: int,
    *,
    black: bool = False,
    subseed: int | None = None,
    subseed_strength: float = 0.0,
) -> Image.Image:
    """An RGB picture that depends only on the arguments.

    ``subseed_strength`` > 0 blends toward the subseed's picture by that fraction, the way a
    variation moves away from its parent; ``black`` gives the all-black failure image.
    """
    if black:
        return Image.new("RGB", (width, height), (0, 0, 0))
    img = _base_image(prompt, seed, width, height)
    if subseed is not None and subseed_strength > 0:
        other = _base_image(prompt, subseed, width, height)
        img = Image.blend(img, other, min(max(subseed_strength, 0.0), 1.0))
    return img


def partial_image(final: Image.Image, fraction: float) -> Image.Image:
    """A half-denoised look: the final picture fading in from grey as sampling advances."""
    grey = Image.new("RGB", final.size, (128, 128, 128))
    return Image.blend(grey, final, min(max(fraction, 0.0), 1.0))


def tint(img: Image.Image, colour: tuple[int, int, int], amount: float = 0.35) -> Image.Image:
    """Blend a flat colour over ``img`` (img2img uses it to show the input's influence)."""
    return Image.blend(img, Image.new("RGB", img.size, colour), amount)


def average_colour(img: Image.Image) -> tuple[int, int, int]:
    """The mean colour of an image, cheaply (via a 1x1 resize)."""
    pixel = img.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def encode_png(img: Image.Image, infotext: str | None, extra: Mapping[str, str] | None = None) -> bytes:
    """PNG bytes, with ``infotext`` in a text chunk named ``parameters`` as A1111 writes it."""
    meta: PngImagePlugin.PngInfo | None = None
    if infotext is not None or extra:
        meta = PngImagePlugin.PngInfo()
        if infotext is not None:
            meta.add_text("parameters", infotext)
        for key, value in (extra or {}).items():
            meta.add_text(key, value)
    out = io.BytesIO()
    img.save(out, format="PNG", pnginfo=meta, compress_level=1)
    return out.getvalue()


def encode_jpeg(img: Image.Image, quality: int = 70) -> bytes:
    """JPEG bytes, for previews."""
    out = io.BytesIO()
    img.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def b64(data: bytes) -> str:
    """Bare base64 text (no ``data:`` prefix), as the A1111 API sends images."""
    return base64.b64encode(data).decode("ascii")


def decode_image(data: bytes) -> Image.Image:
    """Open and fully load image bytes; raises ``ValueError`` if they are not an image."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not an image: {exc}") from exc
    return img


def decode_b64_image(text: str) -> Image.Image:
    """Decode base64 (optionally a ``data:image/...;base64,`` URI) to an image; ``ValueError`` if bad."""
    if text.startswith("data:image/"):
        try:
            text = text.split(";", 1)[1].split(",", 1)[1]
        except IndexError as exc:
            raise ValueError("malformed data URI") from exc
    try:
        raw = base64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    return decode_image(raw)


def quote_infotext(value: str) -> str:
    """A1111's ``infotext_utils.quote``: JSON-quote values holding separators."""
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def infotext_for(
    prompt: str,
    *,
    negative_prompt: str = "",
    steps: int,
    sampler: str,
    scheduler: str | None = None,
    cfg_scale: float,
    seed: int,
    width: int,
    height: int,
    model_hash: str,
    model_name: str,
    version: str,
    subseed: int | None = None,
    subseed_strength: float = 0.0,
    denoising_strength: float | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """An A1111-style generation-parameters text (the PNG ``parameters`` chunk)."""
    params: dict[str, object] = {"Steps": steps, "Sampler": sampler}
    if scheduler and scheduler != "Automatic":
        params["Schedule type"] = scheduler
    params.update(
        {
            "CFG scale": cfg_scale,
            "Seed": seed,
            "Size": f"{width}x{height}",
            "Model hash": model_hash,
            "Model": model_name,
        }
    )
    if subseed is not None and subseed_strength > 0:
        params["Variation seed"] = subseed
        params["Variation seed strength"] = subseed_strength
    if denoising_strength is not None:
        params["Denoising strength"] = denoising_strength
    params.update(extra or {})
    params["Version"] = version
    body = ", ".join(f"{k}: {quote_infotext(str(v))}" for k, v in params.items() if v is not None)
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(body)
    return "\n".join(lines).strip()


_INFOTEXT_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_infotext(text: str) -> dict[str, str]:
    """A small ``parse_generation_parameters``: prompt, negative prompt and the key: value pairs."""
    lines = text.strip().split("\n")
    last = lines[-1] if lines else ""
    pairs = _INFOTEXT_PAIR.findall(last)
    if len(pairs) < 3:
        pairs = []
    else:
        lines = lines[:-1]
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        if line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:") :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    res = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in pairs:
        if value.startswith('"') and value.endswith('"'):
            value = json.loads(value)
        if key == "Size" and "x" in value:
            res["Size-1"], res["Size-2"] = value.split("x", 1)
        else:
            res[key] = value
    return res
