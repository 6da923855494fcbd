"""Security plumbing: CSP nonce and headers, safe redirects, token hashing and encryption."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Response, abort, current_app, g, request

# Features nobody on our pages uses: switched off for every frame.
_DENIED_FEATURES = (
    "accelerometer",
    "autoplay",
    "display-capture",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "midi",
    "payment",
    "usb",
    "serial",
    "hid",
    "xr-spatial-tracking",
)


def init_app(app: Flask) -> None:
    app.before_request(_make_nonce)
    app.before_request(_refuse_nul_bytes)
    app.after_request(set_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce


def _make_nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(18)


FORM_MIMETYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _refuse_nul_bytes() -> None:
    """A NUL byte is in no address, password or token: 400 before it reaches a database
    (PostgreSQL refuses it in text, which would be a 500)."""
    values = list(request.args.values())
    if request.mimetype in FORM_MIMETYPES:
        values += request.form.values()
    if "\x00" in request.path or any("\x00" in value for value in values):
        abort(400)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        _make_nonce()
    return str(g.csp_nonce)


def content_security_policy(nonce: str) -> str:
    flow_origin = current_app.config["PERSONA_FLOW_ORIGIN"]
    script_src = f"'nonce-{nonce}' 'strict-dynamic'"
    if current_app.config["PERSONA_SDK_CDN_URL"]:
        cdn = urlsplit(current_app.config["PERSONA_SDK_CDN_URL"])
        script_src += f" {cdn.scheme}://{cdn.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_src}",
            # The SDK injects <style> elements without a nonce (SDK.md): styles only.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            f"frame-src {flow_origin}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def set_security_headers(response: Response) -> Response:
    flow_origin = current_app.config["PERSONA_FLOW_ORIGIN"]
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    denied = ", ".join(f"{feature}=()" for feature in _DENIED_FEATURES)
    # The camera and microphone go to Persona's frame. Our page is in the camera's list only so
    # that the page script can read the camera permission before the flow boots (with the
    # feature off, the Permissions API says "denied" whatever the person chose); it never opens
    # the camera (tests/browser/test_device.py checks that).
    headers["Permissions-Policy"] = f'camera=(self "{flow_origin}"), microphone=("{flow_origin}"), {denied}'
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if current_app.config["HSTS_ENABLED"]:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    is_page = request.endpoint and not request.endpoint.endswith("static")
    if (is_page or 300 <= response.status_code < 400) and "Cache-Control" not in headers:
        # Pages show personal state, and redirects (Werkzeug's own too) name a host: never
        # cache them anywhere.
        headers["Cache-Control"] = "no-store"
    return response


def is_safe_next(target: str | None) -> bool:
    """True for a same-site path like `/verify`; false for other hosts, schemes or `//x`."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    """256 bits from the OS's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def derived_fernet(secret_key: str, purpose: bytes) -> Fernet:
    """A Fernet (encrypted, authenticated, timestamped tokens) keyed from SECRET_KEY for one purpose."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class TokenCipher:
    """Encrypts Persona session tokens at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: str | None, secret_key: str) -> None:
        if not key:
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"persona-session-token").derive(
                secret_key.encode()
            )
            key = base64.urlsafe_b64encode(derived).decode()
        self._fernet = Fernet(key.encode())

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str | None:
        """The token, or None when the ciphertext does not open with our key."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except (InvalidToken, ValueError):
            return None
