"""A new installation, or repositories added to one: a full scan of each repository's default
branch. When the payload does not list the repositories, the schedule job lists them."""

from __future__ import annotations

from bot.jobs import Context, requests
from bot.jobs.router import Event, Router

router = Router()


@router.register("installation", action="created")
@router.register("installation_repositories", action="added")
def on_installed(event: Event, ctx: Context) -> None:
    inst = event.installation_id
    if inst is None:
        return
    key = "repositories" if event.name == "installation" else "repositories_added"
    repos = event.payload.get(key)
    if repos is None:
        requests.schedule(ctx, inst, spread=0)
        return
    for r in repos:
        requests.scan(ctx, inst, r["full_name"], f"{event.name} {event.action}")
