"""A lean streaming multipart/form-data reader for the sandbox's upload endpoint.

aiohttp's reader parses every part header with the email package: that was a third of the
sandbox's CPU in a copy benchmark. Uploads need little of it (a part's name, its filename, its
bytes), so this reads exactly that, streaming the body so a 20 MB file never sits in memory.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["MultipartError", "FormReader", "boundary_of"]

_HEADERS_MAX = 16 * 1024
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_BOUNDARY = re.compile(r';\s*boundary\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)', re.IGNORECASE)


class MultipartError(ValueError):
    """The body is not well-formed multipart."""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def boundary_of(content_type: str) -> str | None:
    """The boundary of a `multipart/...; boundary=...` Content-Type, or None if it is not one."""
    if not content_type.lower().lstrip().startswith("multipart/"):
        return None
    match = _BOUNDARY.search(content_type)
    boundary = _unquote(match.group(1)) if match else ""
    return boundary if 0 < len(boundary) <= 200 else None


class Part:
    """One part's form name and filename (None when its Content-Disposition has none)."""

    __slots__ = ("name", "filename")

    def __init__(self, name: str | None, filename: str | None) -> None:
        self.name = name
        self.filename = filename


class FormReader:
    """`async for part in reader.parts()`, reading each part with `reader.chunks()` before the next."""

    def __init__(
        self, read: Callable[[int], Awaitable[bytes]], boundary: str, chunk_size: int = 1 << 16
    ) -> None:
        self._read = read
        self._chunk_size = chunk_size
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = b"\r\n"  # so the first delimiter looks like every later one
        self._in_body = False

    async def _fill(self) -> None:
        data = await self._read(self._chunk_size)
        if not data:
            raise MultipartError("the body ended before the closing boundary")
        self._buffer += data

    async def _skip_to_delimiter(self) -> None:
        while (at := self._buffer.find(self._delimiter)) < 0:
            self._buffer = self._buffer[-len(self._delimiter) :]  # preamble (or an unread body)
            await self._fill()
        self._buffer = self._buffer[at + len(self._delimiter) :]

    async def parts(self) -> AsyncIterator[Part]:
        await self._skip_to_delimiter()
        while True:
            while len(self._buffer) < 2:
                await self._fill()
            if self._buffer.startswith(b"--"):
                return  # the closing delimiter; what follows is epilogue
            while (end := self._buffer.find(b"\r\n\r\n")) < 0:
                if len(self._buffer) > _HEADERS_MAX:
                    raise MultipartError("part headers too long")
                await self._fill()
            head = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + 4 :]
            first, _, rest = head.partition("\r\n")
            if first.strip():  # only transport padding may follow the delimiter on its line
                raise MultipartError("garbage after a boundary")
            name = filename = None
            for line in rest.split("\r\n"):
                key, _, value = line.partition(":")
                if key.strip().lower() == "content-disposition":
                    params = {k.lower(): _unquote(v) for k, v in _PARAM.findall(value)}
                    name, filename = params.get("name"), params.get("filename")
            self._in_body = True
            yield Part(name, filename)
            if self._in_body:  # the caller did not read this part: skip it
                async for _ in self.chunks():
                    pass

    async def chunks(self) -> AsyncIterator[bytes]:
        """The current part's bytes as they arrive."""
        keep = len(self._delimiter) - 1
        while self._in_body:
            at = self._buffer.find(self._delimiter)
            if at >= 0:
                data, self._buffer = self._buffer[:at], self._buffer[at + len(self._delimiter) :]
                self._in_body = False
            elif len(self._buffer) > keep:
                data, self._buffer = self._buffer[:-keep], self._buffer[-keep:]
            else:
                data = b""
            if data:
                yield data
            if self._in_body:
                await self._fill()

    async def read(self, limit: int) -> bytes:
        """The current part's bytes, at most `limit` of them (MultipartError beyond)."""
        out = bytearray()
        async for data in self.chunks():
            out += data
            if len(out) > limit:
                raise MultipartError(f"a form field is larger than {limit} bytes")
        return bytes(out)
