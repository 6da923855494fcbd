"""The Persona client: the only module that talks to Persona (or to the local emulator).

Timeouts on every call, a bounded retry policy (GETs; POSTs only with an Idempotency-Key),
429 honoured up to a small cap, no redirects, typed errors. Never logs a token or the key.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from .config import EMULATOR_API_KEY

log = logging.getLogger(__name__)

# Persona's ids are opaque: only what could break the URL path is refused (never "not found").
INQUIRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
EARLIEST_TIME = datetime(2000, 1, 1)
LATEST_TIME = datetime(2200, 1, 1)


class PersonaError(Exception):
    """Base of every error this client raises."""


class PersonaNotFoundError(PersonaError):
    """Persona does not know the inquiry (404), or the id is not an inquiry id."""


class PersonaConflictError(PersonaError):
    """The inquiry is not in a state that allows the call (409), e.g. resume when completed."""


class PersonaRequestError(PersonaError):
    """Persona refused the request as invalid (400, 422, other 4xx)."""

    def __init__(self, status: int, title: str = "") -> None:
        super().__init__(f"HTTP {status}: {title}")
        self.status = status


class PersonaUnavailableError(PersonaError):
    """Persona could not be reached or answered in a way we cannot use; try again later."""

    def __init__(self, reason: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds


class PersonaCredentialsError(PersonaUnavailableError):
    """Persona rejected our API key (401/403): an operator must fix the configuration."""


class PersonaBadResponseError(PersonaUnavailableError):
    """Persona answered with something that is not the document we expect."""


@dataclass(frozen=True)
class PersonaInquiry:
    id: str
    status: str
    reference_id: str | None
    expires_at: datetime | None
    next_step_name: str | None
    redacted: bool

    @property
    def effective_status(self) -> str:
        return "redacted" if self.redacted else self.status


@dataclass(frozen=True)
class ResumedInquiry:
    inquiry: PersonaInquiry
    session_token: str


def parse_time(value: Any) -> datetime | None:
    """Persona's ISO 8601 timestamps as naive UTC (our storage convention)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)  # OverflowError at the year's edges
    except (ValueError, OverflowError):
        return None
    if not EARLIEST_TIME <= parsed <= LATEST_TIME:
        return None  # no real Persona time; later date arithmetic would overflow
    return parsed


def parse_inquiry(data: Any) -> PersonaInquiry:
    """A JSON:API inquiry object as a PersonaInquiry. Raises PersonaBadResponseError."""
    if not isinstance(data, dict) or data.get("type") != "inquiry":
        raise PersonaBadResponseError("response has no inquiry")
    attrs = data.get("attributes")
    inquiry_id = data.get("id")
    if not isinstance(attrs, dict) or not isinstance(inquiry_id, str):
        raise PersonaBadResponseError("inquiry without id or attributes")
    status = attrs.get("status")
    if not isinstance(status, str) or not status:
        raise PersonaBadResponseError("inquiry without status")
    reference_id = attrs.get("reference-id")
    next_step = attrs.get("next-step-name")
    return PersonaInquiry(
        id=inquiry_id,
        status=status,
        reference_id=reference_id if isinstance(reference_id, str) else None,
        expires_at=parse_time(attrs.get("expires-at")),
        next_step_name=next_step if isinstance(next_step, str) else None,
        redacted=bool(attrs.get("redacted-at")),
    )


class CircuitBreaker:
    """After `threshold` failed calls in a row, fail fast for `cooldown_seconds`, then let one
    probe through: its success closes the breaker, its failure opens it again. Per process."""

    def __init__(self, threshold: int, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """Failing fast right now (a probe may be due)."""
        with self._lock:
            return self._opened_at is not None

    def before_call(self) -> None:
        """Raises PersonaUnavailableError while open (no call is made)."""
        with self._lock:
            if self._opened_at is None:
                return
            waited = self.clock() - self._opened_at
            if waited < self.cooldown_seconds or self._probing:
                remaining = max(int(self.cooldown_seconds - waited) + 1, 1)
                raise PersonaUnavailableError("circuit open", remaining)
            self._probing = True  # half-open: this call is the probe

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures, self._opened_at, self._probing = 0, None, False
                return
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                if self._opened_at is None or self._probing:
                    log.error("Persona failing: not calling it for %.0f s", self.cooldown_seconds)
                self._opened_at, self._probing = self.clock(), False


def _retry_after(response: requests.Response) -> float | None:
    for header in ("Retry-After", "RateLimit-Reset"):
        value = response.headers.get(header)
        if value is not None:
            try:
                seconds = float(value)
            except ValueError:
                continue
            if math.isfinite(seconds):  # `inf`/`nan` would crash int() and sleep()
                return max(seconds, 0.0)
    return None


class PersonaClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        version: str,
        connect_timeout_seconds: float,
        read_timeout_seconds: float,
        max_retries: int = 1,
        retry_after_cap_seconds: float = 1.0,
        unavailable_retry_after_seconds: int = 30,
        breaker_threshold: int = 5,
        breaker_cooldown_seconds: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.version = version
        self.timeout = (connect_timeout_seconds, read_timeout_seconds)
        self.max_retries = max_retries
        self.retry_after_cap_seconds = retry_after_cap_seconds
        self.unavailable_retry_after_seconds = unavailable_retry_after_seconds
        self._local = threading.local()  # requests.Session is not documented as thread-safe
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_seconds)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PersonaClient:
        """A client with the app's PERSONA_* settings (no key set: the emulator's)."""
        return cls(
            config["PERSONA_API_BASE_URL"],
            config["PERSONA_API_KEY"] or EMULATOR_API_KEY,
            version=config["PERSONA_VERSION"],
            connect_timeout_seconds=config["PERSONA_CONNECT_TIMEOUT_SECONDS"],
            read_timeout_seconds=config["PERSONA_READ_TIMEOUT_SECONDS"],
            max_retries=config["PERSONA_MAX_RETRIES"],
            retry_after_cap_seconds=config["PERSONA_RETRY_AFTER_CAP_SECONDS"],
            unavailable_retry_after_seconds=config["PERSONA_UNAVAILABLE_RETRY_AFTER_SECONDS"],
            breaker_threshold=config["PERSONA_BREAKER_FAILURES"],
            breaker_cooldown_seconds=config["PERSONA_BREAKER_COOLDOWN_SECONDS"],
        )

    def __repr__(self) -> str:  # keeps the key out of any debug output
        return f"PersonaClient(base_url={self.base_url!r})"

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(
                {
                    "Authorization": f"Bearer {self._api_key}",
                    "Persona-Version": self.version,
                    "Key-Inflection": "kebab",
                    "Accept": "application/json",
                    "User-Agent": "continue-verification/1.0",
                }
            )
            self._local.session = session
        return session

    # -- calls ---------------------------------------------------------------------------
    def get_inquiry(self, inquiry_id: str) -> PersonaInquiry:
        """The inquiry as Persona sees it now. Raises PersonaNotFoundError, PersonaUnavailableError."""
        body = self._request("GET", f"/inquiries/{self._checked(inquiry_id)}")
        return parse_inquiry(body.get("data"))

    def create_inquiry(self, *, template_id: str, reference_id: str, idempotency_key: str) -> PersonaInquiry:
        """Create an inquiry server-side; the same key returns the same inquiry."""
        payload = {"data": {"attributes": {"inquiry-template-id": template_id, "reference-id": reference_id}}}
        body = self._request("POST", "/inquiries", json=payload, idempotency_key=idempotency_key)
        return parse_inquiry(body.get("data"))

    def resume_inquiry(self, inquiry_id: str) -> ResumedInquiry:
        """A session token for the inquiry. Raises PersonaConflictError when it cannot resume."""
        body = self._request(
            "POST",
            f"/inquiries/{self._checked(inquiry_id)}/resume",
            json={"meta": {}},
            idempotency_key=str(uuid.uuid4()),
        )
        meta = body.get("meta")
        token = meta.get("session-token") if isinstance(meta, dict) else None
        if not isinstance(token, str) or not token:
            raise PersonaBadResponseError("resume answer has no session token")
        return ResumedInquiry(parse_inquiry(body.get("data")), token)

    # -- plumbing ------------------------------------------------------------------------
    @staticmethod
    def _checked(inquiry_id: str) -> str:
        """An id safe to put in a URL path; anything else is our own bad request, not a 404."""
        if not isinstance(inquiry_id, str) or not INQUIRY_ID.match(inquiry_id):
            raise PersonaRequestError(400, "not a usable inquiry id")
        return inquiry_id

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        """One logical call (with its retries) through the circuit breaker."""
        self.breaker.before_call()
        try:
            body = self._call(method, path, json, idempotency_key)
        except PersonaUnavailableError:
            self.breaker.record(ok=False)
            raise
        except PersonaError:
            self.breaker.record(ok=True)  # Persona answered (404, 409, 4xx): it is up
            raise
        self.breaker.record(ok=True)
        return body

    def _call(self, method: str, path: str, json: dict | None, idempotency_key: str | None) -> dict:
        retryable = method == "GET" or idempotency_key is not None
        key = idempotency_key
        attempt = 0
        while True:
            attempt += 1
            can_retry = retryable and attempt <= self.max_retries
            response = self._send(method, path, json, key, can_retry)
            if response is None:
                continue  # refused or reset: retried with the same key
            wait = self._retry_wait(response, can_retry)
            if wait is None:
                return self._document(response)
            if response.status_code >= 500 and idempotency_key:
                # Persona replays a stored 5xx for the same key: retry under a new one.
                key = f"{idempotency_key}-retry{attempt}"
            time.sleep(wait)

    def _send(
        self, method: str, path: str, json: dict | None, key: str | None, can_retry: bool
    ) -> requests.Response | None:
        """The response; None when a connection error is worth one more try."""
        headers = {"Idempotency-Key": key} if key else {}
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("persona %s %s failed: %s", method, path, type(exc).__name__)
            # Refused or reset: retry once, with the same key (Persona replays its first
            # answer for it). A timeout already spent the budget a person waits for: no retry.
            if can_retry and isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
                self._pause()
                return None
            raise PersonaUnavailableError(type(exc).__name__, self._retry_after()) from exc
        log.info(
            "persona %s %s -> %s in %.0f ms (request id %s)",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            response.headers.get("Request-Id", "-"),
        )
        return response

    def _retry_wait(self, response: requests.Response, can_retry: bool) -> float | None:
        """Seconds to wait before retrying a 429/5xx; None for other answers. Raises when spent."""
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            if can_retry and wait is not None and wait <= self.retry_after_cap_seconds:
                return wait
            retry_after = int(wait) + 1 if wait is not None else self._retry_after()
            raise PersonaUnavailableError("rate limited", retry_after)
        if status >= 500:
            if can_retry:
                return random.uniform(0.05, 0.2)  # jitter, no secret; short: a person waits  # nosec B311
            raise PersonaUnavailableError(f"HTTP {status}", self._retry_after())
        return None

    def _document(self, response: requests.Response) -> dict:
        """The JSON body of a 2xx answer; typed errors for everything else."""
        status = response.status_code
        if status in (401, 403):
            log.error("persona rejected our API key (HTTP %s): check PERSONA_API_KEY", status)
            raise PersonaCredentialsError(f"HTTP {status}", self._retry_after())
        if status == 404:
            raise PersonaNotFoundError(response.request.path_url if response.request else "")
        if status == 409:
            raise PersonaConflictError("conflict")
        if 300 <= status < 400:
            raise PersonaBadResponseError(f"unexpected redirect (HTTP {status})")
        if status >= 400:
            raise PersonaRequestError(status, self._error_title(response))
        try:
            body = response.json()
        except ValueError as exc:
            raise PersonaBadResponseError("invalid JSON") from exc
        if not isinstance(body, dict):
            raise PersonaBadResponseError("JSON body is not an object")
        return body

    def _retry_after(self) -> int:
        return self.unavailable_retry_after_seconds

    @staticmethod
    def _pause() -> None:
        time.sleep(random.uniform(0.05, 0.2))  # jitter, no secret  # nosec B311

    @staticmethod
    def _error_title(response: requests.Response) -> str:
        try:
            errors = response.json().get("errors") or []
            return str(errors[0].get("title", ""))[:200]
        except (ValueError, AttributeError, IndexError, TypeError):
            return ""
