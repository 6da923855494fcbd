"""`flask` commands for operators and support."""

from __future__ import annotations

import logging

import click
from flask import Flask, current_app
from flask.cli import AppGroup

log = logging.getLogger(__name__)
demo_cli = AppGroup("demo", help="Demo data for local runs.")


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo users (password: demo-password), one per inquiry state."""
    from .demo import DEMO_PASSWORD, seed_demo_data

    for email, outcome in seed_demo_data():
        click.echo(f"{email:24} {outcome}")
    click.echo(f"All demo users sign in with the password {DEMO_PASSWORD!r}.")


webhooks_cli = AppGroup("webhooks", help="Persona webhook events.")
inquiries_cli = AppGroup("inquiries", help="Inquiries and their status at Persona.")


@webhooks_cli.command("replay")
@click.argument("event_id")
def replay_command(event_id: str) -> None:
    """Apply a stored event again (a newer status is never moved back)."""
    from .webhooks import replay_event

    outcome = replay_event(event_id)
    if outcome is None:
        raise click.ClickException(f"no stored event {event_id}")
    click.echo(f"{event_id}: {outcome}")


@webhooks_cli.command("prune")
def prune_command() -> None:
    """Delete stored events older than WEBHOOK_EVENT_RETENTION_DAYS (run daily from cron)."""
    from .webhooks import prune_events

    days = current_app.config["WEBHOOK_EVENT_RETENTION_DAYS"]
    click.echo(f"deleted {prune_events(days)} event(s) received more than {days} days ago")


@inquiries_cli.command("sync")
@click.argument("email", required=False)
def sync_command(email: str | None) -> None:
    """Fetch statuses from Persona where ours may be stale (a backstop for missed webhooks).
    Background calls: it stops once the budget's share for them is used (the rest next run)."""
    from .extensions import db
    from .persona import PersonaBusyError, PersonaError
    from .verification import inquiries_to_sync, sync_inquiry

    changed = failed = 0
    candidates = inquiries_to_sync(email)
    for index, inquiry in enumerate(candidates):
        try:
            old, new = sync_inquiry(inquiry)
        except PersonaBusyError:
            click.echo(f"Persona's budget is kept for people now: {len(candidates) - index} left for the next run")
            break
        except PersonaError as exc:  # one inquiry's odd answer never stops the others
            db.session.rollback()
            failed += 1
            click.echo(f"{inquiry.persona_id}: Persona unavailable ({type(exc).__name__})", err=True)
            continue
        if old != new:
            changed += 1
            click.echo(f"{inquiry.persona_id}: {old} -> {new}")
    click.echo(f"checked {len(candidates)}, changed {changed}, failed {failed}")
    if failed:
        raise SystemExit(1)


recovery_cli = AppGroup("recovery", help="Recovery links, for support.")
reminders_cli = AppGroup("reminders", help="Reminder emails (run from cron).")


def _user_or_fail(email: str):
    from .accounts import get_user_by_email

    user = get_user_by_email(email)  # the one address rule: an odd address finds nobody
    if user is None:
        raise click.ClickException(f"no account for {email!r}")
    return user


@recovery_cli.command("link")
@click.argument("email")
def recovery_link_command(email: str) -> None:
    """Print a fresh link for that person as the last line (no email is sent)."""
    from .recovery import issue_link
    from .verification import get_current_inquiry

    user = _user_or_fail(email)
    if not user.email_confirmed:
        raise click.ClickException(f"{email} is not confirmed yet: they confirm it by signing in, no link before")
    hours = current_app.config["RECOVERY_LINK_TTL_SECONDS"] // 3600
    click.echo(f"Single use, valid {hours} h. Give it only to {user.email}:")
    click.echo(issue_link(user, get_current_inquiry(user)))


@recovery_cli.command("send")
@click.argument("email")
def recovery_send_command(email: str) -> None:
    """Email that person a fresh link."""
    from .recovery import send_link_to_user

    if not send_link_to_user(_user_or_fail(email)):
        raise click.ClickException(
            "not sent: account disabled, address not confirmed, verification finished, or hourly limit reached"
        )
    click.echo(f"sent to {email}")


accounts_cli = AppGroup("accounts", help="Accounts, for support.")


@accounts_cli.command("sign-out")
@click.argument("email")
def accounts_sign_out_command(email: str) -> None:
    """End every session of that person and cancel every link emailed to them."""
    from .accounts import sign_out_everywhere

    sessions, links = sign_out_everywhere(_user_or_fail(email))
    click.echo(f"{email}: {sessions} session(s) ended, {links} link(s) cancelled")


@accounts_cli.command("disable")
@click.argument("email")
def accounts_disable_command(email: str) -> None:
    """Stop that account: no sign-in, no links, no reminders; signed out everywhere."""
    from .accounts import set_active

    set_active(_user_or_fail(email), False)
    click.echo(f"{email}: disabled and signed out everywhere")


@accounts_cli.command("enable")
@click.argument("email")
def accounts_enable_command(email: str) -> None:
    """Let a disabled account sign in again."""
    from .accounts import set_active

    set_active(_user_or_fail(email), True)
    click.echo(f"{email}: enabled")


@reminders_cli.command("send")
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
def reminders_send_command(dry_run: bool) -> None:
    """Email people whose verification is unfinished and idle, timed around its expiry, paced
    so the clicks they cause fit Persona's budget (the rest wait for the next run)."""
    from .mail import mask_email
    from .recovery import due_reminders, send_due_reminders

    def label(reminder) -> str:
        return f"{reminder.inquiry.persona_id} {reminder.window} -> {mask_email(reminder.inquiry.user.email)}"

    if dry_run:
        due = due_reminders()
        for reminder in due:
            click.echo(f"would send: {label(reminder)}")
        click.echo(f"{len(due)} due, 0 sent (dry run)")
        return
    run = send_due_reminders(on_sent=lambda reminder: click.echo(f"sent: {label(reminder)}"))
    deferred = f", {run.deferred} left for the next run (paced to Persona's budget)" if run.deferred else ""
    click.echo(f"{run.due} due, {run.sent} sent{deferred}")


persona_cli = AppGroup("persona", help="Persona itself, as configured (PERSONA_API_BASE_URL and key).")


@persona_cli.command("check")
@click.option(
    "--webhook-url",
    metavar="URL",
    help="The public address of this app's /webhooks/persona, where Persona delivers: also check delivery.",
)
@click.option("--webhook-wait", default=30.0, show_default=True, help="Seconds to wait for a webhook.")
@click.option("--allow-production", is_flag=True, help="Run even with a production key (it creates inquiries).")
def persona_check_command(webhook_url: str | None, webhook_wait: float, allow_production: bool) -> None:
    """Check what docs/PERSONA-ASSUMPTIONS.md leaves unconfirmed against the configured Persona
    (a Sandbox): throwaway inquiries, redacted at the end. Exit status 1 if anything differs."""
    from .config import EMULATOR_API_KEY
    from .persona import PersonaError
    from .persona_check import PersonaCheck, Verdict, environment_of, production_key_refusal
    from .services import persona

    config = current_app.config
    key = config["PERSONA_API_KEY"] or EMULATOR_API_KEY
    refusal = production_key_refusal(key, allow_production)
    if refusal:
        raise click.ClickException(refusal)
    client = persona()
    click.echo(f"Persona at {client.base_url} ({environment_of(key)} key), template {config['PERSONA_TEMPLATE_ID']}")
    check = PersonaCheck(
        client,
        template_id=config["PERSONA_TEMPLATE_ID"],
        session_cap=config["PERSONA_SESSIONS_PER_INQUIRY"],
        report=lambda finding: click.echo(finding.line()),
        webhook_url=webhook_url,
        webhook_wait_seconds=webhook_wait,
    )
    try:
        findings = check.run()
    except PersonaError as exc:
        raise click.ClickException(f"Persona could not be asked ({exc}); nothing more was checked") from exc
    counts = {verdict: sum(f.verdict == verdict for f in findings) for verdict in Verdict}
    left = f"; NOT redacted: {', '.join(check.created)}" if check.created else "; throwaway inquiries redacted"
    click.echo(", ".join(f"{n} {verdict.value}" for verdict, n in counts.items()) + left)
    if counts[Verdict.DIFFERS] or check.created:
        raise SystemExit(1)


def register(app: Flask) -> None:
    app.cli.add_command(persona_cli)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(recovery_cli)
    app.cli.add_command(reminders_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(inquiries_cli)
