from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InvalidRequest
from bot.presets import Preset, size_for


def preset(**kwargs: object) -> Preset:
    return Preset(name="p", checkpoint="c", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base", "aspect", "size"),
    [(1024, "1:1", (1024, 1024)), (1024, "16:9", (1344, 768)), (1024, "9:16", (768, 1344)), (512, "3:2", (640, 448))],
)
def test_sizes(base: int, aspect: str, size: tuple[int, int]) -> None:
    assert size_for(base, aspect) == size


@given(st.sampled_from([512, 768, 1024, 1536]), st.integers(1, 21), st.integers(1, 21))
def test_sizes_are_multiples_of_64_near_the_base_area(base: int, w: int, h: int) -> None:
    width, height = size_for(base, f"{w}:{h}")
    assert width % 64 == 0 and height % 64 == 0
    if max(w, h) / min(w, h) <= 4:
        assert 0.7 < width * height / base**2 < 1.35


def test_aspect_not_offered_lists_the_allowed_ones() -> None:
    with pytest.raises(InvalidRequest, match="Allowed: 1:1, 16:9"):
        preset(aspect_ratios=["1:1", "16:9"]).size("21:9")


def test_lora_policies() -> None:
    prompt = "a cat <lora:ok:0.8> <lora:bad:1>"
    assert preset().render_prompt(prompt) == prompt
    assert preset(lora_policy="strip", lora_allowlist=["ok"]).render_prompt(prompt) == "a cat <lora:ok:0.8>"
    with pytest.raises(InvalidRequest, match=r"bad.*Allowed LoRAs: ok"):
        preset(lora_policy="deny", lora_allowlist=["ok"]).render_prompt(prompt)


def test_templates_and_cost() -> None:
    p = preset(prompt_template="masterpiece, {prompt}", default_negative="blurry", cost_weight=2)
    assert p.render_prompt("fox") == "masterpiece, fox"
    assert p.render_negative(None) == "blurry"
    assert p.render_negative("text") == "text"
    assert p.cost(20, 1024, 1024, 2) == pytest.approx(20 * 1.048576 * 2 * 2, rel=1e-3)
