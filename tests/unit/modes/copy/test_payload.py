"""The create payload of a copied scan, and the mapped strategy's translation by name."""

from __future__ import annotations

import pytest

from scanjobs.modes.copy.payload import (
    INPUT_TYPES,
    Untranslatable,
    build_payload,
    hint_ids,
    translate_hints,
    upload_input_type,
)
from scanjobs.platform.db import MappingNames, ResolvedIds

RAW = {
    "_raw_data": {
        "store": 3,
        "files": [1, 2],
        "input_type": "image",
        "captured_at": 1700000000,
        "category_id": 7,
        "section_id": 11,
        "store_planogram": 21,
        "aisle": "A3",
        "replace_id": 99,
        "id": 5,
        "created_at": "x",
        "updated_at": "y",
        "task_id": "t",
    }
}


def test_auto_payload_drops_hints_and_server_fields() -> None:
    payload = build_payload(
        RAW, store=8, files=[101, 102], file_types=["image"] * 2, strategy="auto", captured_at=1800000000
    )
    assert payload == {"store": 8, "files": [101, 102], "input_type": "image", "captured_at": 1800000000}


def test_mapped_payload_keeps_translated_hints_and_source_time() -> None:
    payload = build_payload(
        RAW,
        store=8,
        files=[101, 102],
        file_types=["image", "image"],
        strategy="mapped",
        captured_at=None,
        translated={"store_planogram": 321, "section_id": 411, "category_id": 517},
    )
    assert (
        payload["store_planogram"] == 321 and payload["section_id"] == 411 and payload["category_id"] == 517
    )
    assert payload["aisle"] == "A3" and "replace_id" not in payload
    assert payload["captured_at"] == 1700000000
    assert not {"id", "created_at", "updated_at", "task_id"} & set(payload)


def test_payload_falls_back_to_provided_values() -> None:
    payload = build_payload(
        {"store": 3, "files": [1], "note": "x"},
        store=8,
        files=[5],
        file_types=[None],
        strategy="auto",
        captured_at=1,
    )
    assert payload == {"store": 8, "files": [5], "note": "x", "input_type": "image", "captured_at": 1}


@pytest.mark.parametrize(
    ("file_types", "stored", "expected"),
    [
        (["image", "image"], {}, "image"),
        ([None], {}, "image"),  # the source did not say: image, as the upload was sent
        (["photo"], {"input_type": "photo"}, "image"),  # nothing the platform knows
        (["video"], {}, "video"),
        (["keyframe", "keyframe"], {"input_type": "image"}, "keyframe"),  # the files decide
        ([None], {"input_type": "video"}, "image"),  # uploaded as image: the scan says so too
        (["video", "image"], {"input_type": "video"}, "video"),  # mixed: the source's own word
        (["video", "image"], {}, "image"),
        (["video", "keyframe"], {"input_type": 7}, "image"),
    ],
)
def test_the_payload_always_carries_the_input_type_of_its_files(
    file_types: list[str | None], stored: dict[str, object], expected: str
) -> None:
    """issue 13, point 8: the platform's client always sends `input_type` with a create; a copy
    sent it only when the source's payload had it (and then whatever it was)."""
    payload = build_payload(
        {"_raw_data": {"store": 3, "files": [1], **stored}},
        store=8,
        files=list(range(1, len(file_types) + 1)),
        file_types=file_types,
        strategy="auto",
        captured_at=1,
    )
    assert payload["input_type"] == expected
    assert upload_input_type(file_types[0]) == (file_types[0] if file_types[0] in INPUT_TYPES else "image")


def test_translate_hints_by_name() -> None:
    names = MappingNames(
        store_planograms={21: "POG A"}, sections={11: ("POG A", "Top")}, categories={7: "Chips"}
    )
    resolved = ResolvedIds(
        store_planograms={"POG A": 321}, sections={("POG A", "Top"): 411}, categories={"Chips": 517}
    )
    hints = hint_ids(RAW)
    assert translate_hints(hints, names, resolved) == {
        "store_planogram": 321,
        "section_id": 411,
        "category_id": 517,
    }
    missing = ResolvedIds(store_planograms={"POG A": 321}, sections={}, categories={"Chips": 517})
    with pytest.raises(Untranslatable, match="no section 'Top' of planogram 'POG A' on the target"):
        translate_hints(hints, names, missing)
