"""Download file names: the documented examples and hostile section texts."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from scanjobs.modes.download.naming import extension_for, file_name, safe_component, safe_join

HOSTILE = [
    "../../etc/passwd",
    "a/b",
    "a_b",
    "a\\b",
    "CON",
    "con.txt",
    "..",
    ".",
    "x" * 300,
    "a\x00b",
    ".hidden",
    "trailing. ",
    "\u202eevil",  # right-to-left override
    " Sec",
    "Sec",
]


@pytest.mark.parametrize(
    ("section", "store_pog", "expected"),
    [
        ("Sec", 67890, "12345_Sec_67890.jpg"),
        ("Sec", None, "12345_Sec.jpg"),
        (None, 67890, "12345_67890.jpg"),
        (None, None, "12345.jpg"),
    ],
)
def test_platform_examples(section: str | None, store_pog: int | None, expected: str) -> None:
    assert file_name(12345, section, store_pog, index=None, extension=".jpg") == expected


def test_index_for_several_files() -> None:
    names = [file_name(1, "Sec", 2, index=n, extension=".png") for n in (1, 2, 3)]
    assert names == ["1_Sec_2_1.png", "1_Sec_2_2.png", "1_Sec_2_3.png"]


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_section_and_store_pog_are_missing(blank: str) -> None:
    assert file_name(7, blank, blank, index=None, extension=".jpg") == "7.jpg"


def test_store_pog_as_string() -> None:
    assert file_name(7, None, "67890", index=None, extension=".jpg") == "7_67890.jpg"
    assert "/" not in file_name(7, None, "../x", index=None, extension=".jpg")


@pytest.mark.parametrize("section", HOSTILE)
def test_hostile_section_stays_inside_folder(tmp_path: Path, section: str) -> None:
    name = file_name(1, section, 2, index=None, extension=".jpg")
    path = safe_join(tmp_path, name)
    assert path.parent == tmp_path
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    path.write_bytes(b"x")  # the OS accepts it
    assert path.read_bytes() == b"x"


def test_hostile_sections_get_distinct_names() -> None:
    names = {file_name(1, s, 2, index=None, extension=".jpg") for s in HOSTILE}
    assert len(names) == len(HOSTILE)


def test_separator_and_underscore_differ() -> None:
    assert safe_component("a/b") != safe_component("a_b")
    assert safe_component("a\\b") != safe_component("a/b")
    assert safe_component("a_b") == "a_b"  # unchanged text gets no hash


def test_nfc_and_nfd_are_the_same_section() -> None:
    nfc = unicodedata.normalize("NFC", "Café Crème")
    nfd = unicodedata.normalize("NFD", "Café Crème")
    assert nfc != nfd
    assert safe_component(nfc) == safe_component(nfd) == nfc


@pytest.mark.parametrize("text", ["..", ".", "..."])
def test_dots_only_become_a_hash(text: str) -> None:
    component = safe_component(text)
    assert component and not component.startswith(".")


@pytest.mark.parametrize("reserved", ["CON", "con", "NUL", "com1", "LPT9", "aux.txt"])
def test_windows_reserved_names_avoided(reserved: str) -> None:
    assert safe_component(reserved).split(".")[0].upper() not in {
        "CON",
        "NUL",
        "COM1",
        "LPT9",
        "AUX",
    }


def test_length_is_capped_in_bytes() -> None:
    assert len(safe_component("x" * 300).encode()) <= 80
    assert len(safe_component("\U0001f600" * 100).encode()) <= 80
    assert safe_component("x" * 300) != safe_component("x" * 299)
    assert len(safe_component("y" * 80)) == 80  # exactly at the cap: untouched


def test_empty_component_is_refused() -> None:
    with pytest.raises(ValueError):
        safe_component("  ")


@pytest.mark.parametrize(
    ("original", "content_type", "expected"),
    [
        ("IMG_1.JPG", None, ".jpg"),
        ("photo.jpeg", "image/png", ".jpeg"),
        ("clip.MP4", None, ".mp4"),
        ("noext", "image/png", ".png"),
        (None, "image/jpeg", ".jpg"),
        (None, "image/webp", ".webp"),
        (None, "image/heic", ".heic"),
        (None, "video/mp4; codecs=avc1", ".mp4"),
        ("weird.j p g", "image/jpeg", ".jpg"),
        ("a.verylongext", None, ".bin"),
        ("dir/x.png/", None, ".bin"),
        ("..", None, ".bin"),
        (".bashrc", None, ".bin"),
        (None, None, ".bin"),
        ("", "", ".bin"),
        (None, "application/x-unknown-thing", ".bin"),
    ],
)
def test_extension_for(original: str | None, content_type: str | None, expected: str) -> None:
    assert extension_for(original, content_type) == expected


def test_bad_extension_or_index_refused() -> None:
    with pytest.raises(ValueError):
        file_name(1, None, None, index=None, extension="/../x")
    with pytest.raises(ValueError):
        file_name(1, None, None, index=0, extension=".jpg")


@pytest.mark.parametrize("name", ["../x", "..", ".", "", "/etc/passwd", "a/../../x"])
def test_safe_join_refuses_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        safe_join(tmp_path / "out", name)


def test_safe_join_refuses_symlink_out(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError):
        safe_join(folder, "link/x.jpg")
    assert safe_join(folder, "x.jpg") == folder / "x.jpg"


@pytest.mark.parametrize("section_max_length", [80, 200])
@pytest.mark.parametrize(
    "section",
    ["é" * 300, "x" * 300, "\U0001f600" * 100, "a/" * 150],
    ids=["e-acute", "x", "emoji", "slashes"],
)
def test_a_file_name_fits_255_bytes_whatever_the_section_limit(
    tmp_path: Path, section: str, section_max_length: int
) -> None:
    """issue 12, point 12: `section_max_length: 200` with a long scan id, store POG id and index
    gave names over 255 bytes: the file system refused them (ENAMETOOLONG) at run time."""
    name = file_name(
        2**63 - 1,
        section,
        "p" * 60,
        index=1_000_000,
        extension=".jpeg",
        section_max_length=section_max_length,
    )
    assert len(name.encode("utf-8")) <= 255
    assert name.startswith(f"{2**63 - 1}_") and name.endswith("_1000000.jpeg")
    (tmp_path / name).write_bytes(b"x")  # the OS takes it
    short = file_name(1, section, None, index=None, extension=".jpg", section_max_length=section_max_length)
    assert len(short.encode("utf-8")) <= section_max_length + len("1_.jpg")  # the limit still holds


@pytest.mark.parametrize("text", ["a/b", "Aisle 7.", "CON", "..", "x" * 300])
def test_an_escaped_name_given_as_a_section_is_escaped_again(text: str) -> None:
    """issue 12, point 12 (the strict xfail of test_naming_properties): 'a/b' gives 'a_b_<hash>',
    which, given as a section itself, was kept as it is: two sections, one name."""
    escaped = safe_component(text)
    assert safe_component(escaped) != escaped
    assert safe_component("deadbeef") == "deadbeef"  # 8 hex digits alone are no escaped name
    assert safe_component("Bay_1234567") == "Bay_1234567"  # 7 digits: no hash either


@pytest.mark.parametrize("text", [". x", ".. x", " . x", ".\u3000x", ". . x"])
def test_no_component_starts_with_whitespace(text: str) -> None:
    """issue 12, point 12 (the strict xfail of test_naming_properties): '. x' gave ' x_93bed5cd'."""
    component = safe_component(text)
    assert not component[0].isspace() and not component.startswith(".")


@pytest.mark.parametrize("reserved", ["COM¹", "com²", "LPT³", "Lpt¹.txt", "COM0", "LPT0"])
def test_windows_superscript_and_zero_device_names_avoided(reserved: str) -> None:
    """issue 12, point 12 (the strict xfail of test_naming_properties): Windows reserves COM¹..³ and
    LPT¹..³ too; a section so named gave a file Windows cannot create."""
    assert safe_component(reserved).split(".")[0].upper() != reserved.split(".")[0].upper()
