"""The fit rules on their own: kind-specific features, names as the backends list them, what a server lacks."""

from __future__ import annotations

from bot.fit import BackendView, Need, why_not
from bot.ports import Capabilities, Inventory
from bot.presets import Preset

FLUX = Preset(
    name="flux",
    backend="a1111",
    checkpoint="flux1-dev-bnb-nf4-v2.safetensors",
    sampler="Euler",
    scheduler="Simple",
    cfg_scale=1.0,
    distilled_cfg_scale=3.5,
    override_settings={"forge_additional_modules": ["ae.safetensors", "clip_l.safetensors"]},
)
WEBUI = Inventory(
    checkpoints=frozenset({"Flux/flux1-dev-bnb-nf4-v2.safetensors [f0770152c8]", "sd_xl_base_1.0.safetensors [31e3]"}),
    modules=frozenset({"ae.safetensors", "clip_l.safetensors"}),
    samplers=frozenset({"euler", "dpm++ 2m"}),
    schedulers=frozenset({"simple", "karras", "automatic"}),
    loras=frozenset({"detail"}),
)


def view(kind: str, inventory: Inventory | None = WEBUI, **caps: object) -> BackendView:
    return BackendView("b", kind, Capabilities(**caps), inventory)  # type: ignore[arg-type]


def reason(need: Need, backend: BackendView) -> str | None:
    found = why_not(need, backend)
    return None if found is None else found.key


def test_forge_features_need_forge_even_in_an_a1111_preset() -> None:
    assert reason(Need(FLUX), view("forge")) is None
    assert reason(Need(FLUX), view("a1111")) == "forge_only"
    assert reason(Need(FLUX), view("sdnext")) == "forge_only"


def test_names_match_the_way_the_webui_lists_them() -> None:
    sdxl = Preset(checkpoint="sd_xl_base_1.0", sampler="DPM++ 2M Karras", scheduler=None)
    assert reason(Need(sdxl), view("a1111")) is None  # a stem, a legacy combined sampler name
    assert reason(Need(sdxl.model_copy(update={"checkpoint": "sd_xl_refiner_1.0.safetensors"})), view("a1111")) == (
        "no_checkpoint"
    )
    assert reason(Need(sdxl.model_copy(update={"sampler": "Restart"})), view("a1111")) == "no_sampler"
    assert reason(Need(sdxl.model_copy(update={"scheduler": "Beta"})), view("a1111")) == "no_scheduler"
    assert reason(Need(sdxl, loras=frozenset({"detail"})), view("a1111")) is None
    assert reason(Need(sdxl, loras=frozenset({"other"})), view("a1111")) == "no_loras"


def test_missing_modules_capabilities_and_what_a_server_lacks() -> None:
    bare = Inventory(**{**WEBUI.__dict__, "modules": frozenset({"ae.safetensors"})})
    assert reason(Need(FLUX), view("forge", bare)) == "no_modules"
    sdxl = Preset(backend="comfyui", checkpoint="sd_xl_base_1.0.safetensors")
    comfy = Inventory(checkpoints=frozenset({"sd_xl_base_1.0.safetensors"}), lacks=(("img2img", "no LoadImage"),))
    assert reason(Need(sdxl), view("comfyui", comfy, upscale=False)) is None
    assert reason(Need(sdxl, "img2img"), view("comfyui", comfy, upscale=False)) == "lacks"
    assert reason(Need(sdxl, "upscale"), view("comfyui", comfy, upscale=False)) == "no_upscale"
    assert reason(Need(sdxl, variation=True), view("comfyui", comfy)) == "no_variations"
    assert reason(Need(sdxl, count=3), view("comfyui", comfy, max_batch=1)) is None  # clients split batches
    assert reason(Need(Preset(checkpoint="x", scheduler="Karras")), view("sdnext", None)) == "sdnext_scheduler"
    assert reason(Need(Preset(checkpoint="x")), view("openai", None)) == "kind"
