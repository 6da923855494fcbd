"""What the pages and emails say, without a browser: titles, times without JavaScript, emails."""

from __future__ import annotations

import re
from datetime import datetime

from flask import render_template

from webapp.mail import build_message
from webapp.models import Inquiry
from webapp.verification import VerifyPage

STATES = ["processing", "review", "approved", "declined", "failed", "unavailable", "closed"]


def title_of(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match
    return match.group(1).strip()


def test_each_status_page_has_its_own_title(app):
    with app.test_request_context("/verify"):
        titles = [title_of(render_template("verify/status.html", page=VerifyPage(state))) for state in STATES]
    assert len(set(titles)) == len(STATES), titles
    assert "Your verification – Acme" not in titles


def test_times_say_utc_when_no_script_rewrites_them(app):
    moment = datetime(2026, 11, 28, 18, 5)
    page = VerifyPage("continue", Inquiry(persona_id="inq_abc", status="pending", expires_at=moment))
    with app.test_request_context("/verify"):
        html = render_template("verify/continue.html", page=page)
    assert '<time datetime="2026-11-28T18:05:00Z" data-local-time>28 November 2026, 18:05 UTC</time>' in html


def test_emails_show_the_link_as_text_and_the_support_address_as_a_link(app):
    link = "http://localhost/r/abc"
    with app.test_request_context("/"):
        messages = [
            build_message("ada@example.test", "recovery", link=link, valid_hours=72),
            build_message(
                "ada@example.test",
                "reminder",
                link=link,
                expired=False,
                expires_at=datetime(2026, 11, 28, 18, 5),
                unsubscribe_url="http://localhost/unsubscribe/x",
            ),
        ]
    for message in messages:
        html = message.get_body(("html",)).get_content()
        assert f">{link}</a>" in html
        assert f'href="mailto:{app.config["SUPPORT_EMAIL"]}"' in html
