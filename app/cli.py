"""Flask CLI commands (``flask --app wsgi …``)."""

from __future__ import annotations

import click
from flask import Flask

from app.errors import ApiError
from app.handover_cli import handover_group
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

    wecom_group = click.Group("wecom", help="Talk to WeCom.")
    events_group = click.Group("events", help="The callback event store.")
    app.cli.add_command(wecom_group)
    app.cli.add_command(events_group)
    app.cli.add_command(handover_group)

    @wecom_group.command("sync")
    def wecom_sync():
        """Pull departments, staff, tags and every rep's customers; reconcile what changed."""
        from app.services import corps, sync

        bars: dict[str, click.progressbar] = {}

        def progress(phase: str, done: int, total: int):
            bar = bars.get(phase)
            if bar is None:
                bar = bars[phase] = click.progressbar(length=max(total, 1), label=phase.ljust(10))
                bar.__enter__()
            bar.update(done - bar.pos)
            if done >= total:
                bar.__exit__(None, None, None)

        report = sync.run(corps.env_corp_id(), progress)
        click.echo(
            f"departments {report.departments}, staff {report.staff}, tags {report.tags}, "
            f"customer relations {report.contacts}, relations closed {report.relations_closed}, "
            f"reps marked resigned {report.resigned or 'none'}"
        )

    @events_group.command("replay")
    @click.option("--status", type=click.Choice(["failed", "received", "ignored"]), default="failed")
    @click.option("--id", "event_ids", type=int, multiple=True, help="only these event ids")
    def events_replay(status: str, event_ids: tuple[int, ...]):
        """Re-enqueue failed (or other) events for processing."""
        from app.models import EventStatus
        from app.services import events

        count = events.replay(EventStatus(status), list(event_ids) or None)
        click.echo(f"re-enqueued {count} event(s)")
