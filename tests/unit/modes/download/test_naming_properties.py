"""Download file names, property-based: whatever the platform sends, a name is one safe path
component inside the folder, within the byte limits, the same every time, and tells the scan,
the file's position and its extension back. The examples are in tests/unit/modes/download/test_naming.py."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from scanjobs.modes.download.naming import extension_for, file_name, safe_component, safe_join

# Names Windows refuses whatever the extension (Microsoft's "Naming Files, Paths, and Namespaces").
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789¹²³"}
WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")
NAME_MAX_BYTES = 255  # a file name's limit on ext4, XFS, APFS, NTFS (in UTF-16 units there, fewer)

# Section texts: any text, plus the pieces that make trouble (separators, dots, spaces, device
# names, controls, bidi overrides, combining marks, surrogates, astral characters).
hostile_piece = st.sampled_from(
    [
        "/",
        "\\",
        "..",
        ".",
        " ",
        "\x00",
        "\u202e",
        "\u2028",
        "\ud800",
        "CON",
        "nul",
        "Com1",
        "\u0301",
        "\U0001f600",
        "_",
        ":",
        "é",
        "e\u0301",
        "\t",
        "\n",
    ]
)
texts = st.one_of(st.text(), st.lists(st.one_of(hostile_piece, st.text(max_size=3))).map("".join))
present_texts = texts.filter(lambda t: unicodedata.normalize("NFC", t).strip() != "")
max_lengths = st.integers(min_value=10, max_value=300)
extensions = st.from_regex(EXTENSION, fullmatch=True)
scan_ids = st.integers(min_value=0, max_value=2**63 - 1)  # PostgreSQL's bigint
indexes = st.one_of(st.none(), st.integers(min_value=1, max_value=10**6))
store_pogs = st.one_of(st.none(), st.integers(min_value=0, max_value=10**12), texts)


def assert_one_safe_component(name: str) -> None:
    assert name and name not in (".", "..")
    assert not (set(name) & WINDOWS_FORBIDDEN), name
    assert "\x00" not in name
    assert not any(unicodedata.category(ch)[0] == "C" for ch in name), name  # controls, surrogates
    assert "\u2028" not in name and "\u2029" not in name
    assert not name.startswith(".")
    assert not name.endswith((".", " "))
    assert name.split(".")[0].upper().rstrip() not in WINDOWS_DEVICES
    name.encode("utf-8")  # encodable: a surrogate would raise here


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("downloads")
    (path / "link_out").symlink_to(path.parent)  # a symlink out of the folder, for the escapes
    yield path


# --- safe_component ------------------------------------------------------------------------------


@given(present_texts, max_lengths)
def test_a_component_is_one_safe_name_within_its_byte_limit(text: str, max_length: int) -> None:
    component = safe_component(text, max_length=max_length)
    assert_one_safe_component(component)
    assert len(component.encode("utf-8")) <= max_length


@given(present_texts, max_lengths)
def test_a_component_is_the_same_every_time_and_for_either_unicode_spelling(
    text: str, max_length: int
) -> None:
    component = safe_component(text, max_length=max_length)
    assert safe_component(text, max_length=max_length) == component
    for form in ("NFC", "NFD"):
        assert safe_component(unicodedata.normalize(form, text), max_length=max_length) == component


@given(present_texts, max_lengths)
@example("a/b", 80)
@example("a_b", 80)
def test_a_component_is_its_own_exactly_when_its_text_needed_no_change(text: str, max_length: int) -> None:
    # A name that is already safe (and short enough) is its own component; an escaped one is
    # not, or the text it was escaped from and the name itself, given as a text, would collide.
    component = safe_component(text, max_length=max_length)
    unchanged = component == unicodedata.normalize("NFC", text)
    assert (safe_component(component, max_length=max_length) == component) == unchanged


@given(present_texts, max_lengths)
@example(". x", 80)
def test_a_component_never_starts_or_ends_with_whitespace(text: str, max_length: int) -> None:
    """issue 12, point 12: '. x' gave ' x_93bed5cd' (was a strict xfail)."""
    component = safe_component(text, max_length=max_length)
    assert not component[0].isspace() and not component[-1].isspace()


# Texts that are already safe names: letters, digits, marks, inner spaces, dots, dashes, underscores.
clean_texts = st.text(
    alphabet=st.one_of(st.characters(categories=("L", "M", "N")), st.sampled_from(" ._-")), min_size=1
).filter(
    lambda t: (
        t.strip() == t
        and not t.startswith(".")
        and not t.endswith(".")
        and t.split(".")[0].upper().rstrip() not in WINDOWS_DEVICES
        and len(t.encode("utf-8")) <= 80
        and not re.search(r"_[0-9a-f]{8}$", t, re.IGNORECASE)  # the form of an escaped name
    )
)


@given(clean_texts)
def test_a_text_that_needs_no_change_is_not_changed(text: str) -> None:
    nfc = unicodedata.normalize("NFC", text)
    assert safe_component(text) == nfc


@given(present_texts, present_texts)
@example("a/b", "a_b")
@example("a/b", "a\\b")
@example("x" * 300, "x" * 299)
@example("CON", "_CON")
@example("..", ".")
def test_different_texts_get_different_components(a: str, b: str) -> None:
    assume(unicodedata.normalize("NFC", a) != unicodedata.normalize("NFC", b))
    assert safe_component(a) != safe_component(b)


@given(present_texts.filter(lambda t: safe_component(t) != unicodedata.normalize("NFC", t)))
@example("a/b")
def test_a_text_and_the_escaped_name_of_another_stay_apart(text: str) -> None:
    """issue 12, point 12: 'a/b' and 'a_b_<its hash>' collided (was a strict xfail)."""
    escaped = safe_component(text)
    assert safe_component(escaped) != escaped


@given(st.sampled_from(["COM", "LPT", "com", "Lpt"]), st.sampled_from("¹²³"), st.sampled_from(["", ".txt"]))
@example("COM", "¹", "")
def test_windows_superscript_device_names_are_avoided(prefix: str, digit: str, suffix: str) -> None:
    """issue 12, point 12: COM¹ gave a file Windows cannot create (was a strict xfail)."""
    component = safe_component(prefix + digit + suffix)
    assert component.split(".")[0].upper() not in {f"{p}{d}" for p in ("COM", "LPT") for d in "¹²³"}


@given(st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000"), max_size=5), max_lengths)
def test_blank_text_is_refused_with_value_error(text: str, max_length: int) -> None:
    with pytest.raises(ValueError):
        safe_component(text, max_length=max_length)


@given(present_texts, st.integers(max_value=9))
def test_a_limit_the_hash_cannot_fit_in_is_refused(text: str, max_length: int) -> None:
    with pytest.raises(ValueError):
        safe_component(text, max_length=max_length)


# --- file_name -----------------------------------------------------------------------------------


@given(scan_ids, st.one_of(st.none(), texts), store_pogs, indexes, extensions)
def test_a_file_name_is_one_safe_name_that_tells_scan_and_extension_back(
    scan_id: int, section: str | None, store_pog: int | str | None, index: int | None, extension: str
) -> None:
    name = file_name(scan_id, section, store_pog, index=index, extension=extension)
    assert_one_safe_component(name)
    assert len(name.encode("utf-8")) <= NAME_MAX_BYTES
    assert name.endswith(extension) and extension_for(name, None) == extension
    match = re.match(r"\d+", name)
    assert match is not None and int(match.group()) == scan_id
    assert name[match.end()] in "_."  # the scan id is a whole part, not a prefix of a longer number
    assert name == file_name(scan_id, section, store_pog, index=index, extension=extension)


@given(scan_ids, texts, store_pogs, indexes, extensions, st.integers(min_value=10, max_value=200))
@example(2**63 - 1, "é" * 300, "p" * 60, 10**6, ".jpeg", 200)
def test_a_file_name_fits_its_byte_limit_whatever_the_section_limit(
    scan_id: int, section: str, store_pog: int | str | None, index: int | None, extension: str, limit: int
) -> None:
    """issue 12, point 12: with `section_max_length: 200` (the schema's maximum) a name passed
    255 bytes; the section is cut shorter when the other parts leave less room."""
    name = file_name(scan_id, section, store_pog, index=index, extension=extension, section_max_length=limit)
    assert_one_safe_component(name)
    assert len(name.encode("utf-8")) <= NAME_MAX_BYTES


@given(
    scan_ids,
    st.one_of(st.none(), texts),
    store_pogs,
    st.lists(indexes, min_size=2, max_size=6, unique=True),
    extensions,
)
def test_the_files_of_one_scan_get_different_names(
    scan_id: int, section: str | None, store_pog: int | str | None, several: list[int | None], extension: str
) -> None:
    names = {file_name(scan_id, section, store_pog, index=i, extension=extension) for i in several}
    assert len(names) == len(several)


@given(
    st.lists(scan_ids, min_size=2, max_size=6, unique=True),
    st.one_of(st.none(), texts),
    store_pogs,
    indexes,
    extensions,
)
def test_different_scans_get_different_names(
    several: list[int], section: str | None, store_pog: int | str | None, index: int | None, extension: str
) -> None:
    names = {file_name(s, section, store_pog, index=index, extension=extension) for s in several}
    assert len(names) == len(several)


@given(
    st.one_of(st.integers(max_value=-1), st.booleans()),
    st.one_of(st.none(), texts),
    store_pogs,
    indexes,
    extensions,
)
def test_a_bad_scan_id_is_refused_with_value_error(
    scan_id: int, section: str | None, store_pog: int | str | None, index: int | None, extension: str
) -> None:
    with pytest.raises(ValueError):
        file_name(scan_id, section, store_pog, index=index, extension=extension)


@given(scan_ids, st.one_of(st.integers(max_value=0), st.booleans()), extensions)
def test_a_bad_index_is_refused_with_value_error(scan_id: int, index: int, extension: str) -> None:
    with pytest.raises(ValueError):
        file_name(scan_id, "Sec", 1, index=index, extension=extension)


@given(scan_ids, st.text().filter(lambda e: not EXTENSION.fullmatch(e)))
def test_an_extension_that_is_not_dot_and_a_short_suffix_is_refused(scan_id: int, extension: str) -> None:
    with pytest.raises(ValueError):
        file_name(scan_id, None, None, index=None, extension=extension)


# --- extension_for -------------------------------------------------------------------------------


@given(st.one_of(st.none(), texts), st.one_of(st.none(), st.text(), st.sampled_from(["image/png", "a/b; x"])))
def test_an_extension_is_always_a_short_lowercase_suffix(
    original: str | None, content_type: str | None
) -> None:
    assert EXTENSION.fullmatch(extension_for(original, content_type))


@given(st.text(), extensions, st.booleans(), st.one_of(st.none(), st.text()))
def test_the_original_names_extension_wins_in_lower_case(
    stem: str, extension: str, upper: bool, content_type: str | None
) -> None:
    base = stem.replace("/", "").replace("\\", "").strip(".") or "x"
    original = f"{base}{extension.upper() if upper else extension}"
    assert extension_for(original, content_type) == extension


@given(st.text(), st.text(min_size=1).map(lambda d: d.replace("/", "")), extensions)
def test_a_folder_part_of_the_original_name_gives_no_extension(
    stem: str, folder: str, extension: str
) -> None:
    # "photos.png/IMG" is a file IMG in a folder photos.png: it has no extension of its own.
    original = f"{folder}{extension}/{stem.replace('/', '').replace(chr(92), '').replace('.', '')}"
    assert extension_for(original, None) == ".bin"


# --- safe_join -----------------------------------------------------------------------------------


@given(
    st.one_of(
        st.text(), st.lists(st.sampled_from(["..", ".", "/", "a", "link_out", "\x00", "~"])).map("".join)
    )
)
def test_safe_join_never_leaves_the_folder(folder: Path, name: str) -> None:
    try:
        path = safe_join(folder, name)
    except ValueError:
        return
    resolved = path.resolve()
    assert resolved != folder.resolve()
    assert resolved.is_relative_to(folder.resolve())


@given(scan_ids, st.one_of(st.none(), texts), store_pogs, indexes, extensions)
def test_every_file_name_joins_as_a_direct_child(
    folder: Path,
    scan_id: int,
    section: str | None,
    store_pog: int | str | None,
    index: int | None,
    extension: str,
) -> None:
    name = file_name(scan_id, section, store_pog, index=index, extension=extension)
    assert safe_join(folder, name) == folder / name
    assert (folder / name).parent == folder
