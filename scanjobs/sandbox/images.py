"""Generate small real PNG/JPEG images, optionally padded to a size and streamed to disk."""

from __future__ import annotations

import hashlib
import itertools
import random
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK = 1 << 20  # padding is written in 1 MiB pieces so huge files never sit in memory

# Standard JPEG luminance DC Huffman table (ITU T.81 K.3): code lengths and symbols.
_DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
_DC_VALS = list(range(12))


def _huffman_codes(bits: list[int], vals: list[int]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes: symbol -> (code, length)."""
    codes: dict[int, tuple[int, int]] = {}
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


_DC_CODES = _huffman_codes(_DC_BITS, _DC_VALS)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_parts(rng: random.Random, comment: str) -> tuple[bytes, bytes]:
    """A small RGB PNG split into (everything before IEND, IEND) so padding can go between."""
    width, height = 48, 32
    base = [rng.randrange(256) for _ in range(3)]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None
        for x in range(width):
            rows += bytes(((base[0] + x * 5) % 256, (base[1] + y * 7) % 256, base[2]))
    head = (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"tEXt", b"Comment\x00" + comment.encode())
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 6))
    )
    return head, _png_chunk(b"IEND", b"")


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_parts(rng: random.Random, comment: str) -> tuple[bytes, bytes]:
    """A baseline grayscale JPEG of flat 8x8 blocks, as (head incl. scan data, EOI)."""
    bw, bh = 4, 3  # blocks across and down: a 32x24 image
    # Each block is flat, so only its DC coefficient is non-zero; quantisation is all ones.
    levels = [rng.randrange(16, 240) for _ in range(bw * bh)]
    bits: list[str] = []
    prev = 0
    for level in levels:
        dc = 8 * (level - 128)
        diff = dc - prev
        prev = dc
        size = abs(diff).bit_length()
        code, length = _DC_CODES[size]
        bits.append(format(code, f"0{length}b"))
        if size:
            amp = diff if diff > 0 else diff + (1 << size) - 1  # ones' complement for negatives
            bits.append(format(amp, f"0{size}b"))
        bits.append("0")  # EOB: the only symbol of our one-entry AC table
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad the last byte with ones, as T.81 requires
    data = bytearray()
    for i in range(0, len(stream), 8):
        byte = int(stream[i : i + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)  # byte stuffing
    head = (
        b"\xff\xd8"
        + _jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + _jpeg_segment(0xFE, comment.encode())
        + _jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
        + _jpeg_segment(0xC0, struct.pack(">BHHB", 8, bh * 8, bw * 8, 1) + b"\x01\x11\x00")
        + _jpeg_segment(0xC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS))
        + _jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
        + _jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + bytes(data)
    )
    return head, b"\xff\xd9"


def _padding(kind: str, total: int) -> Iterator[bytes]:
    """Padding segments of exactly `total` bytes: PNG private chunks or JPEG comments."""
    overhead, limit = (12, _CHUNK) if kind == "png" else (4, 65533)
    count = -(-total // (limit + overhead))
    for i in range(count):
        size = total // count + (1 if i < total % count else 0) - overhead
        if kind == "png":
            # A private ancillary chunk ("spAd"): decoders skip it; CRC computed incrementally.
            yield struct.pack(">I", size) + b"spAd"
            crc = zlib.crc32(b"spAd")
            zeros = bytes(min(size, _CHUNK))
            left = size
            while left:
                piece = zeros[: min(left, _CHUNK)]
                crc = zlib.crc32(piece, crc)
                yield piece
                left -= len(piece)
            yield struct.pack(">I", crc)
        else:
            yield struct.pack(">BBH", 0xFF, 0xFE, size + 2) + bytes(size)


def write_image(
    path: Path, kind: str, rng: random.Random, comment: str, size: int | None = None
) -> tuple[int, str]:
    """Write a PNG or JPEG to `path` (padded to `size` bytes if given); return (size, MD5 hex).

    MD5 is the platform's file checksum (its client's `hash_file`), kept in the file table.
    """
    build = png_parts if kind == "png" else jpeg_parts
    state = rng.getstate()
    head, tail = build(rng, comment)
    pad = 0
    if size is not None:
        pad = size - len(head) - len(tail)
        overhead = 12 if kind == "png" else 4
        if 0 < pad < overhead:
            # Too little room for a padding segment: grow the comment instead.
            rng.setstate(state)
            head, tail = build(rng, comment + " " * pad)
            pad = size - len(head) - len(tail)
    digest = hashlib.md5(usedforsecurity=False)
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        padding = _padding(kind, pad) if pad > 0 else iter(())
        for piece in itertools.chain([head], padding, [tail]):
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    return written, digest.hexdigest()


def sniff_content_type(first_bytes: bytes) -> str | None:
    """The image MIME type from magic bytes, None when not PNG or JPEG."""
    if first_bytes.startswith(PNG_SIGNATURE):
        return "image/png"
    if first_bytes.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None
