"""The mail outbox, one delivery at a time (tasks called directly; the worker tests are in
test_workers.py): rows written with their link, transient errors retried with backoff, permanent
refusals recorded, an atomic claim so nothing is sent twice, and the sweep for abandoned rows."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.builders import give_inquiry, make_user
from tests.smtp_sink import SmtpSink
from webapp import outbox, recovery, services
from webapp.extensions import db
from webapp.models import OutboxEmail, OutboxStatus, RecoveryLink, User, utcnow

pytestmark = pytest.mark.postgres_too


def queue_link(app, user) -> int:
    """What "Email me a link" does, without handing the row to anyone (no app context end)."""
    ctx = app.app_context()
    ctx.push()
    try:
        assert recovery.send_link_to_user(db.session.get(User, user.id))
        row_id = db.session.scalar(select(OutboxEmail.id).order_by(OutboxEmail.id.desc()))
        from flask import g

        g.pop("_outbox_ready_ids", None)  # keep it for the test to deliver
        return row_id
    finally:
        ctx.pop()


def row(app, row_id: int) -> OutboxEmail:
    with app.app_context():
        found = db.session.get(OutboxEmail, row_id)
        db.session.expunge(found)
        return found


def deliver(app, row_id: int):
    with app.app_context():
        return outbox.deliver(row_id)


def test_the_row_and_its_link_commit_together_and_the_link_is_not_stored_in_clear(make_app, emulator):
    app = make_app()
    user = make_user(app)
    row_id = queue_link(app, user)
    stored = row(app, row_id)
    assert stored.status == OutboxStatus.QUEUED and stored.attempts == 0 and stored.template == "recovery"
    assert stored.message_ciphertext and "/r/" not in stored.message_ciphertext
    with app.app_context():
        assert db.session.scalar(select(RecoveryLink.id).where(RecoveryLink.user_id == user.id)) is not None


def test_a_rolled_back_transaction_sends_nothing(make_app, emulator):
    app = make_app()
    user = make_user(app)
    with app.app_context():
        from webapp.mail import send_email

        send_email(user.email, "recovery", link="https://x/r/" + "a" * 43, valid_hours=72)
        db.session.flush()
        db.session.rollback()
    with app.app_context():
        assert db.session.scalars(select(OutboxEmail)).all() == []


def test_smtp_down_is_retried_with_backoff_then_sent_once(make_app, emulator):
    sink = SmtpSink()  # not started: connection refused
    app = make_app(**sink.settings(), OUTBOX_RETRY_BASE_SECONDS=10, OUTBOX_RETRY_CAP_SECONDS=600)
    user = make_user(app)
    row_id = queue_link(app, user)
    delays = []
    for attempt in (1, 2, 3):
        outcome = deliver(app, row_id)
        assert outcome.status == OutboxStatus.QUEUED
        delays.append(outcome.retry_in_seconds)
        stored = row(app, row_id)
        assert stored.attempts == attempt and stored.last_error == "ConnectionRefusedError"
        assert stored.next_attempt_at > utcnow()
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40  # doubling, jittered
    sink.start()
    try:
        assert deliver(app, row_id).status == OutboxStatus.SENT
        assert deliver(app, row_id) is None  # a duplicate task finds it sent
        assert len(sink.to(user.email)) == 1
    finally:
        sink.stop()
    stored = row(app, row_id)
    assert stored.status == OutboxStatus.SENT and stored.message_ciphertext is None and stored.attempts == 4


@pytest.mark.parametrize(("code", "status"), [(451, OutboxStatus.QUEUED), (550, OutboxStatus.FAILED)])
def test_a_4xx_is_tried_again_and_a_5xx_stops(make_app, emulator, sink, code, status):
    app = make_app(**sink.settings())
    user = make_user(app)
    row_id = queue_link(app, user)
    sink.refuse_with = code
    assert deliver(app, row_id).status == status
    stored = row(app, row_id)
    assert stored.last_error == f"SMTPDataError {code}"
    assert (stored.message_ciphertext is None) == (status == OutboxStatus.FAILED)
    sink.refuse_with = None
    assert (deliver(app, row_id) is None) == (status == OutboxStatus.FAILED)  # a failed row stays failed
    assert len(sink.messages) == (status == OutboxStatus.QUEUED)


def test_a_goodbye_that_fails_after_the_message_was_taken_does_not_send_it_again(make_app, emulator, sink):
    app = make_app(**sink.settings())
    user = make_user(app)
    row_id = queue_link(app, user)
    sink.quit_with = 421  # the server took the message (250), then answers QUIT badly
    assert deliver(app, row_id).status == OutboxStatus.SENT
    assert row(app, row_id).status == OutboxStatus.SENT
    assert len(sink.to(user.email)) == 1


def test_out_of_attempts_is_failed(make_app, emulator):
    app = make_app(**SmtpSink().settings(), OUTBOX_MAX_ATTEMPTS=2)
    row_id = queue_link(app, make_user(app))
    assert deliver(app, row_id).status == OutboxStatus.QUEUED
    assert deliver(app, row_id).status == OutboxStatus.FAILED


def test_two_workers_with_the_same_task_send_once(make_app, emulator, sink):
    sink.hold_seconds = 0.5  # both are inside deliver at the same time
    app = make_app(**sink.settings())
    user = make_user(app)
    row_id = queue_link(app, user)
    results = []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        results.append(deliver(app, row_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status if r else "nothing" for r in results) == ["nothing"] * 3 + ["sent"]
    assert len(sink.messages) == 1


def test_the_sweep_hands_back_abandoned_rows_only(make_app, emulator, sink):
    app = make_app(**sink.settings(), OUTBOX_STALE_SECONDS=60, CELERY_BROKER_URL="")
    user = make_user(app)
    ids = [queue_link(app, user) for _ in range(3)]
    long_ago = utcnow() - timedelta(minutes=5)
    with app.app_context():
        # 0: its task was lost; 1: its worker died mid-send; 2: just claimed by a live worker
        db.session.execute(update(OutboxEmail).where(OutboxEmail.id == ids[0]).values(next_attempt_at=long_ago))
        db.session.execute(
            update(OutboxEmail).where(OutboxEmail.id == ids[1]).values(status="sending", claimed_at=long_ago)
        )
        db.session.execute(
            update(OutboxEmail).where(OutboxEmail.id == ids[2]).values(status="sending", claimed_at=utcnow())
        )
        db.session.commit()
        assert outbox.sweep() == 2  # delivered eagerly: no broker here
        assert outbox.depth().open_rows == 1
    assert [row(app, i).status for i in ids] == ["sent", "sent", "sending"]
    assert len(sink.messages) == 2


def test_reminders_claim_their_window_and_queue_with_the_link(make_app, emulator, sink):
    app = make_app(**sink.settings())
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    with app.app_context():
        inquiry = db.session.get(User, user.id).inquiries[0]
        inquiry.expires_at = utcnow() + timedelta(hours=2)
        inquiry.last_activity_at = utcnow() - timedelta(days=1)
        db.session.commit()
    with app.app_context():
        task = services.celery().tasks["reminders.send"]
        assert task() == 1
        assert task() == 0  # a duplicated beat finds the window taken
    assert len(sink.to(user.email)) == 1
