"""`flask persona check` against the emulator over a real socket: what it finds, what it refuses,
and that it leaves nothing behind."""

from __future__ import annotations

from tests.emulator_client import API_KEY


def run_check(runner, *args: str):
    return runner.invoke(args=["persona", "check", *args])


def test_the_emulator_answers_as_we_assume(app, emulator, live_server):
    result = run_check(
        app.test_cli_runner(), "--webhook-url", live_server.url + "/webhooks/persona", "--webhook-wait", "10"
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "sandbox key" in lines[0]
    for behaviour in (
        "create with `auto-create-inquiry-session`",
        "resume a `created` inquiry",
        "list the inquiry's sessions",
        "expire every session (`expire-all`",
        "the answer past the session cap [#3]: HTTP 429 (Session limit reached",
        "create-time expiry override",
        "an expired inquiry resumes to `pending`",
        "the 409 for a non-resumable (redacted) inquiry [#2]: HTTP 409 (Conflict",
        "webhook delivery",
        "webhook key inflection",
    ):
        assert any(line.startswith("confirmed") and behaviour in line for line in lines), behaviour
    assert any(line.startswith("could not check") and "expiry restarts at start" in line for line in lines)
    assert not [line for line in lines if line.startswith("differs")]
    assert lines[-1].endswith("throwaway inquiries redacted")
    checked = [i for i in emulator.inquiries() if (i.get("reference_id") or "").startswith("persona-check-")]
    assert len(checked) == 2
    for inquiry in checked:
        assert emulator.inquiry(inquiry["id"])["attributes"]["redacted-at"]


def test_a_different_persona_is_reported_and_fails_the_run(runner, emulator):
    emulator.configure(resume_allows_created=False, session_cap_status=403, max_sessions_per_inquiry=3)
    result = run_check(runner)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("differs") and "resume a `created` inquiry [#1]: HTTP 409" in line for line in lines)
    assert any(
        line.startswith("differs")
        and "the answer past the session cap [#3]: HTTP 403" in line
        and "after 3 sessions" in line
        for line in lines
    ), result.output
    assert any(line.startswith("could not check") and "no --webhook-url" in line for line in lines)
    assert lines[-1].endswith("throwaway inquiries redacted")


def test_a_production_key_is_refused_before_any_call(make_app, emulator):
    app = make_app(PERSONA_API_KEY="persona_production_abc123")
    emulator.clear_requests()
    result = run_check(app.test_cli_runner())
    assert result.exit_code != 0
    assert "production key" in result.output and "--allow-production" in result.output
    assert emulator.requests() == []


def test_allow_production_lets_it_run(make_app, emulator):
    """The flag is honoured: the emulator then refuses the unknown key, and the check says so."""
    app = make_app(PERSONA_API_KEY="persona_production_abc123")
    result = run_check(app.test_cli_runner(), "--allow-production")
    assert "production key" in result.output.splitlines()[0]
    assert "HTTP 401" in result.output
    assert result.exit_code == 1
    assert API_KEY != "persona_production_abc123"
