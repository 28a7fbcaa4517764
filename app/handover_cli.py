"""``flask --app wsgi handover run|status``: drive and watch hand-overs from a shell."""

from __future__ import annotations

import time

import click

from app.errors import NotFound
from app.models import utcnow

handover_group = click.Group("handover", help="Staff departure and hand-over (离职继承 / 在职继承).")

# With --follow, never sleep longer than this between steps (so progress shows and Ctrl-C works).
FOLLOW_MAX_SLEEP = 30.0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "no customers"


@handover_group.command("status")
@click.argument("handover_id", type=int, required=False)
def status(handover_id: int | None):
    """Hand-overs (newest first, or the one given) with their customers per state."""
    from app.services import corps, handover

    views = handover.overview(corps.env_corp_id(), handover_id)
    if not views:
        raise click.ClickException(f"no hand-over {handover_id}" if handover_id else "no hand-overs yet")
    for view in views:
        chats = f"; group chats: {_counts(view.group_chats)}" if view.group_chats else ""
        attention = "  NEEDS ATTENTION" if view.needs_attention else ""
        click.echo(
            f"#{view.id} {view.kind} from {view.handover_userid} [{view.status}] "
            f"{view.final}/{view.total} final — {_counts(view.counts)}{chats}{attention}"
        )


@handover_group.command("run")
@click.argument("handover_ids", type=int, nargs=-1)
@click.option("--follow", is_flag=True, help="keep going until every customer is final")
@click.option("--timeout", type=float, default=None, help="with --follow: stop waiting after this many seconds")
def run(handover_ids: tuple[int, ...], follow: bool, timeout: float | None):
    """Run a step of the given (default: every open) hand-over now: resume after a crash,
    send what is planned, poll WeCom for results."""
    from app.services import corps, handover

    corp_id = corps.env_corp_id()
    ids = list(handover_ids) or handover.open_ids(corp_id)
    if not ids:
        click.echo("no open hand-overs")
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    for handover_id in ids:
        try:
            result = handover.run_now(corp_id, handover_id)
        except NotFound as exc:
            raise click.ClickException(f"no hand-over {handover_id}") from exc
        with click.progressbar(length=max(result.total, 1), label=f"hand-over #{handover_id}") as bar:
            bar.update(result.final)
            while follow and (result.next_step_at is not None or result.status == "busy"):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                wait = FOLLOW_MAX_SLEEP
                if result.next_step_at is not None:
                    wait = min(wait, max(1.0, (result.next_step_at - utcnow()).total_seconds()))
                time.sleep(wait)
                result = handover.run_now(corp_id, handover_id, force_poll=False)
                bar.update(result.final - bar.pos)
        click.echo(
            f"hand-over #{handover_id}: {result.status}, {result.final}/{result.total} final — {_counts(result.counts)}"
        )
