"""The status vocabulary: every status has a page, and the groups say one thing each."""

from __future__ import annotations

from webapp.statuses import (
    CLOSED_REASON_BY_STATUS,
    CLOSED_TO_RESUMING,
    DECIDED,
    DROPS_SESSION_TOKEN,
    FINISHED,
    LINKS_LEAD_NOWHERE,
    PAGE_STATE_BY_STATUS,
    PERSONA_MAY_STILL_CHANGE,
    RESUMABLE,
    STATUS_BY_EVENT,
    SUBMITTED,
    InquiryStatus,
)

EVERY = set(InquiryStatus)


def test_every_status_has_a_page_and_closed_pages_say_why():
    assert set(PAGE_STATE_BY_STATUS) == EVERY
    closed = {status for status, state in PAGE_STATE_BY_STATUS.items() if state == "closed"}
    assert closed == set(CLOSED_REASON_BY_STATUS)
    assert {status for status, state in PAGE_STATE_BY_STATUS.items() if state == "continue"} == RESUMABLE


def test_resumable_and_closed_to_resuming_split_the_statuses():
    assert RESUMABLE | CLOSED_TO_RESUMING == EVERY and not RESUMABLE & CLOSED_TO_RESUMING
    assert not SUBMITTED & DECIDED and FINISHED == SUBMITTED | DECIDED


def test_what_the_rules_follow_from():
    # a decision may still come; a 404 may have been a glitch (`inquiries sync` looks again)
    assert PERSONA_MAY_STILL_CHANGE == RESUMABLE | SUBMITTED | {InquiryStatus.MISSING}
    assert InquiryStatus.EXPIRED in DROPS_SESSION_TOKEN and InquiryStatus.PENDING not in DROPS_SESSION_TOKEN
    assert InquiryStatus.MISSING not in LINKS_LEAD_NOWHERE  # its page offers a new start
    assert set(STATUS_BY_EVENT.values()) == EVERY - {InquiryStatus.MISSING}  # ours alone
