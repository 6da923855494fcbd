"""Background work on Celery (Redis broker): mail delivery, and what beat runs on a schedule.

Every task runs inside the Flask app's context (`FlaskTask`, the pattern in Flask's
"Background Tasks with Celery"). Tasks are acknowledged after they finish (`acks_late`) and
handed back to the broker if their worker dies (`reject_on_worker_lost`), so each must be safe to
run twice; each is: the outbox claims rows atomically, reminders claim their window with a
unique row, and a sync only re-reads Persona. Without a broker (`REDIS_URL` empty, development
without Redis, unit tests) tasks run in the process that asks for them, at the end of its
app context.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery, Task, shared_task
from flask import Flask, g, has_app_context

from .extensions import db

log = logging.getLogger(__name__)


class FlaskTask(Task):
    """A task that runs in the app context of the Flask app its Celery app was made for."""

    def __call__(self, *args, **kwargs):
        if has_app_context():  # run eagerly inside a request or a command: use its context
            return self.run(*args, **kwargs)
        with self.app.flask_app.app_context():  # type: ignore[attr-defined]
            g.request_id = "-"
            try:
                return self.run(*args, **kwargs)
            finally:
                db.session.remove()


def celery_init_app(app: Flask) -> Celery:
    """The Celery app for this Flask app, in `app.extensions["celery"]` (read it through
    `services.celery()`, which makes it when first asked)."""
    config = app.config
    broker = config["CELERY_BROKER_URL"]
    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.flask_app = app  # type: ignore[attr-defined]
    celery_app.conf.update(
        broker_url=broker or "memory://",
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # A request that queues mail while Redis is down must not hang: a short try, then the
        # row waits in the database for the sweep.
        broker_transport_options={
            "visibility_timeout": config["CELERY_VISIBILITY_TIMEOUT_SECONDS"],
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        timezone="UTC",
        beat_schedule={
            "outbox-sweep": {"task": "outbox.sweep", "schedule": timedelta(seconds=config["OUTBOX_SWEEP_SECONDS"])},
            "reminders": {"task": "reminders.send", "schedule": timedelta(seconds=config["REMINDERS_EVERY_SECONDS"])},
            "inquiries-sync": {"task": "inquiries.sync", "schedule": timedelta(seconds=config["SYNC_EVERY_SECONDS"])},
            "persona-sessions-sweep": {
                "task": "persona.sessions_sweep",
                "schedule": timedelta(seconds=config["OUTBOX_SWEEP_SECONDS"]),
            },
        },
    )
    app.extensions["celery"] = celery_app
    return celery_app


@shared_task(name="outbox.deliver", bind=True, max_retries=None)
def deliver_email(self: Task, outbox_id: int) -> str | None:
    """Send one outbox row. Transient failures come back after a backoff with jitter."""
    from .outbox import deliver

    outcome = deliver(outbox_id)
    if outcome is None:
        return None
    if outcome.retry_in_seconds is not None and not self.request.is_eager:
        # A lost retry is not lost mail: the sweep finds the row once its time has passed.
        raise self.retry(countdown=outcome.retry_in_seconds)
    return outcome.status


@shared_task(name="outbox.sweep")
def sweep_outbox() -> int:
    """Hand abandoned outbox rows to the workers again (beat: every OUTBOX_SWEEP_SECONDS)."""
    from .outbox import sweep

    return sweep()


@shared_task(name="persona.end_sessions", bind=True, max_retries=5)
def end_persona_sessions(self: Task, inquiry_id: int) -> str | None:
    """End every Persona session of one inquiry its person signed out of everywhere. A busy or
    unreachable Persona: tried again after a backoff; past the retries (or run eagerly), the mark
    stays for the sweep."""
    from .persona import PersonaUnavailableError
    from .persona_sessions import end_sessions

    try:
        return end_sessions(inquiry_id)
    except PersonaUnavailableError as exc:
        db.session.rollback()
        log.warning("Persona sessions of row %s not ended yet (%s)", inquiry_id, type(exc).__name__)
        if self.request.is_eager or self.request.retries >= (self.max_retries or 0):
            return None
        raise self.retry(countdown=max(exc.retry_after_seconds or 30, 5)) from exc


@shared_task(name="persona.sessions_sweep")
def sweep_persona_sessions() -> int:
    """Hand Persona session endings nobody finished to the workers again (beat: with the outbox sweep)."""
    from .persona_sessions import sweep

    return sweep()


@shared_task(name="reminders.send")
def send_reminders() -> int:
    """Queue the reminders due now (beat: hourly), paced to Persona's budget (the rest wait for
    the next run). Returns how many were queued."""
    from .recovery import send_due_reminders

    return send_due_reminders().sent


@shared_task(name="inquiries.sync")
def sync_inquiries() -> dict[str, int]:
    """The backstop for missed webhooks (beat: daily): re-read inquiries Persona may have moved."""
    from .persona import PersonaBusyError, PersonaUnavailableError
    from .verification import inquiries_to_sync, sync_inquiry

    counts = {"checked": 0, "changed": 0, "failed": 0}
    for inquiry in inquiries_to_sync():
        counts["checked"] += 1
        try:
            old, new = sync_inquiry(inquiry)
        except PersonaBusyError:  # the budget is kept for people now: the rest go next run
            db.session.rollback()
            break
        except PersonaUnavailableError:
            db.session.rollback()
            counts["failed"] += 1
            continue
        counts["changed"] += old != new
    log.info("inquiry sync: %(checked)d checked, %(changed)d changed, %(failed)d failed", counts)
    return counts
