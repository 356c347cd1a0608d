"""Logging in to the platform API: a password login, a two-factor account, a ready token."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from test_retry import FAST, PASSWORD, Reply, Stub, make_api

from scanjobs.errors import AuthError, ExitCode
from scanjobs.platform.api import PlatformAPI
from scanjobs.platform.retry import Timeouts

TOKEN = "0123456789abcdef-ready-token"
META = "/api/v1/master-data/file-upload/7/"
LOGIN = "/api/v4/token-auth/"
PROBE = "/api/v4/processing/actions/0/"
# What the platform's client looks for in a refused login to ask for the emailed code.
TWO_FACTOR_ANSWERS = [
    {"non_field_errors": ["2FA is enabled: enter the verification code sent to your email."]},
    {"verification_code": ["This field is required."]},
    {"detail": "Please provide the code we sent to you."},
]


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def token_api(stub: Stub, token: str = TOKEN) -> PlatformAPI:
    return PlatformAPI(stub.url, token=token, retry=FAST, timeouts=Timeouts(connect=2, read=2))


@pytest.mark.parametrize("answer", TWO_FACTOR_ANSWERS)
def test_a_two_factor_account_is_told_to_use_a_token(stub: Stub, answer: dict[str, object]) -> None:
    """issue 13, point 3: an account with two-factor login was reported as a wrong password."""
    stub.route("POST", LOGIN, Reply(400, answer))
    with make_api(stub) as api, pytest.raises(AuthError) as info:
        api.login()
    message = str(info.value)
    assert "this account needs two-factor login: use a token" in message
    assert "token: ${" in message  # the hint says how to give one
    assert info.value.exit_code == ExitCode.UNREACHABLE
    assert stub.count("POST", LOGIN) == 1  # no code to send, so no second try
    assert PASSWORD not in message


def test_a_wrong_password_is_not_taken_for_two_factor(stub: Stub) -> None:
    """issue 13, point 3: the ordinary refusal still says to check the username and password."""
    stub.route(
        "POST", LOGIN, Reply(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
    )
    with make_api(stub) as api, pytest.raises(AuthError) as info:
        api.login()
    assert "two-factor" not in str(info.value) and "username and password" in str(info.value)


def test_a_ready_token_is_sent_without_logging_in(stub: Stub) -> None:
    """issue 13, point 3: an instance may give a token instead of a username and password."""
    stub.route("GET", META, Reply(200, {"id": 7, "file": "http://x/a"}))
    with token_api(stub) as api:
        assert api.file_meta(7).id == 7
    assert stub.count("POST", LOGIN) == 0
    meta = next(s for s in stub.seen if s.path == META)
    assert meta.headers["Authorization"] == f"Token {TOKEN}"
    assert TOKEN not in repr(api)


def test_login_with_a_token_checks_it_without_logging_in(stub: Stub) -> None:
    """issue 13, point 3: `plan` and the start of a run see a refused token at once; a call that
    cannot succeed (scan 0) tells whether the platform takes it: 404, not 401."""
    stub.route("GET", PROBE, Reply(404, {"detail": "Not found."}))
    with token_api(stub) as api:
        api.login()
    assert stub.count("POST", LOGIN) == 0 and stub.count("GET", PROBE) == 1
    probe = next(s for s in stub.seen if s.path == PROBE)
    assert probe.headers["Authorization"] == f"Token {TOKEN}"


@pytest.mark.parametrize("call", ["login", "file_meta"])
def test_a_refused_token_is_an_auth_error_without_a_login(stub: Stub, call: str) -> None:
    """issue 13, point 3: a 401 with a given token cannot be mended by logging in again."""
    stub.route("GET", PROBE, Reply(401, {"detail": "Invalid token."}))
    stub.route("GET", META, Reply(401, {"detail": f"Invalid token {TOKEN}."}))
    with token_api(stub) as api, pytest.raises(AuthError) as info:
        api.login() if call == "login" else api.file_meta(7)
    message = str(info.value)
    assert "token" in message and "refused" in message
    assert TOKEN not in message and TOKEN not in repr(info.value.args)
    assert stub.count("POST", LOGIN) == 0
    assert len(stub.seen) == 1  # neither retried nor followed by a login


def test_a_session_needs_a_token_or_a_username_and_password(stub: Stub) -> None:
    with pytest.raises(ValueError, match="token or a username and password"):
        PlatformAPI(stub.url)
    with pytest.raises(ValueError, match="token or a username and password"):
        PlatformAPI(stub.url, "robot", PASSWORD, token=TOKEN)


def test_a_password_login_still_sends_the_credentials(stub: Stub) -> None:
    stub.route("GET", META, Reply(200, {"id": 7, "file": "http://x/a"}))
    with make_api(stub) as api:
        api.file_meta(7)
    login = next(s for s in stub.seen if s.path == LOGIN)
    assert json.loads(login.body) == {"username": "robot", "password": PASSWORD}
