"""Security helpers: safe redirects, random tokens, their hashes, and encryption at rest."""

from __future__ import annotations

import hashlib

import pytest

from webapp.security import TokenCipher, hash_token, is_safe_next, new_token


@pytest.mark.parametrize(
    "target, safe",
    [
        ("/verify", True),
        ("/verify?x=1", True),
        ("//evil.example", False),
        ("https://evil.example", False),
        ("/\\\\evil.example", False),
        ("javascript:alert(1)", False),
        ("", False),
        (None, False),
        ("/\x00x", False),
    ],
)
def test_safe_next(target, safe):
    assert is_safe_next(target) is safe


def test_tokens_hashes_and_encryption():
    token = new_token()
    assert len(token) == 43 and new_token() != token
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    cipher = TokenCipher(None, "secret-key")
    sealed = cipher.encrypt("persona-token")
    assert "persona-token" not in sealed and cipher.decrypt(sealed) == "persona-token"
    assert TokenCipher(None, "another-key").decrypt(sealed) is None
    assert cipher.decrypt("garbage") is None
