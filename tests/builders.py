"""Builders: rows and emulator state a test starts from. Plain functions, no fixtures."""

from __future__ import annotations

from flask import Flask

from tests.emulator_client import EmulatorClient
from webapp import accounts, recovery
from webapp.extensions import db
from webapp.models import Inquiry, User
from webapp.verification import get_current_inquiry

PASSWORD = "correct horse battery"


def make_user(app: Flask, email: str = "ada@example.test", password: str = PASSWORD, *, confirmed: bool = True) -> User:
    """A stored account (its address confirmed unless told otherwise), detached from the
    session (read its columns, not its relations)."""
    with app.app_context():
        user = accounts.create_user(email, password, confirmed=confirmed)
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def give_inquiry(app: Flask, emulator: EmulatorClient, user: User, *walk: str) -> str:
    """An inquiry at the emulator (walked through statuses), recorded locally as such.
    Returns its Persona id; the emulator's request log is cleared afterwards."""
    inquiry = emulator.create_inquiry(reference_id=user.public_id)
    emulator.set_status(inquiry["id"], *walk)
    status = emulator.status(inquiry["id"])
    with app.app_context():
        db.session.add(Inquiry(persona_id=inquiry["id"], user_id=user.id, status=status))
        db.session.commit()
    emulator.clear_requests()
    return inquiry["id"]


def new_link(app: Flask, user: User) -> str:
    """A fresh recovery link URL for `user`'s current inquiry."""
    with app.app_context():
        fresh = db.session.get(User, user.id)
        assert fresh is not None
        return recovery.issue_link(fresh, get_current_inquiry(fresh))
