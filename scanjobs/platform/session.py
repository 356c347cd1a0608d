"""A session with one platform instance's HTTP API: login and token, one attempt, retries, errors.

The calls themselves (files, uploads, scans) are in api.py, built on `ApiSession._api_call`.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Sized
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from scanjobs.errors import AuthError, PermanentError, TransientError, UnreachableError
from scanjobs.platform.budget import BudgetCounts, Limits, RequestBudget
from scanjobs.platform.hedge import Hedge, HedgeCounts
from scanjobs.platform.http import (
    AnswerLost,
    ConnectFailed,
    Response,
    TooManyRedirects,
    Transport,
    TransportError,
)
from scanjobs.platform.retry import (
    OnRetry,
    RetryableFailure,
    RetryPolicy,
    Timeouts,
    call_with_retry,
    parse_retry_after,
)

__all__ = [
    "ApiSession",
    "Slot",
    "TRANSIENT_STATUSES",
    "NOT_TAKEN_5XX",
    "Unauthorized",
    "render_body",
    "BODY_KEEP",
    "NOT_RESENT",
]

# What a call holds while a request is on the wire, and releases while it waits to retry: a
# semaphore of the endpoint's workers makes them count requests, not threads asleep in backoff.
Slot = contextlib.AbstractContextManager[Any]

# 424: the same request uid is still being processed; 429: rate limit (with Retry-After).
TRANSIENT_STATUSES = frozenset({424, 429, 502, 503, 504})
# After a request went out whole, a 5xx may come after the platform acted: a proxy's 502/504 (the
# server behind it failed or was slow), a 500 (it failed, perhaps after storing). A request that
# is not idempotent is not sent again after one of these; only a 503 says it was not taken.
NOT_TAKEN_5XX = frozenset({503})
NOT_RESENT = "the platform may have acted on it, so it is not resent"
BODY_KEEP = 2000  # characters of an error body kept on PermanentError.body
# How the platform's own client tells a login that wants the code it emailed (an answer with
# "2FA" or "code" in it); scanjobs cannot type one in, so it asks for a token instead.
_TWO_FACTOR = re.compile(r"2fa|two[- ]factor|verification|\bcode\b", re.IGNORECASE)
# A call that checks a given token: scan 0 cannot exist, so the platform answers 404 when it takes
# the token and 401 when it does not (it authenticates before it looks anything up).
TOKEN_PROBE = "/api/v4/processing/actions/0/"

_S = TypeVar("_S", bound="ApiSession")


class Unauthorized(Exception):
    """A 401 on a token call: the caller re-logs in once and repeats (a given token: AuthError)."""


def _render_json(value: Any) -> str:
    """DRF error bodies, compactly: {"files": ["Invalid pk"]} -> 'files: Invalid pk'."""
    if isinstance(value, dict):
        items = []
        for key, sub in value.items():
            text = _render_json(sub)
            # DRF's `detail`, the platform's `error` (a 424's body): the message itself
            items.append(text if key in ("detail", "error", "non_field_errors") else f"{key}: {text}")
        return "; ".join(items)
    if isinstance(value, list):
        return "; ".join(_render_json(v) for v in value)
    return str(value)


def render_body(response: Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    return _render_json(data)


class ApiSession:
    """A logged-in session with one platform instance: token, retries, one re-login on 401.

    It logs in with `username` and `password`, or uses a ready `token` (an account with
    two-factor login has no other way in): one or the other. PlatformAPI (api.py) adds the calls
    on top. Safe to share between threads.
    """

    def __init__(
        self,
        api_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        token: str | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so a shared default is safe
        timeouts: Timeouts = Timeouts(),  # noqa: B008
        pool_size: int = 32,
        on_retry: OnRetry | None = None,
        limits: Limits | None = None,
        hedging: bool = True,
    ) -> None:
        with_login = username is not None or password is not None
        if (token is not None and with_login) or (token is None and (username is None or password is None)):
            raise ValueError("a platform session needs a token or a username and password (not both)")
        self.api_url = api_url.rstrip("/")
        self.username = username
        self._password = password
        self._retry = retry
        self._timeouts = timeouts
        self._on_retry = on_retry
        self._token: str | None = token
        self._token_given = token is not None  # no login: a 401 cannot be mended by logging in
        self._login_lock = threading.Lock()
        self._http = Transport(pool_size=pool_size)
        # The instance's request budget (budget.py), over every request of this session.
        self._budget = (
            None if limits is None else RequestBudget(limits, retry_after_cap=retry.retry_after_cap)
        )
        self._hedging = hedging
        self._hedges: dict[str, Hedge] = {}  # by endpoint: "<what> <host>"
        self._hedges_lock = threading.Lock()

    def __repr__(self) -> str:
        who = "token=***" if self._token_given else f"username={self.username!r}"
        return f"{type(self).__name__}({self.api_url!r}, {who})"

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- helpers -------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in (self._password, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text

    @property
    def timeouts(self) -> Timeouts:
        """The time limits of this session's attempts (`limit(size)`: one attempt's wall clock)."""
        return self._timeouts

    @property
    def hedge_counts(self) -> HedgeCounts:
        """Hedged reads of this session: reads that could be hedged, hedges sent, hedges won."""
        with self._hedges_lock:
            hedges = list(self._hedges.values())
        return sum((hedge.counts for hedge in hedges), HedgeCounts())

    @property
    def budget_counts(self) -> BudgetCounts | None:
        """What the instance's request budget did (None: the instance has no limits)."""
        return None if self._budget is None else self._budget.counts

    def _hedge(self, what: str | None, url: str) -> Hedge | None:
        """The hedge record of endpoint `what` at `url`'s host (None: not hedged)."""
        if what is None or not self._hedging:
            return None
        key = f"{what} {urlsplit(url).netloc}"
        with self._hedges_lock:
            hedge = self._hedges.get(key)
            if hedge is None:
                hedge = self._hedges[key] = Hedge()
            return hedge

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self._timeouts.connect, self._timeouts.read)

    def _send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        body: Any = None,
        stream: bool = False,
        size: int | None = None,
        hedge: str | None = None,
    ) -> Response:
        """One attempt: a response, or RetryableFailure for what the caller may retry.

        `idempotent`: whether the request may be sent again after it went out whole (it creates
        nothing twice). If not, only failures that prove the platform did not act are retried.
        `size` (bytes the attempt moves, when known) extends its wall-clock limit. `hedge` names
        the endpoint of a GET that may be hedged (hedge.py). Every attempt goes through the
        instance's request budget, which sees every answer's status.
        """
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method,
                url,
                headers=headers,
                body=body,
                timeout=self._timeout,
                limit=self._timeouts.limit(size),
                stream=stream,
                budget=self._budget,
                hedge=self._hedge(hedge, url),
            )
            if self._budget is not None:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                self._budget.observe(response.status_code, retry_after)
            return response
        except ConnectFailed as exc:  # not sent whole: nothing can have happened
            raise RetryableFailure(exc.reason, connection=True) from exc
        except TooManyRedirects as exc:
            raise PermanentError(f"{method} {urlsplit(url).path}: {exc.reason}") from exc
        except TransportError as exc:  # sent; then no answer, none in time, or the answer broke off
            if not idempotent:
                # The upload may be stored: sending it again could store it twice. Failing it
                # leaves it unsettled: the next run looks for it on the platform.
                raise TransientError(f"{method} {urlsplit(url).path}: {exc.reason}; {NOT_RESENT}") from exc
            raise RetryableFailure(exc.reason, connection=isinstance(exc, AnswerLost)) from exc

    def _check(self, response: Response, call: str, *, idempotent: bool = True) -> None:
        """Raise for any non-2xx: retryable, re-login, or permanent with the platform's words."""
        status = response.status_code
        if status < 400:
            return
        if status >= 500 and status not in NOT_TAKEN_5XX and not idempotent and response.request_sent:
            raise TransientError(
                f"{status} {response.reason} from {call} once the whole request was sent; {NOT_RESENT}",
                status=status,
            )
        if status in TRANSIENT_STATUSES:
            raise RetryableFailure(
                f"{status} {response.reason}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status == 401:
            raise Unauthorized()
        # 500 and other 5xx are platform bugs for this request: retrying the same input will
        # not fix them, so they fail the item at once like a 4xx (only 502/503/504 are transient).
        body = self._redact(response.text[:BODY_KEEP])
        message = self._redact(f"{status} {response.reason} from {call}: {render_body(response)}")
        raise PermanentError(message, status=status, body=body)

    def _api_call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        body_factory: Callable[[], tuple[Any, dict[str, str]]] | None = None,
        slot: Slot | None = None,
        before_send: Callable[[], None] | None = None,
        on_answer: Callable[[Any], None] | None = None,
        hedge: str | None = None,
    ) -> Any:
        """A token call with retries, one re-login on 401, and the JSON answer returned.

        `idempotent`: see `_send`. `body_factory` builds each attempt's body and its headers (a fresh
        upload stream each time).
        `slot` (a semaphore, say) is held during each attempt, not while waiting to retry.
        `before_send` runs inside the slot before each attempt is sent, and `on_answer` inside the
        slot with the accepted answer: what they record happens in the order the requests go out.
        `hedge` names the endpoint of an idempotent GET that may be hedged (see `_send`).
        """
        url = f"{self.api_url}{path}"
        call = f"{method} {path}"
        for relogin in (True, False):
            token = self._ensure_token()

            def attempt(token: str = token) -> Any:
                body, extra = body_factory() if body_factory else (None, {})
                with slot or contextlib.nullcontext():
                    if before_send is not None:
                        before_send()
                    response = self._send(
                        method,
                        url,
                        idempotent=idempotent,
                        headers={**(headers or {}), **extra, "Authorization": f"Token {token}"},
                        json_body=json_body,
                        body=body,
                        size=len(body) if isinstance(body, Sized) else None,
                        hedge=hedge,
                    )
                    self._check(response, call, idempotent=idempotent)
                    try:
                        data = response.json()
                    except ValueError as exc:
                        text = f"{call}: answer is not JSON: {render_body(response)}"
                        if not idempotent:  # a 2xx: whatever it says, the platform may have acted
                            raise TransientError(
                                f"{text}; {NOT_RESENT}", status=response.status_code
                            ) from exc
                        raise PermanentError(
                            text, status=response.status_code, body=response.text[:BODY_KEEP]
                        ) from exc
                    if on_answer is not None:
                        on_answer(data)
                return data

            try:
                return call_with_retry(
                    attempt,
                    policy=self._retry,
                    call=call,
                    target=self.api_url,
                    on_retry=self._on_retry,
                )
            except Unauthorized:
                if self._token_given:
                    raise AuthError(
                        f"the platform at {self.api_url} refused the API token (401 Unauthorized "
                        f"from {call}); a given token cannot be renewed by logging in again",
                        hint="the token may have expired or been revoked: give this instance a new one",
                    ) from None
                if not relogin:
                    break
                self._relogin(token)
        raise AuthError(
            f"{call} refused with 401 Unauthorized even after logging in again as "
            f"{self.username!r} at {self.api_url}"
        )

    # -- authentication ------------------------------------------------------------------------

    def _ensure_token(self) -> str:
        token = self._token
        if token is None:
            with self._login_lock:
                if self._token is None:
                    self._login_locked()
                token = self._token
        assert token is not None
        return token

    def _relogin(self, stale_token: str) -> None:
        # Twenty threads seeing the same 401 must cause one login: only the first one to get the
        # lock still sees the stale token; the rest find a fresh one and simply retry.
        with self._login_lock:
            if self._token == stale_token:
                self._login_locked()

    def login(self) -> None:
        """Get a token, or check the one given. AuthError at once if refused; UnreachableError if
        the API can't answer."""
        if self._token_given:
            with contextlib.suppress(PermanentError):  # 404 (any answer but a 401): it was taken
                self._api_call("GET", TOKEN_PROBE)
            return
        with self._login_lock:
            self._login_locked()

    def _login_locked(self) -> None:
        assert not self._token_given, "a session with a given token never logs in"
        path = "/api/v4/token-auth/"
        url = f"{self.api_url}{path}"

        def attempt() -> str:
            response = self._send(
                "POST",
                url,
                idempotent=True,  # a login creates nothing that matters twice: safe to repeat
                json_body={"username": self.username, "password": self._password},
            )
            status = response.status_code
            if status in (400, 401, 403) and _TWO_FACTOR.search(response.text):
                raise AuthError(
                    self._redact(
                        f"login as {self.username!r} at {self.api_url}: this account needs "
                        f"two-factor login: use a token (the platform answered {status} "
                        f"{response.reason}: {render_body(response)})"
                    ),
                    hint="give this instance `token: ${VAR}` (an API token of this account, set in "
                    "the environment or .env) instead of username and password",
                )
            if status in (400, 401, 403):
                raise AuthError(
                    self._redact(
                        f"login as {self.username!r} at {self.api_url} refused "
                        f"({status} {response.reason}): {render_body(response)}"
                    ),
                    hint="check the username and password of this instance",
                )
            if status >= 500 or status in TRANSIENT_STATUSES:
                raise RetryableFailure(
                    f"{status} {response.reason}",
                    status=status,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    connection=True,  # no login means no platform: unreachable, not per item
                )
            if status >= 400:
                raise UnreachableError(
                    self._redact(
                        f"cannot log in at {url}: {status} {response.reason}: {render_body(response)}"
                    ),
                    hint="check api_url of this instance",
                )
            try:
                token = response.json()["token"]
            except (ValueError, KeyError, TypeError) as exc:
                raise UnreachableError(f"cannot log in at {url}: the answer has no token") from exc
            return str(token)

        self._token = call_with_retry(
            attempt,
            policy=self._retry,
            call=f"POST {path}",
            target=self.api_url,
            on_retry=self._on_retry,
        )

    # -- calls ---------------------------------------------------------------------------------
