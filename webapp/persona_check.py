"""`flask persona check`: ask the configured Persona (a Sandbox in real life, the emulator in
tests) the questions docs/PERSONA-ASSUMPTIONS.md leaves open, and say for each whether the
answer is the one we assumed.

It creates throwaway inquiries (reference id `persona-check-…`), walks them through what the
API alone can do, and redacts them at the end whatever happened. Every call spends the shared
Persona budget. Each finding is `confirmed` (Persona answered as we assumed), `differs` (it did
not: the detail says what it did) or `could not check` (the API alone cannot show it, or a
step before it failed). It never runs against a production key unless told to.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import requests
from sqlalchemy import select

from .clock import utcnow
from .extensions import db
from .models import WebhookEvent
from .persona import INQUIRY_ID, PersonaClient, PersonaError, RawAnswer, parse_time

PRODUCTION_KEY_PREFIX = "persona_production"  # FACTS.md §2: keys are prefixed by environment
SANDBOX_KEY_PREFIX = "persona_sandbox"
EXPIRY_OVERRIDE_SECONDS = 3600  # asked for on the create-interval check
TIME_SLACK = timedelta(minutes=5)  # clocks and slow answers


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    DIFFERS = "differs"
    UNCHECKED = "could not check"


@dataclass(frozen=True)
class Finding:
    """One behaviour, what we found, and the assumption (PERSONA-ASSUMPTIONS.md row) it tests."""

    behaviour: str
    verdict: Verdict
    detail: str
    assumption: str = ""

    def line(self) -> str:
        ref = f" [{self.assumption}]" if self.assumption else ""
        return f"{self.verdict.value:15} {self.behaviour}{ref}: {self.detail}"


def production_key_refusal(api_key: str, allow_production: bool) -> str | None:
    """Why the check must not run with this key (None: it may). A production key is refused
    unless `allow_production`: the check creates and redacts real inquiries."""
    if api_key.startswith(PRODUCTION_KEY_PREFIX) and not allow_production:
        return (
            "PERSONA_API_KEY is a production key (persona_production…): the check creates and redacts "
            "inquiries. Use a Sandbox key, or pass --allow-production if you really mean it."
        )
    return None


def environment_of(api_key: str) -> str:
    if api_key.startswith(PRODUCTION_KEY_PREFIX):
        return "production"
    if api_key.startswith(SANDBOX_KEY_PREFIX):
        return "sandbox"
    return "unknown (the key has neither Persona prefix)"


@dataclass
class PersonaCheck:
    """One run against `client`; `report` is told of each finding as it is made."""

    client: PersonaClient
    template_id: str
    session_cap: int
    report: Callable[[Finding], None]
    webhook_url: str | None = None
    webhook_wait_seconds: float = 30.0
    findings: list[Finding] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    sessions_opened: int = 0  # on the main inquiry, as far as we know
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def found(self, behaviour: str, verdict: Verdict, detail: str, assumption: str = "") -> None:
        finding = Finding(behaviour, verdict, detail, assumption)
        self.findings.append(finding)
        self.report(finding)

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        """Every check, then the clean-up (always). Returns the findings."""
        try:
            inquiry_id = self._create_with_session()
            if inquiry_id is None:
                return self.findings
            self._resume_on_created(inquiry_id)
            self._sessions_listed(inquiry_id, expected_sessions=1)
            self._webhooks(inquiry_id)
            self._session_cap(inquiry_id)
            self._expiry()
            self.found(
                "expiry restarts at start (`pending`)",
                Verdict.UNCHECKED,
                "only a person submitting a step in the flow starts an inquiry; the API cannot",
                "settled: EXP",
            )
            self._conflict_shape(inquiry_id)
        finally:
            self._clean_up()
        return self.findings

    def _call(self, method: str, path: str, **kwargs: Any) -> RawAnswer:
        return self.client.exchange(method, path, **kwargs)

    def _create(self, attributes: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> RawAnswer:
        body: dict[str, Any] = {
            "data": {
                "attributes": {
                    "inquiry-template-id": self.template_id,
                    "reference-id": f"persona-check-{self.run_id}",
                    "note": "flask persona check: throwaway, redacted when the check ends",
                    **attributes,
                }
            }
        }
        if meta:
            body["meta"] = dict(meta)
        answer = self._call("POST", "/inquiries", json=body)
        inquiry_id = _inquiry_id(answer)
        if inquiry_id is not None:
            self.created.append(inquiry_id)
        return answer

    def _create_with_session(self) -> str | None:
        answer = self._create({}, {"auto-create-inquiry-session": True})
        inquiry_id = _inquiry_id(answer)
        if answer.status in (200, 201) and inquiry_id:
            token = _meta(answer).get("session-token")
            if isinstance(token, str) and token:
                self.sessions_opened = 1
                self.found("create with `auto-create-inquiry-session`", Verdict.CONFIRMED, "a session token came back")
            else:
                self.found(
                    "create with `auto-create-inquiry-session`", Verdict.DIFFERS, "created, but no `meta.session-token`"
                )
            return inquiry_id
        self.found(
            "create with `auto-create-inquiry-session`", Verdict.DIFFERS, f"HTTP {answer.status} {_error(answer)}"
        )
        plain = self._create({})
        inquiry_id = _inquiry_id(plain)
        if plain.status in (200, 201) and inquiry_id:
            return inquiry_id
        self.found(
            "create an inquiry",
            Verdict.UNCHECKED,
            f"HTTP {plain.status} {_error(plain)}: nothing else can be checked (template id? key permissions?)",
        )
        return None

    def _resume_on_created(self, inquiry_id: str) -> None:
        answer = self._call("POST", f"/inquiries/{inquiry_id}/resume", json={"meta": {}})
        token = _meta(answer).get("session-token")
        if answer.status == 200 and isinstance(token, str) and token:
            self.found("resume a `created` inquiry", Verdict.CONFIRMED, "200 with a session token", "#1")
        else:
            self.found(
                "resume a `created` inquiry",
                Verdict.DIFFERS,
                f"HTTP {answer.status} {_error(answer)} (the app copes: it boots created inquiries without a token)",
                "#1",
            )

    def _sessions_listed(self, inquiry_id: str, expected_sessions: int) -> None:
        answer = self._call("GET", "/inquiry-sessions", params={"filter[inquiry-id]": inquiry_id})
        data = (answer.body or {}).get("data")
        if answer.status != 200 or not isinstance(data, list):
            self.found("list the inquiry's sessions", Verdict.DIFFERS, f"HTTP {answer.status} {_error(answer)}", "#21")
            return
        shaped = all(
            isinstance(s, dict) and s.get("type") == "inquiry-session" and isinstance(s.get("attributes"), dict)
            for s in data
        )
        statuses = sorted({str(s["attributes"].get("status")) for s in data}) if shaped else []
        if shaped and len(data) == expected_sessions and statuses == ["active"]:
            self.found(
                "list the inquiry's sessions; resume reuses an unused one",
                Verdict.CONFIRMED,
                f"{len(data)} session(s), status {statuses}",
                "#21",
            )
        else:
            self.found(
                "list the inquiry's sessions; resume reuses an unused one",
                Verdict.DIFFERS,
                f"{len(data)} session(s) (we expected {expected_sessions}), statuses {statuses}",
                "#21",
            )

    def _session_cap(self, inquiry_id: str) -> None:
        """Expire every session, resume (a new one), again, until Persona refuses or we pass the cap."""
        opened = self.sessions_opened
        expire_all_ok = True
        refusal: RawAnswer | None = None
        # Pending first (expire, then resume), so this works whether or not `created` resumes.
        expired_inquiry = self._call("POST", f"/inquiries/{inquiry_id}/expire")
        pending = self._call("POST", f"/inquiries/{inquiry_id}/resume", json={"meta": {}})
        if expired_inquiry.status != 200 or pending.status != 200:
            self.found(
                "the answer past the session cap",
                Verdict.UNCHECKED,
                f"could not make it pending: expire HTTP {expired_inquiry.status}, resume HTTP {pending.status}",
                "#3",
            )
            return
        opened += 1
        while opened <= self.session_cap:
            expired = self._call("POST", "/inquiry-sessions/expire-all", json={"meta": {"inquiry-ids": [inquiry_id]}})
            if expired.status != 200:
                expire_all_ok = False
                self.found(
                    "expire every session (`expire-all`)", Verdict.DIFFERS, f"HTTP {expired.status} {_error(expired)}"
                )
                break
            resumed = self._call("POST", f"/inquiries/{inquiry_id}/resume", json={"meta": {}})
            if resumed.status != 200:
                refusal = resumed
                break
            opened += 1
        if expire_all_ok:
            self.found(
                "expire every session (`expire-all` with `meta.inquiry-ids`)",
                Verdict.CONFIRMED,
                "200 with the sessions it ended",
                "#21",
            )
        else:
            self.found("the answer past the session cap", Verdict.UNCHECKED, "no way to open more sessions", "#3")
            return
        if refusal is None:
            self.found(
                "the answer past the session cap",
                Verdict.DIFFERS,
                f"{opened} sessions opened and no refusal: ended sessions may not count toward the cap",
                "#3",
            )
        elif refusal.status == 429 and opened == self.session_cap:
            self.found(
                "the answer past the session cap",
                Verdict.CONFIRMED,
                f"HTTP 429 {_error(refusal)} after {opened} sessions",
                "#3",
            )
        else:
            self.found(
                "the answer past the session cap",
                Verdict.DIFFERS,
                f"HTTP {refusal.status} {_error(refusal)} after {opened} sessions (we assumed 429 after "
                f"{self.session_cap})",
                "#3",
            )

    def _expiry(self) -> None:
        answer = self._create({"expiration-after-create-interval-seconds": EXPIRY_OVERRIDE_SECONDS})
        inquiry_id = _inquiry_id(answer)
        if answer.status not in (200, 201) or inquiry_id is None:
            self.found(
                "create-time expiry override (kebab, in attributes)",
                Verdict.DIFFERS,
                f"HTTP {answer.status} {_error(answer)}",
                "#14",
            )
            return
        created_at, expires_at = _times(answer, "created-at"), _times(answer, "expires-at")
        if created_at is None or expires_at is None:
            self.found("create-time expiry override", Verdict.UNCHECKED, "no created-at/expires-at", "#14")
        else:
            lasts = expires_at - created_at
            verdict = (
                Verdict.CONFIRMED
                if abs(lasts - timedelta(seconds=EXPIRY_OVERRIDE_SECONDS)) <= TIME_SLACK
                else Verdict.DIFFERS
            )
            self.found(
                "create-time expiry override (kebab, in attributes)",
                verdict,
                f"asked {EXPIRY_OVERRIDE_SECONDS} s, expires {int(lasts.total_seconds())} s after creation",
                "#14",
            )
        expired = self._call("POST", f"/inquiries/{inquiry_id}/expire")
        resumed = self._call("POST", f"/inquiries/{inquiry_id}/resume", json={"meta": {}})
        status = _attributes(resumed).get("status")
        resumed_expiry = _times(resumed, "expires-at")
        if expired.status != 200 or resumed.status != 200:
            self.found(
                "an expired inquiry resumes to `pending`, expiring again after 24 h",
                Verdict.DIFFERS,
                f"expire: HTTP {expired.status} {_error(expired)}; resume: HTTP {resumed.status} {_error(resumed)}",
                "FACTS \u00a71",
            )
            return
        left = (resumed_expiry - _now()) if resumed_expiry else None
        day = left is not None and abs(left - timedelta(hours=24)) <= TIME_SLACK
        self.found(
            "an expired inquiry resumes to `pending`, expiring again after 24 h",
            Verdict.CONFIRMED if status == "pending" and day else Verdict.DIFFERS,
            f"status {status!r}, expires in {int(left.total_seconds()) if left else '?'} s "
            "(the template's \u201cfrom resume\u201d interval decides)",
            "FACTS \u00a71",
        )

    def _conflict_shape(self, inquiry_id: str) -> None:
        redacted = self._call("DELETE", f"/inquiries/{inquiry_id}")
        if redacted.status != 200:
            self.found("the 409 for a non-resumable inquiry", Verdict.UNCHECKED, f"redaction: HTTP {redacted.status}")
            return
        self.created.remove(inquiry_id)
        answer = self._call("POST", f"/inquiries/{inquiry_id}/resume", json={"meta": {}})
        errors = (answer.body or {}).get("errors")
        shaped = isinstance(errors, list) and errors and isinstance(errors[0], dict) and "title" in errors[0]
        self.found(
            "the 409 for a non-resumable (redacted) inquiry",
            Verdict.CONFIRMED if answer.status == 409 and shaped else Verdict.DIFFERS,
            f"HTTP {answer.status} {_error(answer)} (the app branches on the status code only)",
            "#2",
        )

    def _webhooks(self, inquiry_id: str) -> None:
        if not self.webhook_url:
            self.found(
                "webhook delivery and key inflection",
                Verdict.UNCHECKED,
                "no --webhook-url given (the public address of this app's /webhooks/persona)",
            )
            return
        try:
            probe = requests.post(self.webhook_url, json={}, timeout=5, allow_redirects=False)
        except requests.RequestException as exc:
            self.found("webhook delivery", Verdict.UNCHECKED, f"{self.webhook_url} unreachable ({type(exc).__name__})")
            return
        if probe.status_code not in (400, 401):
            self.found(
                "webhook delivery",
                Verdict.UNCHECKED,
                f"{self.webhook_url} answered an unsigned body with HTTP {probe.status_code}: not our endpoint?",
            )
            return
        deadline = time.monotonic() + self.webhook_wait_seconds
        while True:
            events = db.session.scalars(
                select(WebhookEvent).where(WebhookEvent.payload.contains(inquiry_id)).order_by(WebhookEvent.id)
            ).all()
            db.session.commit()
            if events or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not events:
            self.found(
                "webhook delivery",
                Verdict.DIFFERS,
                f"no event about {inquiry_id} stored within {self.webhook_wait_seconds:.0f} s: is the webhook "
                "enabled in Persona's dashboard, pointing at that URL, with our secret?",
            )
            return
        names = sorted({event.name for event in events})
        self.found("webhook delivery", Verdict.CONFIRMED, f"{len(events)} event(s) stored: {', '.join(names)}")
        inflection = key_inflection(events[0].payload)
        self.found(
            "webhook key inflection",
            Verdict.CONFIRMED if inflection == "kebab" else Verdict.DIFFERS,
            f"{inflection} (the webhook's own setting; we assume kebab, Persona's default)",
        )

    def _clean_up(self) -> None:
        for inquiry_id in list(self.created):
            try:
                answer = self._call("DELETE", f"/inquiries/{inquiry_id}")
            except PersonaError as exc:
                self.found("clean up", Verdict.DIFFERS, f"{inquiry_id} not redacted ({type(exc).__name__})")
                continue
            if answer.status == 200:
                self.created.remove(inquiry_id)
            else:
                self.found("clean up", Verdict.DIFFERS, f"{inquiry_id} not redacted: HTTP {answer.status}")


def key_inflection(payload: str) -> str:
    """kebab, camel or snake: how an event's attribute keys are spelled."""
    try:
        document = json.loads(payload)
        attributes = document["data"]["attributes"]
        keys = " ".join(attributes)
        keys += " " + " ".join(attributes["payload"]["data"]["attributes"])
    except (ValueError, KeyError, TypeError):
        keys = payload
    if re.search(r"\b[a-z]+-[a-z]+", keys):
        return "kebab"
    if re.search(r"\b[a-z]+_[a-z]+", keys):
        return "snake"
    if re.search(r"\b[a-z]+[A-Z][a-z]+", keys):
        return "camel"
    return "unknown"


def _inquiry_id(answer: RawAnswer) -> str | None:
    """The answer's inquiry id, when it is one we may put in a URL path."""
    data = (answer.body or {}).get("data")
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and INQUIRY_ID.match(value) else None


def _meta(answer: RawAnswer) -> dict:
    meta = (answer.body or {}).get("meta")
    return meta if isinstance(meta, dict) else {}


def _attributes(answer: RawAnswer) -> dict:
    data = (answer.body or {}).get("data")
    attributes = data.get("attributes") if isinstance(data, dict) else None
    return attributes if isinstance(attributes, dict) else {}


def _times(answer: RawAnswer, name: str) -> datetime | None:
    return parse_time(_attributes(answer).get(name))


def _error(answer: RawAnswer) -> str:
    """Persona's error title and details, short, for the report."""
    errors = (answer.body or {}).get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    text = " / ".join(str(first.get(k)) for k in ("title", "details") if first.get(k))
    return f"({text[:160]})" if text else ""


def _now() -> datetime:
    return utcnow()
