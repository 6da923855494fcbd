"""The Persona SDK's script tag: served from our origin (checked against its pinned hash at
start-up) or from Persona's CDN. Either way the tag carries an SRI hash the browser checks."""

from __future__ import annotations

import base64
import hashlib
import logging
import os

from flask import Flask, url_for

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.extensions["persona_sdk_file"] = checked_sdk_file(app)
    app.jinja_env.globals["sdk_script"] = lambda: sdk_script(app)


def checked_sdk_file(app: Flask) -> str | None:
    """The self-hosted SDK file, only when its SHA-384 is the pinned one."""
    path = app.config["PERSONA_SDK_PATH"]
    if app.config["PERSONA_SDK_CDN_URL"] or not os.path.exists(path):
        if not app.config["PERSONA_SDK_CDN_URL"]:
            log.error("Persona SDK not found at %s: run `npm ci`", path)
        return None
    with open(path, "rb") as fh:
        digest = base64.b64encode(hashlib.sha384(fh.read()).digest()).decode()
    if digest != app.config["PERSONA_SDK_SHA384"]:
        log.error("Persona SDK at %s does not match PERSONA_SDK_SHA384: not serving it", path)
        return None
    return path


def sdk_script(app: Flask) -> dict[str, str]:
    """`src` and `integrity` for the SDK's script tag."""
    if app.config["PERSONA_SDK_CDN_URL"]:
        return {
            "src": app.config["PERSONA_SDK_CDN_URL"],
            "integrity": app.config["PERSONA_SDK_CDN_INTEGRITY"],
            "crossorigin": "anonymous",
        }
    return {
        "src": url_for("verify.sdk", version=app.config["PERSONA_SDK_VERSION"]),
        "integrity": f"sha384-{app.config['PERSONA_SDK_SHA384']}",
        "crossorigin": "anonymous",
    }
