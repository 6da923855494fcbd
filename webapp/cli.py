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


def register(app: Flask) -> None:
    app.cli.add_command(demo_cli)
