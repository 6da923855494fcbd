"""Template drift (RES): before resuming, the inquiry's template version is compared with the
template's latest published version; VERIFY_ON_TEMPLATE_DRIFT decides: resume anyway (default)
or offer a new start with an explanation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.builders import give_inquiry, make_user
from tests.pages import boot_config, csrf_from, sign_in, state_of
from webapp.extensions import db
from webapp.models import Inquiry

pytestmark = pytest.mark.postgres_too
TEMPLATE = "itmpl_test"  # the emulator client's template (tests/emulator_client.py)
HEADING = "Please start your verification again"


def calls(emulator) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in emulator.requests()]


def offering(make_app):
    """An app that offers a new start when the template has drifted."""
    return make_app(VERIFY_ON_TEMPLATE_DRIFT="offer_new_start")


def test_by_default_a_drifted_inquiry_is_resumed_without_an_extra_call(app, emulator):
    inquiry_id = give_inquiry(app, emulator, make_user(app), "pending")
    emulator.publish_template_version(TEMPLATE)
    client = app.test_client()
    sign_in(client)
    response = client.get("/verify")
    assert state_of(response) == "continue" and boot_config(response)["sessionToken"]
    assert calls(emulator) == [f"POST /api/v1/inquiries/{inquiry_id}/resume"]


def test_an_inquiry_on_the_latest_version_is_resumed_after_one_read(make_app, emulator):
    offering_app = offering(make_app)
    inquiry_id = give_inquiry(offering_app, emulator, make_user(offering_app), "pending")
    client = offering_app.test_client()
    sign_in(client)
    response = client.get("/verify")
    assert state_of(response) == "continue" and boot_config(response)["sessionToken"]
    assert calls(emulator) == [f"GET /api/v1/inquiries/{inquiry_id}", f"POST /api/v1/inquiries/{inquiry_id}/resume"]
    assert emulator.requests()[0]["query"] == "include=inquiry-template"


@pytest.mark.parametrize("walk", [["pending"], ["pending", "expired"]])
def test_a_drifted_inquiry_is_not_resumed_and_a_new_start_is_offered(make_app, emulator, walk):
    offering_app = offering(make_app)
    inquiry_id = give_inquiry(offering_app, emulator, make_user(offering_app), *walk)
    emulator.publish_template_version(TEMPLATE)
    client = offering_app.test_client()
    sign_in(client)
    page = client.get("/verify")
    html = page.get_data(as_text=True)
    assert state_of(page) == "closed" and HEADING in html and "Start again" in html
    assert calls(emulator) == [f"GET /api/v1/inquiries/{inquiry_id}"]  # no resume: no session spent
    restarted = client.post("/verify/restart", data={"csrf_token": csrf_from(html)})
    assert restarted.status_code == 303
    with offering_app.app_context():
        assert db.session.scalar(select(func.count(Inquiry.id))) == 2
    assert state_of(client.get("/verify")) == "continue"  # the new inquiry, on the new version


def test_restart_is_refused_when_the_template_has_not_changed(make_app, emulator):
    offering_app = offering(make_app)
    give_inquiry(offering_app, emulator, make_user(offering_app), "pending")
    client = offering_app.test_client()
    sign_in(client)
    html = client.get("/verify").get_data(as_text=True)
    assert client.post("/verify/restart", data={"csrf_token": csrf_from(html)}).status_code == 409


@pytest.mark.parametrize(
    ("locale", "heading"),
    [
        ("es", "Empieza de nuevo tu verificación"),
        ("fr", "Veuillez recommencer votre vérification"),
        ("de", "Bitte beginnen Sie Ihre Verifizierung neu"),
        ("pt_BR", "Comece sua verificação de novo"),
        ("ar", "يُرجى بدء التحقق من جديد"),
    ],
)
def test_the_explanation_speaks_every_language(make_app, emulator, locale, heading):
    offering_app = offering(make_app)
    give_inquiry(offering_app, emulator, make_user(offering_app), "pending")
    emulator.publish_template_version(TEMPLATE)
    client = offering_app.test_client()
    sign_in(client)
    home = client.get("/")
    client.post("/language", data={"locale": locale, "next": "/", "csrf_token": csrf_from(home.get_data(as_text=True))})
    page = client.get("/verify")
    html = page.get_data(as_text=True)
    assert state_of(page) == "closed" and page.headers["Content-Language"] == locale.replace("_", "-")
    assert heading in html
    assert HEADING not in html and "We have updated our identity check" not in html
