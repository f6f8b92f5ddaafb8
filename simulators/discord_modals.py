"""Modals in the Discord simulator: the MODAL callback (type 9) Discord accepts, and the MODAL_SUBMIT it sends back.

From discord-api-docs (interactions/receiving-and-responding.mdx, components/reference.mdx):
- A modal is `{"custom_id": 1-100 chars, "title": at most 45 chars, "components": 1-5}`. Each component is a
  Label (type 18: `label` at most 45, `description` at most 100, one `component`) or, deprecated but still
  accepted, an Action Row (type 1) holding exactly one Text Input that carries its own `label` (at most 45).
- A Text Input (type 4): `custom_id` 1-100 (unique in the modal), `style` 1 (short) or 2 (paragraph),
  `min_length` 0-4000, `max_length` 1-4000, `value` at most 4000, `placeholder` at most 100, `required`
  (default true). Anything else in a modal is "The specified component type is invalid in this context".
- A bad modal is refused with 400 / 50035 "Invalid Form Body" and an `errors` tree naming the field, e.g.
  `{"data": {"title": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH", "message": "..."}]}}}`.
- Which callback types fit which interaction: MODAL (9) only answers a command (2) or a component (3), never a
  MODAL_SUBMIT (5) or autocomplete (4); the error is 50035 "In type: Value must be one of {...}"
  (Rapptz/discord.py#9187). DEFERRED_UPDATE / UPDATE_MESSAGE (6, 7) need a message: components, and modal
  submits of modals opened from a component.
- The submit echoes the modal's layout with the values typed (`{"type": 18, "id", "component": {"type": 4,
  "id", "custom_id", "value"}}`); an optional input left empty comes back as `""`. The Discord client enforces
  `required`, `min_length` and `max_length` before it lets the user submit.
"""

from __future__ import annotations

from typing import Any

TEXT_INPUT, ACTION_ROW, LABEL = 4, 1, 18
MAX_INPUT = 4000
RESPONSES = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5}}  # interaction type -> callback types allowed
INVALID_HERE = "The specified component type is invalid in this context"


class FormError(Exception):
    """A 50035 "Invalid Form Body" with the path of the field Discord names (`data.components.0.label`)."""

    def __init__(self, path: str, message: str, code: str = "BASE_TYPE_BAD_LENGTH") -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message, self.code = path, message, code

    def errors(self) -> dict[str, Any]:
        """The nested `errors` object of Discord's error body."""
        tree: dict[str, Any] = {"_errors": [{"code": self.code, "message": self.message}]}
        for part in reversed(self.path.split(".")):
            tree = {part: tree}
        return tree


def allowed_responses(kind: int, has_message: bool) -> set[int]:
    """The callback types Discord accepts for an interaction of this type."""
    allowed = set(RESPONSES.get(kind, set()))
    if kind == 5 and has_message:
        allowed |= {6, 7}
    return allowed


def check_response_type(kind: int, response: Any, has_message: bool) -> None:
    allowed = allowed_responses(kind, has_message)
    if response not in allowed:
        values = ", ".join(str(value) for value in sorted(allowed))
        raise FormError("type", f"Value must be one of {{{values}}}.", "ENUM_TYPE_COERCE")


def _length(path: str, value: Any, low: int, high: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise FormError(path, f"Must be between {low} and {high} in length.")


def _bound(path: str, value: Any, low: int, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FormError(path, f"int value should be between {low} and {high}.", "NUMBER_TYPE_MAX")


def _check_input(path: str, item: Any, seen: set[str]) -> None:
    if not isinstance(item, dict) or item.get("type") != TEXT_INPUT:
        raise FormError(f"{path}.type", INVALID_HERE, "COMPONENT_TYPE_INVALID")
    _length(f"{path}.custom_id", item.get("custom_id"), 1, 100)
    if item["custom_id"] in seen:
        raise FormError(
            f"{path}.custom_id", "Component custom id cannot be duplicated", "COMPONENT_CUSTOM_ID_DUPLICATED"
        )
    seen.add(item["custom_id"])
    if item.get("style") not in (1, 2):
        raise FormError(f"{path}.style", "Value must be one of {1, 2}.", "ENUM_TYPE_COERCE")
    _bound(f"{path}.min_length", item.get("min_length"), 0, MAX_INPUT)
    _bound(f"{path}.max_length", item.get("max_length"), 1, MAX_INPUT)
    if item.get("min_length", 0) > item.get("max_length", MAX_INPUT):
        raise FormError(f"{path}.min_length", "Must be less than or equal to max_length.", "BASE_TYPE_BAD_VALUE")
    _length(f"{path}.value", item.get("value"), 0, min(MAX_INPUT, item.get("max_length", MAX_INPUT)), optional=True)
    _length(f"{path}.placeholder", item.get("placeholder"), 0, 100, optional=True)


def check_modal(data: Any) -> None:
    """Raise FormError for the first thing Discord would refuse in a MODAL callback's `data`."""
    if not isinstance(data, dict):
        raise FormError("data", "This field is required", "BASE_TYPE_REQUIRED")
    _length("data.custom_id", data.get("custom_id"), 1, 100)
    _length("data.title", data.get("title"), 1, 45)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        raise FormError("data.components", "Must be between 1 and 5 in length.", "BASE_TYPE_BAD_LENGTH")
    seen: set[str] = set()
    for number, component in enumerate(components):
        path = f"data.components.{number}"
        kind = component.get("type") if isinstance(component, dict) else None
        if kind == LABEL:
            _length(f"{path}.label", component.get("label"), 1, 45)
            _length(f"{path}.description", component.get("description"), 0, 100, optional=True)
            _check_input(f"{path}.component", component.get("component"), seen)
        elif kind == ACTION_ROW:
            children = component.get("components")
            if not isinstance(children, list) or len(children) != 1:
                raise FormError(f"{path}.components", "Must be 1 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
            _check_input(f"{path}.components.0", children[0], seen)
            _length(f"{path}.components.0.label", children[0].get("label"), 1, 45)
        else:
            raise FormError(f"{path}.type", INVALID_HERE, "COMPONENT_TYPE_INVALID")


def inputs(modal: dict[str, Any]) -> list[dict[str, Any]]:
    """The text inputs of a (checked) modal, in order."""
    found = []
    for component in modal["components"]:
        found.append(component["component"] if component["type"] == LABEL else component["components"][0])
    return found


def _typed(item: dict[str, Any], values: dict[str, str]) -> str:
    """What the user typed into one input; ValueError when the Discord client would not let them submit it."""
    value = values.get(item["custom_id"], item.get("value") or "")
    if item.get("required", True) and not value:
        raise ValueError(f"{item['custom_id']} is required: the client will not submit the modal without it")
    low, high = item.get("min_length", 0), item.get("max_length", MAX_INPUT)
    if value and not low <= len(value) <= high:
        raise ValueError(f"{item['custom_id']}: the client takes {low}-{high} characters, not {len(value)}")
    return value


def submitted(modal: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    """`data.components` of the MODAL_SUBMIT for these values, in the modal's own layout, with Discord's ids."""
    unknown = set(values) - {item["custom_id"] for item in inputs(modal)}
    if unknown:
        raise ValueError(f"the modal has no input {sorted(unknown)}")
    ids = iter(range(1, 2 * len(modal["components"]) + 1))
    result: list[dict[str, Any]] = []
    for component in modal["components"]:
        item = component["component"] if component["type"] == LABEL else component["components"][0]
        answer = {"type": TEXT_INPUT, "custom_id": item["custom_id"], "value": _typed(item, values)}
        if component["type"] == LABEL:
            result.append({"type": LABEL, "id": next(ids), "component": {**answer, "id": next(ids)}})
        else:
            result.append({"type": ACTION_ROW, "id": next(ids), "components": [{**answer, "id": next(ids)}]})
    return result
