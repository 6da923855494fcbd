"""The home page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask_login import current_user
from sqlalchemy import text
from werkzeug.wrappers import Response

from ..extensions import db

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    """What this is, with the way in: sign in, or continue verification when signed in."""
    return render_template("index.html", user=current_user)


@bp.get("/healthz")
def health() -> Response:
    """Liveness for load balancers: the database answers."""
    db.session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})
