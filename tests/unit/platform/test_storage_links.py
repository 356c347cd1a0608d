"""Storage links that expire (issue 13, point 6): a refused link is replaced by a fresh one from
the file's metadata, once."""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import count

import pytest
from test_retry import Reply, Stub, make_api

from scanjobs.errors import PermanentError

META = "/api/v1/master-data/file-upload/7/"
EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
)


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def links_in_turn(stub: Stub) -> None:
    """Metadata that gives a new signed link at each request: /media/a.png?sig=1, ?sig=2, ..."""
    numbers = count(1)
    stub.route(
        "GET",
        META,
        Reply(
            200,
            lambda h, b: Reply(
                200, {"id": 7, "file": f"{stub.url}/media/a.png?sig={next(numbers)}", "size": 4}
            ),
        ),
    )


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_link_is_fetched_again_from_the_metadata(stub: Stub, status: int) -> None:
    """issue 13, point 6: an expired link (403 from S3 or Azure; 401 for a signature refused)
    failed the file for good; the metadata has a fresh link."""
    links_in_turn(stub)
    stub.route("GET", "/media/a.png", Reply(status, EXPIRED.encode()), Reply(200, b"\x89PNG"))
    dest = io.BytesIO()
    with make_api(stub) as api:
        meta, result = api.download_file(7, dest)
    assert dest.getvalue() == b"\x89PNG" and result.bytes == 4 and meta.id == 7
    assert [s.path for s in stub.seen if s.path.startswith("/media/")] == [
        "/media/a.png?sig=1",
        "/media/a.png?sig=2",
    ]
    assert stub.count("GET", META) == 2


def test_a_fresh_link_refused_too_fails_the_file_once_and_for_all(stub: Stub) -> None:
    """issue 13, point 6: once, not forever; the message says a fresh link was tried, never the
    link's query string."""
    links_in_turn(stub)
    stub.route("GET", "/media/a.png", Reply(403, EXPIRED.encode()))
    with make_api(stub) as api, pytest.raises(PermanentError) as info:
        api.download_file(7, io.BytesIO())
    assert info.value.status == 403
    assert "fresh link" in str(info.value) and "Request has expired" in str(info.value)
    assert "sig=" not in str(info.value)
    assert stub.count("GET", META) == 2 and stub.count("GET", "/media/a.png") == 2


def test_other_refusals_are_not_taken_for_an_expired_link(stub: Stub) -> None:
    """A 404 (the file is gone) is not mended by a fresh link: one metadata request only."""
    links_in_turn(stub)
    stub.route("GET", "/media/a.png", Reply(404, b"<Error><Code>NoSuchKey</Code></Error>"))
    with make_api(stub) as api, pytest.raises(PermanentError) as info:
        api.download_file(7, io.BytesIO())
    assert info.value.status == 404
    assert stub.count("GET", META) == 1 and stub.count("GET", "/media/a.png") == 1
