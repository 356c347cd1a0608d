"""Download file names: `{scan_id}_{section}_{store_pog}[_{n}].{ext}`, safe on any disk."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from pathlib import Path

from scanjobs.fsutil import is_inside
from scanjobs.jobfile.model import DownloadOptions

__all__ = ["extension_for", "file_name", "safe_component", "safe_join", "MIN_LENGTH", "NAME_MAX_BYTES"]

# Content types the platform serves, mapped explicitly: mimetypes' answers vary by OS
# (image/jpeg gives ".jpg" or ".jpe") and may not know image/heic at all.
_CONTENT_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
}
_EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")
# Characters Windows forbids in names, and both path separators.
_FORBIDDEN = set('<>:"/\\|?*')
# Microsoft's "Naming Files, Paths, and Namespaces": the superscript digits count as digits there.
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789¹²³"}
_HASH_CHARS = 8
MIN_LENGTH = _HASH_CHARS + 2  # the shortest component that still holds `_` and the hash
# What an escaped text ends with. A text that already does is escaped too (in any case: some
# file systems ignore it), so that no text is kept as the escaped name of another.
_ESCAPED = re.compile(rf"_[0-9a-f]{{{_HASH_CHARS}}}$", re.IGNORECASE)
# Whitespace and dots at either end: a leading dot hides a file, Windows drops trailing dots and
# spaces, and a name that starts or ends in blank is easily misread.
_BLANK_ENDS = re.compile(r"^[\s.]+|[\s.]+$")
NAME_MAX_BYTES = 255  # ext4, XFS, APFS; NTFS counts 255 UTF-16 units, never more than the bytes
# the job file's default (download.section_max_length), the one place it is set
_SECTION_MAX_LENGTH = DownloadOptions().section_max_length


def _replaceable(char: str) -> bool:
    # Category C*: control (NUL included), format (bidi overrides can disguise a name),
    # surrogates (not encodable), private use, unassigned; Zl/Zp break lines.
    return char in _FORBIDDEN or unicodedata.category(char)[0] == "C" or char in "\u2028\u2029"


def _truncate_bytes(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def safe_component(text: str, *, max_length: int = _SECTION_MAX_LENGTH) -> str:
    """`text` as one safe path component; different texts (after NFC) give different names.

    NFC first (NFC and NFD spellings of one text are the same text). Separators, characters
    Windows forbids, control and format characters become `_`; whitespace and dots at either
    end go; a Windows-reserved stem (CON, NUL, COM1, COM¹, ...) gets a `_` prefix. Whenever
    that changed the text, `_` + 8 hex digits of the SHA-256 of the NFC text are appended, so
    `a/b` and `a_b` stay distinct; a text that already ends so gets them too, so `a_b_<hash>`
    is not the name of `a/b` (an escaped name is not its own component). `max_length` counts
    UTF-8 bytes, since file systems limit bytes (255 on most), not characters; the hash always
    fits.
    Raises ValueError for an empty or whitespace-only text: there is nothing to name.
    """
    if max_length < MIN_LENGTH:
        raise ValueError(f"max_length must be at least {MIN_LENGTH}")
    original = unicodedata.normalize("NFC", text)
    if not original.strip():
        raise ValueError("an empty text cannot be a path component")
    cleaned = "".join("_" if _replaceable(ch) else ch for ch in original)
    cleaned = _BLANK_ENDS.sub("", cleaned)
    if cleaned.split(".")[0].upper().rstrip() in _RESERVED:
        cleaned = "_" + cleaned
    if cleaned == original and len(cleaned.encode("utf-8")) <= max_length and not _ESCAPED.search(cleaned):
        return cleaned
    digest = hashlib.sha256(original.encode("utf-8", errors="surrogatepass")).hexdigest()
    suffix = digest[:_HASH_CHARS]
    head = _truncate_bytes(cleaned, max_length - len(suffix) - 1).rstrip(". ")
    return f"{head}_{suffix}"


def extension_for(original_filename: str | None, content_type: str | None) -> str:
    """The file's real extension, lower-case with the dot: from its original name, else its
    Content-Type, else `.bin`. Only a short alphanumeric suffix of the name is trusted."""
    if original_filename:
        base = re.split(r"[/\\]", original_filename)[-1]
        if "." in base.strip("."):
            ext = "." + base.rsplit(".", 1)[1].strip().lower()
            if _EXTENSION.fullmatch(ext):
                return ext
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        ext = _CONTENT_TYPES.get(mime) or mimetypes.guess_extension(mime) or ""
        if _EXTENSION.fullmatch(ext):
            return ext
    return ".bin"


def _present(value: int | str | None) -> str | None:
    """The text of a name part, or None when it is missing (None, empty, blank)."""
    if value is None or not str(value).strip():
        return None
    return str(value)


def file_name(
    scan_id: int,
    section_name: str | None,
    store_pog_id: int | str | None,
    *,
    index: int | None,
    extension: str,
    section_max_length: int = _SECTION_MAX_LENGTH,
) -> str:
    """`{scan_id}_{section}_{store_pog}[_{index}]{extension}`, missing parts dropped.

    `index` is None when the scan has a single file, else 1.. in file order. The section
    and store POG id pass through `safe_component` (the store POG id comes from the scan's
    own payload, so it is not trusted either). The name fits NAME_MAX_BYTES: the section gets
    at most `section_max_length` bytes, fewer when the other parts leave less room. A name
    that cannot fit even so (an index of a hundred digits) is a ValueError.
    """
    if isinstance(scan_id, bool) or not isinstance(scan_id, int) or scan_id < 0:
        raise ValueError(f"scan_id must be a non-negative int, got {scan_id!r}")
    if not _EXTENSION.fullmatch(extension):
        raise ValueError(f"extension must look like '.jpg', got {extension!r}")
    if index is not None and (isinstance(index, bool) or index < 1):
        raise ValueError(f"index must be None or >= 1, got {index!r}")
    tail = []  # what follows the section
    if _present(store_pog_id) is not None:
        tail.append(safe_component(str(store_pog_id), max_length=40))
    if index is not None:
        tail.append(str(index))
    parts = [str(scan_id)]
    # Blank means missing; otherwise the text goes in unstripped, so " Sec" and "Sec" differ.
    if _present(section_name) is not None:
        others = len("_".join([*parts, "", *tail]).encode("utf-8")) + len(extension)
        room = min(section_max_length, NAME_MAX_BYTES - others)
        if room < MIN_LENGTH:
            raise ValueError(f"no room for the section in a name of at most {NAME_MAX_BYTES} bytes")
        parts.append(safe_component(str(section_name), max_length=room))
    name = "_".join([*parts, *tail]) + extension
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise ValueError(f"a file name of scan {scan_id} would be longer than {NAME_MAX_BYTES} bytes")
    return name


def safe_join(folder: Path, name: str) -> Path:
    """`folder / name`, or ValueError when that resolves anywhere but strictly inside folder."""
    path = folder / name
    if not name or not is_inside(path, folder) or path.resolve() == folder.resolve():
        raise ValueError(f"file name {name!r} would leave the folder {folder}")
    return path
