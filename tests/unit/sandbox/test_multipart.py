"""The sandbox's multipart reader against bodies cut at every possible read boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from scanjobs.sandbox.multipart import FormReader, MultipartError, boundary_of

BOUNDARY = "b0undary-42"


def body(*parts: tuple[str, bytes], preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    out = preamble
    for headers, data in parts:
        out += f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--".encode() + epilogue


def reader(data: bytes, step: int) -> Callable[[int], Awaitable[bytes]]:
    """A stream that never gives more than `step` bytes per read."""
    pos = 0

    async def read(n: int) -> bytes:
        nonlocal pos
        chunk = data[pos : pos + min(n, step)]
        pos += len(chunk)
        return chunk

    return read


def parse(data: bytes, step: int, chunk_size: int = 1 << 16) -> list[tuple[str | None, str | None, bytes]]:
    async def go() -> list[tuple[str | None, str | None, bytes]]:
        form = FormReader(reader(data, step), BOUNDARY, chunk_size)
        out = []
        async for part in form.parts():
            out.append((part.name, part.filename, b"".join([c async for c in form.chunks()])))
        return out

    return asyncio.run(go())


FILE = bytes(range(256)) * 40 + b"\r\n--b0undary" + b"\r\n-" * 3  # near-delimiters inside the data
FORM = body(
    ('Content-Disposition: form-data; name="input_type"', b"image"),
    (
        'Content-Disposition: form-data; name="file"; filename="a \\"b\\".jpg"\r\nContent-Type: image/jpeg',
        FILE,
    ),
    ("Content-Disposition: form-data; name=store", b"12"),
    preamble=b"ignored preamble\r\n",
)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 16, 17, 64, 1000, 1 << 20])
def test_parts_survive_any_read_size(step: int) -> None:
    assert parse(FORM, step, chunk_size=max(step, 5)) == [
        ("input_type", None, b"image"),
        ("file", 'a "b".jpg', FILE),
        ("store", None, b"12"),
    ]


def test_unread_parts_are_skipped_and_a_part_may_have_no_headers() -> None:
    data = body(("", b"anonymous"), ('Content-Disposition: form-data; name="x"', b"1"))

    async def go() -> list[str | None]:
        form = FormReader(reader(data, 5), BOUNDARY)
        return [part.name async for part in form.parts()]  # never reads a body

    assert asyncio.run(go()) == [None, "x"]


@pytest.mark.parametrize("cut", [10, len(FORM) // 2, len(FORM) - 5])
def test_a_body_cut_short_is_an_error(cut: int) -> None:
    with pytest.raises(MultipartError, match="ended before the closing boundary"):
        parse(FORM[:cut], 64)


def test_field_size_is_limited() -> None:
    async def go() -> None:
        data = body(('Content-Disposition: form-data; name="x"', b"y" * 100))
        form = FormReader(reader(data, 10), BOUNDARY)
        async for _ in form.parts():
            await form.read(50)

    with pytest.raises(MultipartError, match="larger than 50 bytes"):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('Multipart/Form-Data; charset=utf-8; BOUNDARY="a b;c"', "a b;c"),
        ("multipart/form-data", None),
        ("application/json", None),
        ("", None),
    ],
)
def test_boundary_of(header: str, expected: str | None) -> None:
    assert boundary_of(header) == expected


def test_memory_storage_keeps_to_its_budget() -> None:
    from scanjobs.sandbox.api import MemoryStorage

    memory = MemoryStorage(budget=10)
    assert memory.put("a", b"123456") and memory.put("b", b"1234")
    assert not memory.put("c", b"1")  # over budget: the caller writes it to disk instead
    assert memory.blobs == {"a": b"123456", "b": b"1234"} and memory.used == 10
