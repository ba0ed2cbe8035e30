"""Webhook routing, bedevere-style: handlers register per event and action.

Each module under :mod:`bot.jobs.handlers` (one per behaviour) has its own ``router``;
``@router.register("push")`` runs for every ``push``, ``@router.register("installation",
action="created")`` only for that action. :mod:`bot.jobs.app` composes them, in order, into the
App's one router: ``Router(push.router, installation.router, ...)``. The web process asks
:meth:`Router.handles` to decide whether a delivery is worth a job at all (anything else gets a
2xx and is forgotten); the worker's ``webhook`` job calls :meth:`Router.dispatch`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.jobs import Context


@dataclass(frozen=True)
class Event:
    """One verified delivery as handlers see it."""

    name: str
    action: str | None
    delivery: str
    payload: Mapping[str, Any]

    @property
    def installation_id(self) -> int | None:
        inst = self.payload.get("installation") or {}
        return inst.get("id")

    @property
    def repo(self) -> str | None:
        """``owner/name`` of the repository the event is about, if any."""
        return (self.payload.get("repository") or {}).get("full_name")


Handler = Callable[[Event, Context], None]


class Router:
    def __init__(self, *others: Router) -> None:
        """A router holding the routes of ``others``, in their order (bedevere's composition)."""
        self._routes: dict[tuple[str, str | None], list[Handler]] = defaultdict(list)
        for other in others:
            for key, handlers in other._routes.items():
                self._routes[key].extend(h for h in handlers if h not in self._routes[key])

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: ``action`` None means every action of ``event``."""

        def add(fn: Handler) -> Handler:
            if fn not in self._routes[(event, action)]:
                self._routes[(event, action)].append(fn)
            return fn

        return add

    def unregister(self, event: str, action: str | None, fn: Handler) -> None:
        self._routes[(event, action)].remove(fn)

    def handlers(self, event: str, action: str | None) -> list[Handler]:
        found = list(self._routes.get((event, None), ()))
        if action is not None:
            found += self._routes.get((event, action), ())
        return found

    def handles(self, event: str, action: str | None) -> bool:
        return bool(self.handlers(event, action))

    def dispatch(self, event: Event, ctx: Context) -> int:
        """Run every matching handler (in registration order); returns how many ran."""
        found = self.handlers(event.name, event.action)
        for fn in found:
            fn(event, ctx)
        return len(found)
