"""`POST /v1/images/edits` as the OpenAI API documents it (openai-python `types/image_edit_params.py`).

multipart/form-data: `image` (one file) or `image[]` (several, as the official client sends a list), `prompt`,
`model`, `n`, `size`, `quality`, `response_format` (dall-e-2 only), optional `mask` (PNG, the first image's size).
dall-e-2 takes one square PNG under 4 MB whose transparent pixels (or the mask's) mark what to edit; the GPT image
models take up to 16 png/webp/jpg files under 50 MB each and always answer in base64. The edited picture mixes the
first image with a prompt-drawn one and tints it toward the other references, so it depends on every input.
Messages are OpenAI's own where known (the mimetype and RGBA ones are quoted in client issues); the rest follow its
`Invalid 'x': ...` style.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError

from simulators.images import average_colour, b64, encode_png, render_image, tint

if TYPE_CHECKING:
    from simulators.openai_images import OpenAIImagesSimulator

BAD = "invalid_request_error"
EDIT_SIZES = {
    "dall-e-2": ["256x256", "512x512", "1024x1024"],
    "gpt-image-1": ["1024x1024", "1536x1024", "1024x1536", "auto"],
}
MIMETYPES = ("image/png", "image/jpeg", "image/webp")
FIELDS = {"prompt", "model", "n", "size", "quality", "response_format", "background", "output_format",
          "output_compression", "input_fidelity", "user", "stream", "partial_images"}  # fmt: skip


@dataclass
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


def envelope(status: int, message: str, param: str | None = None, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": BAD, "param": param, "code": code}}
    return web.json_response(body, status=status)


async def read_form(request: web.Request) -> tuple[dict[str, str], list[Upload]] | web.Response:
    if request.content_type != "multipart/form-data":
        return envelope(400, f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data.")
    fields: dict[str, str] = {}
    uploads: list[Upload] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            kind = part.headers.get("Content-Type", "application/octet-stream")
            uploads.append(Upload(part.name, part.filename, kind, bytes(await part.read())))
        else:
            fields[part.name] = await part.text()
    return fields, uploads


async def handle(sim: OpenAIImagesSimulator, request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {sim.api_key}":
        return envelope(401, "Incorrect API key provided.", code="invalid_api_key")
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    fields, uploads = form
    sim.edit_requests.append({**fields, "files": [(u.field, u.filename, u.content_type, len(u.data)) for u in uploads]})
    checked = check(fields, uploads)
    if isinstance(checked, web.Response):
        return checked
    images, mask = checked
    model = fields.get("model", "dall-e-2")
    width, height = _size(fields, images[0])
    as_url = model == "dall-e-2" and fields.get("response_format", "url") == "url"
    data = []
    for _ in range(int(fields.get("n", "1"))):
        number = sim.next_number()
        edited = encode_png(edit(images, mask, fields["prompt"], number, (width, height), model), None)
        data.append(
            {"url": sim.blob.put(f"edit-{number}.png", edited, "image/png")} if as_url else {"b64_json": b64(edited)}
        )
    answer: dict[str, Any] = {"created": int(time.time()), "data": data}
    if model.startswith("gpt-image"):
        answer["usage"] = {
            "input_tokens": 50 * len(images),
            "output_tokens": 100,
            "total_tokens": 50 * len(images) + 100,
        }
    return web.json_response(answer)


def check(fields: dict[str, str], uploads: list[Upload]) -> tuple[list[Image.Image], Image.Image | None] | web.Response:
    """The documented rules, in the order the API reports them; the decoded images when all hold."""
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        return envelope(400, f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
    model = fields.get("model", "dall-e-2")
    if model not in EDIT_SIZES:
        return envelope(400, f"Invalid value: '{model}'. Value must be 'dall-e-2' or a GPT image model.", "model",
                        "invalid_value")  # fmt: skip
    prompt = fields.get("prompt")
    if not prompt:
        return envelope(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if len(prompt) > (1000 if model == "dall-e-2" else 32000):
        return envelope(400, f"Prompt is too long for {model}.", "prompt", "string_above_max_length")
    problem = _numbers(fields, model)
    if problem is not None:
        return problem
    files = [u for u in uploads if u.field in ("image", "image[]")]
    if not files:
        return envelope(400, "Missing required parameter: 'image'.", "image", "missing_required_parameter")
    decoded = _dalle2_image(files) if model == "dall-e-2" else _gpt_images(files)
    if isinstance(decoded, web.Response):
        return decoded
    mask = _mask([u for u in uploads if u.field == "mask"], decoded[0])
    if isinstance(mask, web.Response):
        return mask
    return decoded, mask


def _numbers(fields: dict[str, str], model: str) -> web.Response | None:
    n = fields.get("n", "1")
    if not n.lstrip("-").isdigit():
        return envelope(
            400, "Invalid type for 'n': expected an integer, but got a string instead.", "n", "invalid_type"
        )
    if not 1 <= int(n) <= 10:
        return envelope(400, f"Invalid 'n': expected a value between 1 and 10, but got {n} instead.", "n",
                        "integer_above_max_value" if int(n) > 10 else "integer_below_min_value")  # fmt: skip
    size = fields.get("size")
    if size is not None and size not in EDIT_SIZES[model]:
        return envelope(400, f"Invalid value: '{size}'. Supported values are: " +
                        ", ".join(f"'{s}'" for s in EDIT_SIZES[model]) + ".", "size", "invalid_value")  # fmt: skip
    if "response_format" in fields and model != "dall-e-2":
        return envelope(400, "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter")
    return None


def _decode(data: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.copy() if img.format else None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _dalle2_image(files: list[Upload]) -> list[Image.Image] | web.Response:
    if len(files) > 1:
        return envelope(400, "Invalid 'image': dall-e-2 accepts only one image.", "image", "invalid_value")
    upload = files[0]
    img = _decode(upload.data)
    if img is None or upload.content_type != "image/png" or len(upload.data) >= 4 * 1024 * 1024:
        return envelope(400, "Uploaded image must be a PNG and less than 4 MB.", "image", "invalid_image_format")
    if img.width != img.height:
        return envelope(400, "Uploaded image must be square.", "image", "invalid_image")
    if img.mode not in ("RGBA", "LA", "L"):
        return envelope(400, f"Invalid input image - format must be in ['RGBA', 'LA', 'L'], got {img.mode}.", "image",
                        "invalid_image_format")  # fmt: skip
    return [img]


def _gpt_images(files: list[Upload]) -> list[Image.Image] | web.Response:
    if len(files) > 16:
        return envelope(400, "Invalid 'image': array too long. Expected an array with maximum length 16, but got an "
                        f"array with length {len(files)} instead.", "image", "array_above_max_length")  # fmt: skip
    images = []
    for number, upload in enumerate(files, 1):
        if upload.content_type not in MIMETYPES:
            return envelope(400, f"Invalid file '{upload.field}': unsupported mimetype ('{upload.content_type}'). "
                            "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.", upload.field,
                            "unsupported_file")  # fmt: skip
        if len(upload.data) >= 50 * 1024 * 1024:
            return envelope(400, f"Invalid file '{upload.field}': file too large (50 MB at most).", upload.field)
        img = _decode(upload.data)
        if img is None:
            return envelope(400, f"Invalid image file or mode for image {number}, please check your image file.",
                            upload.field, "invalid_image_file")  # fmt: skip
        images.append(img)
    return images


def _mask(files: list[Upload], first: Image.Image) -> Image.Image | web.Response | None:
    if not files:
        return None
    img = _decode(files[0].data)
    if img is None or files[0].content_type != "image/png" or len(files[0].data) >= 4 * 1024 * 1024:
        return envelope(400, "Invalid 'mask': it must be a PNG and less than 4 MB.", "mask", "invalid_image_format")
    if img.size != first.size:
        return envelope(400, "Invalid 'mask': it must have the same dimensions as the image.", "mask", "invalid_value")
    return img


def _size(fields: dict[str, str], first: Image.Image) -> tuple[int, int]:
    size = fields.get("size") or "auto"
    if size == "auto":  # the GPT models pick the standard size closest to the first image's shape
        ratio = first.width / first.height
        return (1536, 1024) if ratio > 1.2 else (1024, 1536) if ratio < 1 / 1.2 else (1024, 1024)
    width, height = (int(part) for part in size.split("x"))
    return width, height


def edit(
    images: list[Image.Image], mask: Image.Image | None, prompt: str, number: int, size: tuple[int, int], model: str
) -> Image.Image:
    """The first image, changed where the mask (or its own transparency) allows, tinted by the other references."""
    base = images[0].convert("RGBA").resize(size)
    drawn = render_image(prompt, number, *size)
    if model == "dall-e-2":  # inpainting: only the transparent pixels change; an opaque image comes back as it was
        where = (mask or images[0]).convert("RGBA").resize(size).getchannel("A").point(lambda a: 255 if a == 0 else 0)
        return Image.composite(drawn, base.convert("RGB"), where)
    result = Image.blend(base.convert("RGB"), drawn, 0.35)
    for reference in images[1:]:
        result = tint(result, average_colour(reference), 0.25)
    return result
