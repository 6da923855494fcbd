"""Prometheus metrics: what an operator alerts on (docs/OPERATIONS.md names each).

Counters and histograms are kept per process; with several gunicorn workers set
PROMETHEUS_MULTIPROC_DIR (an empty directory per instance) and they are added up at scrape time.
The outbox numbers are read from the database at scrape time, so any instance reports the
whole system's mail. `/metrics` is not public: a bearer token (METRICS_TOKEN), or, without one,
only a direct loopback connection (not through a proxy)."""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterator

from flask import Flask, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

from .extensions import db
from .models import OutboxEmail

PERSONA_CALLS = Counter(
    "persona_requests", "Calls to the Persona API, by endpoint, method and status", ["endpoint", "method", "status"]
)
PERSONA_LATENCY = Histogram(
    "persona_request_seconds",
    "Persona API latency by endpoint",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
SESSION_TOKENS = Counter("persona_session_tokens", "Session tokens handed to the page", ["source"])  # minted|reused
WEBHOOKS = Counter("webhook_events", "Persona webhook deliveries received, by outcome", ["outcome"])
WEBHOOK_MISSING_FIELD = Counter(
    "webhook_events_missing_field",
    "Webhook events ignored because a field we need is missing or unreadable, by field",
    ["field"],
)
WEBHOOK_LAG = Histogram(
    "webhook_lag_seconds",
    "From the event's creation at Persona to its receipt here",
    buckets=(0.5, 1, 5, 15, 60, 300, 1800, 3600, 6 * 3600),
)

_ID_IN_PATH = re.compile(r"/(inq|ver|evt|acc|ses)_[A-Za-z0-9]+")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def endpoint_of(path: str) -> str:
    """A Persona path with its ids taken out: one label value per endpoint."""
    return _ID_IN_PATH.sub(lambda m: f"/{m.group(1)}_:id", path.split("?", 1)[0])


def observe_persona_call(method: str, path: str, status: str, seconds: float) -> None:
    endpoint = endpoint_of(path)
    PERSONA_CALLS.labels(endpoint, method, status).inc()
    PERSONA_LATENCY.labels(endpoint).observe(seconds)


class _StateCollector(Collector):
    """Read at scrape time: the Persona breaker (shared through Redis), and the outbox from the database."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        breaker = GaugeMetricFamily("persona_breaker_open", "1 while the Persona breaker is open")
        breaker.add_metric([], 1.0 if self.app.extensions["persona"].breaker.is_open else 0.0)
        yield breaker
        from .outbox import depth

        by_status = GaugeMetricFamily("outbox_emails", "Emails in the outbox by status", labels=["status"])
        for status, count in db.session.execute(
            select(OutboxEmail.status, func.count(OutboxEmail.id)).group_by(OutboxEmail.status)
        ):
            by_status.add_metric([status], count)
        yield by_status
        open_rows = depth()
        yield GaugeMetricFamily("outbox_open", "Emails queued or sending", value=open_rows.open_rows)
        yield GaugeMetricFamily(
            "outbox_oldest_open_age_seconds",
            "Age of the oldest queued or sending email",
            value=open_rows.oldest_age_seconds,
        )


def render() -> bytes:
    """The scrape: this process's (or all workers') counters, plus the state read now."""
    counters = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)  # type: ignore[no-untyped-call]
    state = CollectorRegistry()
    state.register(_StateCollector(current_app._get_current_object()))  # type: ignore[attr-defined]
    try:
        return generate_latest(counters) + generate_latest(state)
    finally:
        db.session.commit()


def may_scrape() -> bool:
    """The token, when one is set; otherwise only a direct loopback connection."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR", request.remote_addr)
    proxied = "X-Forwarded-For" in request.headers
    return peer in ("127.0.0.1", "::1") and not proxied
