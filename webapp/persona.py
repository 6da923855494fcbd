"""The Persona client: the only module that talks to Persona (or to the local emulator).

Timeouts on every call, a bounded retry policy (GETs; POSTs only with an Idempotency-Key),
no redirects, typed errors. Never logs a token or the key. Every HTTP request first spends
one call of the shared budget (budget.py); a 429 is back-pressure fed into that budget, never
a breaker failure. A person's page spends at most its deadline on Persona (`calls_for`).
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from .budget import STORE_ERRORS, MemoryState, PersonaBudget, Priority, SharedState, ceil_seconds
from .config import EMULATOR_API_KEY

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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


class PersonaBusyError(PersonaUnavailableError):
    """Over the shared budget, or Persona said 429: wait `retry_after_seconds`, then go on.
    Not an outage: the breaker ignores it and a person sees the waiting page."""


class PersonaSessionLimitError(PersonaError):
    """Persona refused a new session for this inquiry: it has used up its sessions (a 429 that
    is not the rate limit, docs/PERSONA-ASSUMPTIONS.md row 3). Nothing to wait for, and nothing
    the other callers of the budget need to wait for either."""


class PersonaDeadlineError(PersonaUnavailableError):
    """The page's time for Persona calls ran out before this call could be made."""


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
    # How many sessions Persona lists for it (its `sessions` relationship): whoever opened
    # them, live or ended; None when the answer did not say.
    session_count: int | None = None

    @property
    def effective_status(self) -> str:
        return "redacted" if self.redacted else self.status


@dataclass(frozen=True)
class TemplateVersions:
    """An inquiry's template version and its template's latest published version (None: the
    answer did not say)."""

    inquiry_version_id: str | None
    latest_published_version_id: str | None

    @property
    def drifted(self) -> bool:
        """A newer version was published since the inquiry was made (known only when both are)."""
        return bool(
            self.inquiry_version_id
            and self.latest_published_version_id
            and self.inquiry_version_id != self.latest_published_version_id
        )


@dataclass(frozen=True)
class ResumedInquiry:
    inquiry: PersonaInquiry
    session_token: str


@dataclass(frozen=True)
class CreatedInquiry:
    inquiry: PersonaInquiry
    session_token: str | None  # with `auto-create-inquiry-session`, when Persona sent one


@dataclass(frozen=True)
class RawAnswer:
    """An answer as Persona gave it (PersonaClient.exchange): status, JSON object or None, headers."""

    status: int
    body: dict | None
    headers: dict[str, str]


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
        session_count=_related_count(data, "sessions"),
    )


def _related_count(data: dict, name: str) -> int | None:
    """How many objects a JSON:API relationship lists, or None when it is not there."""
    relationships = data.get("relationships")
    related = relationships.get(name) if isinstance(relationships, dict) else None
    listed = related.get("data") if isinstance(related, dict) else None
    return len(listed) if isinstance(listed, list) else None


def _related_id(resource: Any, name: str) -> str | None:
    """`relationships.<name>.data.id` of a JSON:API object, if it is there."""
    relationships = resource.get("relationships") if isinstance(resource, dict) else None
    related = relationships.get(name) if isinstance(relationships, dict) else None
    data = related.get("data") if isinstance(related, dict) else None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def parse_template_versions(body: dict) -> TemplateVersions:
    """The versions in an inquiry read with `?include=inquiry-template` (RES): the inquiry's
    `inquiry-template-version`, and the included template's `latest-published-version`.
    Raises PersonaBadResponseError when `data` is no inquiry."""
    data = body.get("data")
    parse_inquiry(data)
    template_id = _related_id(data, "inquiry-template")
    included = body.get("included")
    template = next(
        (
            item
            for item in (included if isinstance(included, list) else [])
            if isinstance(item, dict)
            and item.get("type") == "inquiry-template"
            and (template_id is None or item.get("id") == template_id)
        ),
        None,
    )
    return TemplateVersions(
        _related_id(data, "inquiry-template-version"), _related_id(template, "latest-published-version")
    )


class CircuitBreaker:
    """After `threshold` failed calls with no success since (a success counts when it began
    after a counted failure), fail fast for `cooldown_seconds`, then let one probe through: its
    success closes the breaker, its failure opens it again.

    Its state lives in `state`, the store the Persona budget uses (budget.py): with Redis, every
    app instance, worker and background process shares one breaker, so they learn together
    that Persona is down, and only one of them probes. Without a store, or while the store
    fails, each process decides alone. The clock is wall time (time.time): processes compare it."""

    KEY = "persona-breaker"

    def __init__(
        self,
        threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.time,
        state: SharedState | None = None,
    ) -> None:
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.state: SharedState = state or MemoryState()
        self._fallback = MemoryState()  # while the shared store fails
        self._calls = threading.local()  # whether this thread's call is the probe
        # Keys outlive any cooldown: a breaker left open by a crashed process still ends by its time.
        self._memory_seconds = max(cooldown_seconds * 10, 3600.0)

    def _shared(self, step: Callable[[SharedState], _T]) -> _T:
        try:
            return step(self.state)
        except STORE_ERRORS as exc:
            log.warning("Persona breaker store unavailable (%s): this process decides alone", type(exc).__name__)
            return step(self._fallback)

    def _opened_at(self, state: SharedState) -> float | None:
        value = state.get(f"{self.KEY}:opened-at")
        return float(value) if value else None

    def _opened_at_and_failures(self, state: SharedState) -> tuple[float | None, bool]:
        opened_at, failures = state.get_many(f"{self.KEY}:opened-at", f"{self.KEY}:failures")
        return (float(opened_at) if opened_at else None), failures is not None

    @property
    def is_open(self) -> bool:
        """Failing fast right now (a probe may be due)."""
        return self._shared(self._opened_at) is not None

    def before_call(self) -> None:
        """Raises PersonaUnavailableError while open (no call is made); past the cooldown, the
        first caller anywhere becomes the probe and the others keep failing fast."""
        self._calls.probing = False
        opened_at, self._calls.failures_seen = self._shared(self._opened_at_and_failures)
        if opened_at is None:
            return
        waited = self.clock() - opened_at
        if waited < self.cooldown_seconds:
            raise PersonaUnavailableError("circuit open", max(int(self.cooldown_seconds - waited) + 1, 1))
        lease = max(self.cooldown_seconds, 1.0)  # a probe whose process died frees its turn after this
        if not self._shared(lambda state: state.claim(f"{self.KEY}:probe", "probing", lease)):
            raise PersonaUnavailableError("circuit open", 1)
        self._calls.probing = True  # half-open: this call is the probe

    def record(self, ok: bool | None) -> None:
        """This thread's call's verdict: True (Persona answered), False (it failed), None (no
        verdict, e.g. no call was made: a probe's turn passes to the next call)."""
        probing, self._calls.probing = getattr(self._calls, "probing", False), False
        if ok is None:
            if probing:
                self._shared(lambda state: state.delete(f"{self.KEY}:probe"))
            return
        if ok:
            # Nothing to clear when no failure was counted as the call began: a success does
            # not write (a round trip less per call). A failure counted elsewhere meanwhile
            # stays counted: the next success clears it.
            if probing or getattr(self._calls, "failures_seen", True):
                keys = (f"{self.KEY}:failures", f"{self.KEY}:opened-at", f"{self.KEY}:probe")
                self._shared(lambda state: state.delete(*keys))
            return
        self._shared(lambda state: self._record_failure(state, probing))

    def _record_failure(self, state: SharedState, probing: bool) -> None:
        failures = state.increment(f"{self.KEY}:failures", self._memory_seconds)
        if not probing and failures < self.threshold:
            return
        if probing or self._opened_at(state) is None:
            log.error("Persona failing: not calling it for %.0f s", self.cooldown_seconds)
        state.put(f"{self.KEY}:opened-at", repr(self.clock()), self._memory_seconds)
        if probing:
            state.delete(f"{self.KEY}:probe")


def _is_session_limit(response: requests.Response) -> bool:
    """A 429 that is the inquiry's session cap rather than the rate limit (PERSONA-ASSUMPTIONS
    row 3): its error says "session", or the rate limit's own header says calls are left."""
    remaining = response.headers.get("RateLimit-Remaining", "")
    if remaining.isdigit() and int(remaining) > 0:
        return True
    try:
        errors = response.json().get("errors") or []
        title = str(errors[0].get("title", "")) if isinstance(errors[0], dict) else ""
    except (ValueError, AttributeError, IndexError, TypeError):
        return False
    return "session" in title.lower()


def _persona_wait(response: requests.Response) -> float | None:
    """Seconds Persona asks us to wait (Retry-After, else RateLimit-Reset), if it says."""
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


@dataclass(frozen=True)
class CallContext:
    """Who the current Persona calls are for: their priority in the budget, the person (their
    own limit and place in the queue), and the time.monotonic() by which they must be done."""

    priority: Priority = Priority.BACKGROUND
    person: str | None = None
    deadline: float | None = None

    def seconds_left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()


# Without `calls_for`, calls are background calls: only a page says a person is waiting.
_call_context: ContextVar[CallContext | None] = ContextVar("persona_call_context", default=None)


@contextmanager
def calls_for(
    priority: Priority, person: str | None = None, deadline_seconds: float | None = None
) -> Iterator[CallContext]:
    """Persona calls made inside this block are for `person` at `priority`, and give up (the
    waiting or unavailable page) once `deadline_seconds` have passed, retries included."""
    deadline = None if deadline_seconds is None else time.monotonic() + deadline_seconds
    context = CallContext(priority, person, deadline)
    token = _call_context.set(context)
    try:
        yield context
    finally:
        _call_context.reset(token)


def current_calls() -> CallContext:
    return _call_context.get() or CallContext()


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
        budget: PersonaBudget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.version = version
        self.timeout = (connect_timeout_seconds, read_timeout_seconds)
        self.max_retries = max_retries
        self.retry_after_cap_seconds = retry_after_cap_seconds
        self.unavailable_retry_after_seconds = unavailable_retry_after_seconds
        self._local = threading.local()  # requests.Session is not documented as thread-safe
        self.budget = budget or PersonaBudget.in_process()
        # The breaker keeps its state where the budget keeps its own: shared when the budget is.
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_seconds, state=self.budget.state)
        # Told of every HTTP exchange: (method, path, status or error class, seconds). Metrics.
        self.on_exchange: Callable[[str, str, str, float], None] = lambda *_: None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], budget: PersonaBudget | None = None) -> PersonaClient:
        """A client with the app's PERSONA_* settings (no key set: the emulator's), spending
        `budget` (default: one of its own in this process)."""
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
            budget=budget,
        )

    def __repr__(self) -> str:  # keeps the key out of any debug output
        return f"PersonaClient(base_url={self.base_url!r})"

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # The environment's proxy and CA bundle settings, read once per thread here: requests
            # would scan os.environ (hundreds of variables in a container) and look for a
            # ~/.netrc, whose entry would replace our key, on every call.
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
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

    def get_template_versions(self, inquiry_id: str) -> TemplateVersions:
        """The inquiry's template version and its template's latest published one, to compare
        before resuming (RES). Raises PersonaNotFoundError, PersonaUnavailableError."""
        body = self._request("GET", f"/inquiries/{self._checked(inquiry_id)}?include=inquiry-template")
        return parse_template_versions(body)

    def create_inquiry(
        self,
        *,
        template_id: str,
        reference_id: str,
        idempotency_key: str,
        fields: Mapping[str, str] | None = None,
        with_session: bool = False,
    ) -> CreatedInquiry:
        """Create an inquiry server-side, `fields` prefilled and, `with_session`, its first
        session in the same call (`meta.auto-create-inquiry-session`, changelog 2026-01-18):
        its token, or None when Persona sent none. The same key returns the same answer."""
        payload: dict[str, Any] = {
            "data": {"attributes": {"inquiry-template-id": template_id, "reference-id": reference_id}}
        }
        if fields:
            payload["data"]["attributes"]["fields"] = dict(fields)
        if with_session:
            payload["meta"] = {"auto-create-inquiry-session": True}
        body = self._request("POST", "/inquiries", json=payload, idempotency_key=idempotency_key)
        meta = body.get("meta")
        token = meta.get("session-token") if isinstance(meta, dict) else None
        return CreatedInquiry(parse_inquiry(body.get("data")), token if isinstance(token, str) and token else None)

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

    def find_inquiries(self, reference_id: str, statuses: tuple[str, ...], *, limit: int = 1) -> list[PersonaInquiry]:
        """The newest inquiries with that `reference-id` in one of `statuses` (Persona lists
        newest first; PRE, DUP). Only the first page: at most `limit` (1 to 100)."""
        params = {
            "filter[reference-id]": reference_id,
            "filter[status]": ",".join(statuses),
            "page[size]": str(max(1, min(limit, 100))),
        }
        body = self._request("GET", "/inquiries", params=params)
        data = body.get("data")
        if not isinstance(data, list):
            raise PersonaBadResponseError("inquiry list without data")
        return [parse_inquiry(item) for item in data]

    def expire_all_sessions(self, inquiry_ids: list[str]) -> int:
        """End every live session of these inquiries (`POST /inquiry-sessions/expire-all`): a
        token anyone kept opens nothing any more. The inquiries stay resumable. Returns how many
        sessions Persona says it ended."""
        ids = [self._checked(inquiry_id) for inquiry_id in inquiry_ids]
        body = self._request(
            "POST",
            "/inquiry-sessions/expire-all",
            json={"meta": {"inquiry-ids": ids}},
            idempotency_key=str(uuid.uuid4()),
        )
        data = body.get("data")
        return len(data) if isinstance(data, list) else 0

    def exchange(
        self, method: str, path: str, *, json: dict | None = None, params: dict[str, str] | None = None
    ) -> RawAnswer:
        """One call as Persona answers it, for diagnostics (`flask persona check`): it spends the
        shared budget (waiting for its turn, up to a minute), is never retried and never
        counts for the breaker; every status comes back as it came, none raises. A POST carries
        a fresh Idempotency-Key. Raises PersonaUnavailableError when Persona cannot be reached."""
        waited = 0.0
        while (wait := self.budget.acquire(Priority.BACKGROUND)) > 0:
            if waited + wait > 60:
                raise PersonaBusyError("over the Persona budget", ceil_seconds(wait))
            time.sleep(wait)
            waited += wait
        key = str(uuid.uuid4()) if method == "POST" else None
        try:
            response = self._send(method, path, json, key, self.timeout, params=params)
        except requests.RequestException as exc:
            raise PersonaUnavailableError(type(exc).__name__, self.unavailable_retry_after_seconds) from exc
        if response.status_code == 429 and response.headers.get("RateLimit-Remaining") == "0":
            self.budget.back_off(_persona_wait(response) or self.budget.seconds_per_call)
        try:
            body = response.json()
        except ValueError:
            body = None
        return RawAnswer(response.status_code, body if isinstance(body, dict) else None, dict(response.headers))

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
        params: dict[str, str] | None = None,
    ) -> dict:
        """One logical call through the breaker: its verdict is recorded once."""
        self.breaker.before_call()
        try:
            body = self._attempts(method, path, json, idempotency_key, params)
        except PersonaBusyError:
            self.breaker.record(None)  # back-pressure, not failure
            raise
        except PersonaDeadlineError:
            self.breaker.record(None)  # the page ran out of time before calling
            raise
        except PersonaUnavailableError:
            self.breaker.record(False)
            raise
        except PersonaError:
            self.breaker.record(True)  # Persona answered (404, 409, 4xx): it is up
            raise
        self.breaker.record(True)
        return body

    def _attempts(
        self,
        method: str,
        path: str,
        json: dict | None,
        idempotency_key: str | None,
        params: dict[str, str] | None = None,
    ) -> dict:
        """The retry loop. Retries GETs, and POSTs with an Idempotency-Key, at most
        `max_retries` times: after a refused or reset connection (same key: Persona replays
        its first answer), a 5xx (new key: Persona replays a stored 5xx for the same one), or
        a 429 whose wait fits the cap. A timeout is not retried: it already spent what a person
        waits for. Every attempt spends budget and stays within the caller's deadline."""
        context = current_calls()
        retries_left = self.max_retries if (method == "GET" or idempotency_key is not None) else 0
        key = idempotency_key
        attempt = 0
        while True:
            attempt += 1
            self._spend_budget(context)
            try:
                response = self._send(method, path, json, key, self._timeout_within(context), params=params)
            except requests.ConnectionError as exc:
                if retries_left and not isinstance(exc, requests.Timeout):
                    retries_left -= 1
                    self._sleep_within(context, self._jitter())
                    continue
                raise PersonaUnavailableError(type(exc).__name__, self.unavailable_retry_after_seconds) from exc
            except requests.RequestException as exc:
                raise PersonaUnavailableError(type(exc).__name__, self.unavailable_retry_after_seconds) from exc
            status = response.status_code
            if status == 429 and not _is_session_limit(response):
                wait = _persona_wait(response)
                self.budget.back_off(wait if wait is not None else self.budget.seconds_per_call)
                if retries_left and wait is not None and wait <= self.retry_after_cap_seconds:
                    retries_left -= 1
                    self._sleep_within(context, wait)
                    continue
                raise PersonaBusyError("rate limited", ceil_seconds(wait if wait is not None else 1.0))
            if status >= 500:
                if retries_left:
                    retries_left -= 1
                    if idempotency_key:
                        key = f"{idempotency_key}-retry{attempt}"
                    self._sleep_within(context, self._jitter())
                    continue
                raise PersonaUnavailableError(f"HTTP {status}", self.unavailable_retry_after_seconds)
            return self._document(response)

    def _spend_budget(self, context: CallContext) -> None:
        """One call from the shared budget. A person's call waits for it briefly (within the
        retry cap and the deadline); otherwise PersonaBusyError with the estimated wait."""
        while True:
            wait = self.budget.acquire(context.priority, context.person)
            if wait <= 0:
                return
            brief = context.priority == Priority.INTERACTIVE and wait <= self.retry_after_cap_seconds
            if not brief or wait >= context.seconds_left():
                raise PersonaBusyError("over the Persona budget", ceil_seconds(wait))
            time.sleep(wait)

    def _timeout_within(self, context: CallContext) -> tuple[float, float]:
        """The configured timeouts, shortened to what is left of the deadline."""
        left = context.seconds_left()
        if left <= 0.05:
            raise PersonaDeadlineError("deadline passed", self.unavailable_retry_after_seconds)
        connect, read = self.timeout
        return min(connect, left), min(read, left)

    def _sleep_within(self, context: CallContext, seconds: float) -> None:
        if seconds >= context.seconds_left():
            raise PersonaDeadlineError("deadline passed", self.unavailable_retry_after_seconds)
        time.sleep(seconds)

    def _send(
        self,
        method: str,
        path: str,
        json: dict | None,
        key: str | None,
        timeout: tuple[float, float],
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.on_exchange(method, path, type(exc).__name__, time.monotonic() - started)
            log.warning("persona %s %s failed: %s", method, path, type(exc).__name__)
            raise
        self.on_exchange(method, path, str(response.status_code), time.monotonic() - started)
        log.info(
            "persona %s %s -> %s in %.0f ms (request id %s)",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            response.headers.get("Request-Id", "-"),
        )
        return response

    def _document(self, response: requests.Response) -> dict:
        """The JSON body of a 2xx answer; typed errors for everything else."""
        status = response.status_code
        if status == 401:
            log.error("persona rejected our API key (HTTP 401): check PERSONA_API_KEY")
            raise PersonaCredentialsError("HTTP 401", self.unavailable_retry_after_seconds)
        if status == 403:
            # ERR: no permission for this call, or a quota used up; Persona's words tell which.
            said = self._error_text(response)
            log.error("persona refused the call (HTTP 403, a key permission or an exhausted quota): %s", said)
            raise PersonaCredentialsError(f"HTTP 403: {said}", self.unavailable_retry_after_seconds)
        if status == 404:
            raise PersonaNotFoundError(response.request.path_url if response.request else "")
        if status == 409:
            raise PersonaConflictError("conflict")
        if status == 429:  # the rate limit's 429s go back to the budget before this: the session cap
            raise PersonaSessionLimitError(self._error_text(response))
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

    @staticmethod
    def _jitter() -> float:
        return random.uniform(0.05, 0.2)  # jitter, no secret; short: a person waits  # nosec B311

    def _error_text(self, response: requests.Response) -> str:
        """Persona's first error as `title: details` for a log line: at most 300 printable
        characters, and never our key (should an answer ever echo it)."""
        try:
            errors = response.json().get("errors") or []
            first = errors[0] if isinstance(errors[0], dict) else {}
            parts = [str(first.get(name) or "") for name in ("title", "details")]
        except (ValueError, AttributeError, IndexError, TypeError, KeyError):
            parts = []
        text = ": ".join(part for part in parts if part) or "no error title or details in the answer"
        text = "".join(ch if ch.isprintable() else " " for ch in text)
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text[:300]

    @staticmethod
    def _error_title(response: requests.Response) -> str:
        try:
            errors = response.json().get("errors") or []
            return str(errors[0].get("title", ""))[:200]
        except (ValueError, AttributeError, IndexError, TypeError):
            return ""
