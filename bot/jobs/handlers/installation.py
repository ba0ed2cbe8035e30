"""A new installation, or repositories added to one: a full scan of each repository's default
branch. When the payload does not list the repositories, the schedule job lists them."""

from __future__ import annotations

from bot.jobs import Context
from bot.jobs.router import Event, router


@router.register("installation", action="created")
@router.register("installation_repositories", action="added")
def on_installed(event: Event, ctx: Context) -> None:
    inst = event.installation_id
    if inst is None:
        return
    key = "repositories" if event.name == "installation" else "repositories_added"
    repos = event.payload.get(key)
    if repos is None:
        ctx.submit("schedule", {"installation_id": inst, "spread": 0})
        return
    for r in repos:
        ctx.submit(
            "scan",
            {"installation_id": inst, "repo": r["full_name"], "ref": None, "paths": None, "compare": [],
             "reasons": [f"{event.name} {event.action}"]},
            repo=r["full_name"],
        )  # fmt: skip
