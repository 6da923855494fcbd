"""Domain: "Continue on your phone" (issue #14): a QR code on the computer for a single-use link
that signs the phone in for verification only, and what the computer's page learns by polling.

A handoff link is a RecoveryLink of purpose HANDOFF (webapp/recovery.py: 256 random bits, only
the hash stored, scanner-safe, one atomic use, dead once the inquiry is final or replaced),
bound to the person and their current inquiry, alive HANDOFF_LINK_TTL_SECONDS. While the panel
is open the page asks for a new one every HANDOFF_ROTATE_SECONDS; each new link cuts the life
of the older unused ones to HANDOFF_GRACE_SECONDS (time enough for a phone that scanned one a
moment ago to press its button), so a photo of the screen soon leads nowhere.

The computer follows the phone by polling `handoff_status` (docs/ARCHITECTURE.md says why
polling): the phone used a handoff link after the panel opened, so the flow runs there; or the
inquiry is no longer resumable, so the page's result is ready. Both are read from the database
only (no Persona call), so any app instance answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from .clock import utcnow
from .extensions import db
from .i18n import current_locale
from .models import LinkPurpose, RecoveryLink, User
from .recovery import issue_link
from .statuses import RESUMABLE
from .verification import get_current_inquiry


class NothingToHandOffError(Exception):
    """The person has no verification to continue (none yet, or it is finished)."""


@dataclass(frozen=True)
class HandoffLink:
    url: str
    qr_svg: str  # an inline <svg> of the URL's QR code (our markup: no user input in it)
    issued_at_ms: int  # server time, for `handoff_status(since_ms=...)`


def qr_svg(url: str, title: str) -> str:
    """The QR code of `url` as inline SVG, black on white with the standard quiet zone, scaled
    by CSS (no fixed size), an image named `title` for screen readers. Error correction M:
    readable from a screen at a slant."""
    import segno  # only this rare panel draws QR codes: kept out of every worker until then

    code = segno.make_qr(url, error="m", boost_error=False)
    svg = code.svg_inline(scale=4, border=4, dark="#000", light="#fff", title=title, omitsize=True, svgclass="qr-code")
    return svg.replace("<svg ", '<svg role="img" ', 1)  # named by its <title>


def issue_handoff_link(user: User, qr_title: str) -> HandoffLink:
    """A new handoff link for the current inquiry (commits), in this page's language; the older
    unused ones now die within HANDOFF_GRACE_SECONDS. NothingToHandOffError when there is no
    resumable inquiry."""
    inquiry = get_current_inquiry(user)
    if inquiry is None or inquiry.status not in RESUMABLE:
        raise NothingToHandOffError
    now = utcnow()
    soon = now + timedelta(seconds=current_app.config["HANDOFF_GRACE_SECONDS"])
    db.session.execute(
        update(RecoveryLink)
        .where(
            RecoveryLink.user_id == user.id,
            RecoveryLink.purpose == LinkPurpose.HANDOFF,
            RecoveryLink.used_at.is_(None),
            RecoveryLink.revoked_at.is_(None),
            RecoveryLink.expires_at > soon,
        )
        .values(expires_at=soon)
    )
    url = issue_link(user, inquiry, LinkPurpose.HANDOFF, locale=current_locale())
    return HandoffLink(url, qr_svg(url, qr_title), _epoch_ms(now))


class HandoffState:
    WAITING = "waiting"  # nobody has used a link yet: the computer keeps showing the QR code
    ON_PHONE = "on_phone"  # a phone used one: the flow runs there
    FINISHED = "finished"  # the inquiry is no longer resumable: the page's result is ready


def handoff_status(user: User, since_ms: int) -> str:
    """Where the verification stands for a computer whose panel opened at `since_ms` (server
    time, from HandoffLink.issued_at_ms). Reads only."""
    inquiry = get_current_inquiry(user)
    if inquiry is None or inquiry.status not in RESUMABLE:
        return HandoffState.FINISHED
    since = datetime.fromtimestamp(since_ms / 1000, UTC).replace(tzinfo=None)
    used = db.session.scalar(
        select(func.count(RecoveryLink.id)).where(
            RecoveryLink.user_id == user.id,
            RecoveryLink.inquiry_id == inquiry.id,
            RecoveryLink.purpose == LinkPurpose.HANDOFF,
            RecoveryLink.used_at >= since,
        )
    )
    return HandoffState.ON_PHONE if used else HandoffState.WAITING


def _epoch_ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)
