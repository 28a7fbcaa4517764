"""Flask CLI commands (``flask --app wsgi …``)."""

from __future__ import annotations

import click
from flask import Flask

from app.errors import ApiError
from app.models import Role


def init_app(app: Flask) -> None:
    @app.cli.command("create-admin")
    @click.argument("username")
    @click.option("--password", required=True, help="at least 8 characters")
    @click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.admin.value)
    @click.option("--exist-ok", is_flag=True, help="succeed quietly when the user already exists")
    def create_admin(username: str, password: str, role: str, exist_ok: bool):
        """Create a console/API user."""
        from app.services import auth

        try:
            user = auth.create_user(username, password, Role(role))
        except ApiError as exc:
            if exist_ok and exc.status == 409:
                click.echo(f"user {username} exists")
                return
            raise click.ClickException(f"{exc.message}: {exc.fields}") from exc
        click.echo(f"created {user.role} {user.username} (id {user.id})")
