"""The create payload of a copied scan (pure): docs/platform.md, "Copy: the create payload"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scanjobs.errors import Untranslatable
from scanjobs.platform.db import MappingNames, ResolvedIds

__all__ = [
    "DROPPED_ALWAYS",
    "MAPPING_HINTS",
    "INPUT_TYPES",
    "upload_input_type",
    "scan_input_type",
    "Untranslatable",
    "build_payload",
    "hint_ids",
    "translate_hints",
]

DROPPED_ALWAYS = ("id", "created_at", "updated_at", "task_id")
MAPPING_HINTS = ("category_id", "section_id", "store_planogram", "aisle", "replace_id")
# What the platform takes as `input_type`, of an upload and of a scan (its client's own list).
INPUT_TYPES = ("image", "video", "keyframe")


def raw_payload(provided_values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The original create payload: provided_values._raw_data, else provided_values itself."""
    values = dict(provided_values or {})
    raw = values.get("_raw_data")
    return dict(raw) if isinstance(raw, Mapping) else {k: v for k, v in values.items() if k != "_raw_data"}


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def upload_input_type(file_type: str | None) -> str:
    """The `input_type` a source file is uploaded as: its `file_type` when the platform knows
    that word, else image (the platform's client's default)."""
    return file_type if file_type in INPUT_TYPES else "image"


def scan_input_type(file_types: Sequence[str | None], source_value: Any = None) -> str:
    """The `input_type` of a copied scan: what its files were uploaded as. Files of mixed types
    take the source payload's own `input_type` when it is one of them, else image."""
    kinds = {upload_input_type(file_type) for file_type in file_types}
    if len(kinds) == 1:
        return kinds.pop()
    return source_value if isinstance(source_value, str) and source_value in kinds else "image"


@dataclass(frozen=True, slots=True)
class HintIds:
    store_planogram: int | None
    section_id: int | None
    category_id: int | None


def hint_ids(provided_values: Mapping[str, Any] | None) -> HintIds:
    raw = raw_payload(provided_values)
    return HintIds(
        _as_int(raw.get("store_planogram", raw.get("store_planogram_id"))),
        _as_int(raw.get("section_id")),
        _as_int(raw.get("category_id")),
    )


def _describe(name: object) -> str:
    if isinstance(name, tuple):  # a section: (planogram name, section name)
        return f"{name[1]!r} of planogram {name[0]!r}"
    return f"named {name!r}"


def translate_hints(hints: HintIds, names: MappingNames, resolved: ResolvedIds) -> dict[str, int]:
    """Source hint ids -> target ids by name; raise Untranslatable saying which name is missing."""
    table: list[tuple[str, str, int | None, Mapping[int, Any], Mapping[Any, int]]] = [
        (
            "store_planogram",
            "store planogram",
            hints.store_planogram,
            names.store_planograms,
            resolved.store_planograms,
        ),
        ("section_id", "section", hints.section_id, names.sections, resolved.sections),
        ("category_id", "category", hints.category_id, names.categories, resolved.categories),
    ]
    out: dict[str, int] = {}
    for field, what, source_id, source_names, target_ids in table:
        if source_id is None:
            continue
        name = source_names.get(source_id)
        if name is None:
            raise Untranslatable(f"{what} {source_id} not found on the source")
        if name not in target_ids:
            raise Untranslatable(f"no {what} {_describe(name)} on the target")
        out[field] = target_ids[name]
    return out


def build_payload(
    provided_values: Mapping[str, Any] | None,
    *,
    store: int,
    files: Sequence[int],
    file_types: Sequence[str | None],
    strategy: str,
    captured_at: int | None,
    translated: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The payload to POST for one copy.

    `file_types` are the source files' types, in the order of `files`: they decide `input_type`,
    which the payload always carries, as the platform's client always sends it (`scan_input_type`).
    captured_at None keeps the source's value. Strategy auto drops every mapping hint (the MA
    decides); mapped keeps them with ids replaced by `translated` (target ids by name), keeps the
    aisle text, and drops replace_id: it names a source scan that means nothing on the target.
    """
    payload = raw_payload(provided_values)
    for key in DROPPED_ALWAYS:
        payload.pop(key, None)
    payload["store"] = int(store)
    payload["files"] = [int(f) for f in files]
    payload["input_type"] = scan_input_type(file_types, payload.get("input_type"))
    if captured_at is not None:
        payload["captured_at"] = int(captured_at)
    if strategy == "auto":
        for key in MAPPING_HINTS:
            payload.pop(key, None)
        payload.pop("store_planogram_id", None)
    else:
        payload.pop("replace_id", None)
        payload.pop("store_planogram_id", None)
        for key in ("store_planogram", "section_id", "category_id"):
            payload.pop(key, None)
        payload.update(translated or {})
    return payload
