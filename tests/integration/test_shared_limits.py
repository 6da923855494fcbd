"""Rate limits hold across app instances when they share Redis (as production does)."""

from __future__ import annotations

from tests.pages import resend, sign_in


def test_two_instances_share_the_send_limit(make_app, redis_url):
    settings = {"RATELIMIT_STORAGE_URI": redis_url, "RECOVERY_SEND_LIMIT_PER_CLIENT": "3 per hour"}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    answers = [resend(client, "x@example.test").status_code for client in (one, two, one, two)]
    assert answers == [200, 200, 200, 429]


def test_two_instances_share_the_sign_in_limit(make_app, redis_url):
    settings = {"RATELIMIT_STORAGE_URI": redis_url, "LOGIN_RATE_LIMIT": "2 per minute"}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    answers = [sign_in(client, password="wrong password!").status_code for client in (one, two, one)]
    assert answers == [200, 200, 429]
