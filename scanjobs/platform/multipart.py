"""The multipart/form-data body of an upload, streamed from a file with a known length."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["MultipartBody", "CHUNK_SIZE"]

CHUNK_SIZE = 256 * 1024


class MultipartBody:
    """A multipart/form-data body streamed from a file object, with a known length.

    A form library would read the file into memory; this reads it chunk by chunk while sending,
    and `__len__` gives the Content-Length, so the body is not sent chunked (which some upload
    proxies refuse).
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        filename: str,
        content_type: str,
        fields: dict[str, str],
    ) -> None:
        self.boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            )
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{_quote_filename(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        self._head = "".join(parts).encode("utf-8")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        fileobj.seek(0, 2)
        self._file_size = fileobj.tell()
        fileobj.seek(0)
        self._file = fileobj
        self._chunks = self._generate()
        self._pending = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._file_size + len(self._tail)

    def _generate(self) -> Iterator[bytes]:
        yield self._head
        while chunk := self._file.read(CHUNK_SIZE):
            yield chunk
        yield self._tail

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def read(self, size: int = -1) -> bytes:
        """File-like read so urllib3 pulls the body at its own block size."""
        while size < 0 or len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        if size < 0:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


def _quote_filename(name: str) -> str:
    # A quote or line break in a filename would end the header early and corrupt the part.
    return name.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
