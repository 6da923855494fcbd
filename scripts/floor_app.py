"""Baselines for the load benchmark (scripts/load_bench.py), served on the app's own stack
(gunicorn gthread, SQLAlchemy on the same PostgreSQL, Jinja):

- `/floor/<user_id>`: the least a page can do: one SELECT by primary key, one template of the
  continue page's size. Our reload of /verify is measured against it.
- `/tutorial/<reference_id>`: Persona's tutorial pattern: on every view, list the person's
  inquiry, then resume it for a fresh session token (two Persona calls a view).
- `/resume/<inquiry_id>`: minting's floor: one resume at Persona, one template, nothing else.

    gunicorn -c gunicorn.conf.py scripts.floor_app:app   (DATABASE_URL, PERSONA_API_BASE_URL)
"""

from __future__ import annotations

import os
import threading

import requests
from flask import Flask
from sqlalchemy import create_engine, text

PAGE_BYTES = int(os.environ.get("FLOOR_PAGE_BYTES", "6000"))  # about /verify's size
API = os.environ.get("PERSONA_API_BASE_URL", "http://127.0.0.1:5001/api/v1")
KEY = os.environ.get("PERSONA_API_KEY") or "persona_sandbox_emulator_key"

app = Flask(__name__)
# The app's production pool (webapp/config.py): one connection per thread, no ping per checkout.
engine = create_engine(
    os.environ["DATABASE_URL"], pool_size=int(os.environ.get("GUNICORN_THREADS", "8")), pool_recycle=1800
)
PAGE = app.jinja_env.from_string(
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>{{ title }}</title></head>"
    "<body><main><h1>{{ title }}</h1><p>{{ detail }}</p><p>{{ padding }}</p></main></body></html>"
)
PADDING = "x" * PAGE_BYTES
_local = threading.local()


def _persona() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {KEY}", "Accept": "application/json"})
        _local.session = session
    return session


@app.get("/floor/<int:user_id>")
def floor(user_id: int) -> str:
    with engine.connect() as conn:
        email = conn.execute(text("SELECT email FROM users WHERE id = :id"), {"id": user_id}).scalar_one()
    return PAGE.render(title="Continue your verification", detail=email, padding=PADDING)


@app.get("/resume/<inquiry_id>")
def resume(inquiry_id: str) -> tuple[str, int]:
    resumed = _persona().post(f"{API}/inquiries/{inquiry_id}/resume", json={"meta": {}}, timeout=(2, 5))
    if resumed.status_code != 200:
        return PAGE.render(title="Unavailable", detail=str(resumed.status_code), padding=""), 503
    token = resumed.json()["meta"]["session-token"]
    return PAGE.render(title="Continue your verification", detail=len(token), padding=PADDING), 200


@app.get("/tutorial/<reference_id>")
def tutorial(reference_id: str) -> tuple[str, int]:
    listed = _persona().get(API + "/inquiries", params={"filter[reference-id]": reference_id}, timeout=(2, 5))
    if listed.status_code != 200 or not listed.json().get("data"):
        return PAGE.render(title="Unavailable", detail=str(listed.status_code), padding=""), 503
    inquiry_id = listed.json()["data"][0]["id"]
    resumed = _persona().post(f"{API}/inquiries/{inquiry_id}/resume", json={"meta": {}}, timeout=(2, 5))
    if resumed.status_code != 200:
        return PAGE.render(title="Unavailable", detail=str(resumed.status_code), padding=""), 503
    token = resumed.json()["meta"]["session-token"]
    return PAGE.render(title="Continue your verification", detail=len(token), padding=PADDING), 200
