"""The create payload of a copy, property-based: whatever the source scan's stored payload holds,
the payload sent to the target never carries the source's server fields or (strategy auto) its
mapping hints, always names the target's store and files, and keeps everything else as it was.
The examples are in tests/unit/modes/copy/test_payload.py."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanjobs.modes.copy.payload import (
    DROPPED_ALWAYS,
    INPUT_TYPES,
    MAPPING_HINTS,
    HintIds,
    Untranslatable,
    build_payload,
    hint_ids,
    raw_payload,
    translate_hints,
)
from scanjobs.platform.db import MappingNames, ResolvedIds

# The fields build_payload decides itself; every other field of the source's payload is kept.
DECIDED = {
    *DROPPED_ALWAYS,
    *MAPPING_HINTS,
    "store_planogram_id",
    "store",
    "files",
    "captured_at",
    "input_type",
}

# What a jsonb column gives back: JSON values (no NaN or infinity: PostgreSQL's jsonb refuses them).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.one_of(st.sampled_from(sorted(DECIDED | {"input_type", "note", "aisle"})), st.text(max_size=8))
payload_dicts = st.dictionaries(keys.filter(lambda k: k != "_raw_data"), json_values, max_size=12)
# Stored either as {"_raw_data": payload} (scans created through the API) or as the payload itself;
# a `_raw_data` that is not a mapping is not the payload.
stored = st.one_of(
    st.none(),
    payload_dicts,
    payload_dicts.map(lambda p: {"_raw_data": p}),
    st.builds(lambda p, junk: {**p, "_raw_data": junk}, payload_dicts, json_scalars),
)
ids = st.integers(min_value=1, max_value=2**31 - 1)
# A source file's type as the scanfile table holds it: the platform's words, or anything else.
any_file_type = st.one_of(st.none(), st.sampled_from(INPUT_TYPES), st.text(max_size=8))
file_type_lists = st.lists(any_file_type, max_size=5)
captured = st.one_of(st.none(), ids)
strategies = st.sampled_from(["auto", "mapped"])
translations = st.fixed_dictionaries(
    {}, optional={"store_planogram": ids, "section_id": ids, "category_id": ids}
)


def the_payload(stored_values: dict[str, Any] | None) -> dict[str, Any]:
    """The source's payload, read independently of raw_payload."""
    if stored_values is None:
        return {}
    inner = stored_values.get("_raw_data")
    if isinstance(inner, dict):
        return inner
    return {k: v for k, v in stored_values.items() if k != "_raw_data"}


@given(stored, ids, st.lists(ids, max_size=5), file_type_lists, strategies, captured, translations)
def test_the_payload_names_the_target_and_carries_no_source_server_fields(
    stored_values: dict[str, Any] | None,
    store: int,
    files: list[int],
    file_types: list[str | None],
    strategy: str,
    captured_at: int | None,
    translated: dict[str, int],
) -> None:
    before = copy.deepcopy(stored_values)
    payload = build_payload(
        stored_values,
        store=store,
        files=files,
        file_types=file_types,
        strategy=strategy,
        captured_at=captured_at,
        translated=translated,
    )
    assert stored_values == before  # the source's record is not touched
    assert payload["store"] == store and payload["files"] == files
    # issue 13, point 8: always an input_type the platform knows, the files' own when they agree
    assert payload["input_type"] in INPUT_TYPES
    kinds = {t if t in INPUT_TYPES else "image" for t in file_types}
    if len(kinds) == 1:
        assert payload["input_type"] == kinds.pop()
    assert not set(DROPPED_ALWAYS) & set(payload)
    assert "store_planogram_id" not in payload and "replace_id" not in payload
    source = the_payload(stored_values)
    if captured_at is not None:
        assert payload["captured_at"] == captured_at
    elif "captured_at" in source:
        assert payload["captured_at"] == source["captured_at"]
    else:
        assert "captured_at" not in payload
    # Every field the copy does not decide passes through unchanged, and nothing else appears.
    assert {k: v for k, v in payload.items() if k not in DECIDED} == {
        k: v for k, v in source.items() if k not in DECIDED
    }
    hints = {"store_planogram", "section_id", "category_id"}
    if strategy == "auto":
        assert not set(MAPPING_HINTS) & set(payload)  # the target's MA decides
    else:
        assert {k: payload[k] for k in hints if k in payload} == translated  # target ids only
        assert payload.get("aisle") == source.get("aisle")  # a text, meaningful on any instance


@given(stored, ids, st.lists(ids, max_size=5), file_type_lists, strategies, captured, translations)
def test_building_the_payload_again_from_it_changes_nothing(
    stored_values: dict[str, Any] | None,
    store: int,
    files: list[int],
    file_types: list[str | None],
    strategy: str,
    captured_at: int | None,
    translated: dict[str, int],
) -> None:
    args: dict[str, Any] = {
        "store": store,
        "files": files,
        "file_types": file_types,
        "strategy": strategy,
        "captured_at": captured_at,
        "translated": translated,
    }
    once = build_payload(stored_values, **args)
    assert build_payload(once, **args) == once
    assert build_payload({"_raw_data": once}, **args) == once


@given(stored)
def test_the_stored_payload_is_read_from_raw_data_when_there_is_one(
    stored_values: dict[str, Any] | None,
) -> None:
    assert raw_payload(stored_values) == the_payload(stored_values)


@given(stored, st.sampled_from(["store_planogram", "section_id", "category_id"]), ids, st.booleans())
def test_a_hint_id_reads_back_from_an_int_or_its_digits(
    stored_values: dict[str, Any] | None, field: str, value: int, as_text: bool
) -> None:
    payload = {**the_payload(stored_values), field: str(value) if as_text else value}
    assert getattr(hint_ids({"_raw_data": payload}), field) == value
    assert getattr(hint_ids(payload), field) == value


@given(stored)
def test_hint_ids_never_fail_on_what_a_scan_stores(stored_values: dict[str, Any] | None) -> None:
    hints = hint_ids(stored_values)
    for value in (hints.store_planogram, hints.section_id, hints.category_id):
        assert value is None or isinstance(value, int)


@given(ids, ids)
def test_store_planogram_id_is_read_when_store_planogram_is_absent(old_style: int, new_style: int) -> None:
    assert hint_ids({"store_planogram_id": old_style}).store_planogram == old_style
    both = {"store_planogram": new_style, "store_planogram_id": old_style}
    assert hint_ids(both).store_planogram == new_style


# --- translate_hints -----------------------------------------------------------------------------

names_text = st.text(min_size=1, max_size=6)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[HintIds, MappingNames, ResolvedIds]:
    """Source ids with their names, and the target's ids for some of those names."""
    pogs = draw(st.dictionaries(ids, names_text, max_size=4))
    sections = draw(st.dictionaries(ids, st.tuples(names_text, names_text), max_size=4))
    categories = draw(st.dictionaries(ids, names_text, max_size=4))
    names = MappingNames(store_planograms=pogs, sections=sections, categories=categories)

    def some_of(values: list[Any]) -> dict[Any, int]:
        chosen = draw(st.lists(st.sampled_from(values), unique=True)) if values else []
        return {name: draw(ids) for name in chosen}

    resolved = ResolvedIds(
        store_planograms=some_of(sorted(set(pogs.values()))),
        sections=some_of(sorted(set(sections.values()))),
        categories=some_of(sorted(set(categories.values()))),
    )

    def hint(known: dict[int, Any]) -> int | None:
        return draw(st.one_of(st.none(), ids, st.sampled_from(sorted(known)) if known else st.none()))

    return HintIds(hint(pogs), hint(sections), hint(categories)), names, resolved


@given(worlds())
def test_hints_translate_by_name_or_say_which_name_is_missing(
    world: tuple[HintIds, MappingNames, ResolvedIds],
) -> None:
    hints, names, resolved = world
    table: list[tuple[str, int | None, Mapping[int, Any], Mapping[Any, int]]] = [
        ("store_planogram", hints.store_planogram, names.store_planograms, resolved.store_planograms),
        ("section_id", hints.section_id, names.sections, resolved.sections),
        ("category_id", hints.category_id, names.categories, resolved.categories),
    ]
    translatable = all(
        source_id is None or (source_id in by_id and by_id[source_id] in by_name)
        for _, source_id, by_id, by_name in table
    )
    if not translatable:
        with pytest.raises(Untranslatable):
            translate_hints(hints, names, resolved)
        return
    out = translate_hints(hints, names, resolved)
    # Exactly the given hints, each the target's id of the same name: never a source id by chance.
    assert out == {
        field: by_name[by_id[source_id]]
        for field, source_id, by_id, by_name in table
        if source_id is not None
    }
