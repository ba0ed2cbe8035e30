"""The ignore list (``/pullable ignore <image>``) and its one matcher.

The list lives in the dashboard issue, as a hidden marker (``<!-- pullable:dashboard
{"ignored": [...]} -->``), so the bot stays stateless and a person with write access can see
(and edit) it. It is keyed on the image's normalised *name* (``docker.io/bitnami/kubectl``):
ignoring a name ignores every tag and digest of it, because a tag-level ignore would come back
with the next tag bump. The PR writer, the dashboard, the check and the commands all read it
here, and all ask :meth:`State.ignores`.

**Found by author and marker, never by title alone.** The issue the state is read from must be
written by the App itself *and* carry the marker: anybody can open an issue with the same title
or paste the marker, and that must not ignore images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.github import Session, issues
from bot.github.markdown import markers
from bot.reference import is_name, name_of

__all__ = ["MARKER", "State", "parse_state", "read_state"]

MARKER = "dashboard"


@dataclass(frozen=True)
class State:
    """What the dashboard issue holds: its number (None: not created yet), its body as it is now,
    whether it is open, and the image names users ignored."""

    issue_number: int | None = None
    ignored: frozenset[str] = field(default_factory=frozenset)
    body: str | None = None
    open: bool = True

    def ignores(self, reference: str | None) -> bool:
        """Whether a reference's image is ignored (every tag and digest of an ignored name)."""
        name = name_of(reference)
        return name is not None and name in self.ignored


def parse_state(body: str | None) -> set[str]:
    """Ignored names from the body's last dashboard marker (entries that are not normalised
    names are dropped: people can edit the body)."""
    found = markers(body, MARKER)
    if not found:
        return set()
    names = found[-1].get("ignored")
    if not isinstance(names, list):
        return set()
    return {n for n in names if isinstance(n, str) and is_name(n)}


def read_state(session: Session) -> State:
    """The dashboard's state, from the issue the App wrote that carries the marker (newest first)."""
    me = issues.bot_login(session)
    for issue in issues.issues_by(session, me):
        body = issue.get("body") or ""
        if markers(body, MARKER):
            names = frozenset(parse_state(body))
            return State(int(issue["number"]), names, body, issue.get("state") == "open")
    return State()
