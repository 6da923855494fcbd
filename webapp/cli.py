"""`flask` commands for operators and support."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

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


@inquiries_cli.command("sync")
@click.argument("email", required=False)
def sync_command(email: str | None) -> None:
    """Fetch statuses from Persona where ours may be stale (a backstop for missed webhooks)."""
    from .persona import PersonaUnavailableError
    from .verification import inquiries_to_sync, sync_inquiry

    changed = failed = 0
    candidates = inquiries_to_sync(email)
    for inquiry in candidates:
        try:
            old, new = sync_inquiry(inquiry)
        except PersonaUnavailableError as exc:
            failed += 1
            click.echo(f"{inquiry.persona_id}: Persona unavailable ({type(exc).__name__})", err=True)
            continue
        if old != new:
            changed += 1
            click.echo(f"{inquiry.persona_id}: {old} -> {new}")
    click.echo(f"checked {len(candidates)}, changed {changed}, failed {failed}")
    if failed:
        raise SystemExit(1)


def register(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(inquiries_cli)
