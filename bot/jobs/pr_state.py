"""What Pullable remembers about its pull requests, read back from GitHub: the bot keeps no state.

Each Pullable PR body ends with a hidden marker (``<!-- pullable:pr {...} -->``) holding a
:class:`PrState`: the change set (one :class:`Item` per reference), its fingerprint, the base and
head commits it was built from, and flags (a person committed, a "no" acknowledged, retired by
Pullable, images released with ``/pullable unignore``). The PR writer (:mod:`bot.jobs.publish`)
writes it; the dashboard and the commands read it. Branches are ``pullable/<group>``
(:data:`PREFIX`, the one place that prefix is spelled).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.github import Session, pulls
from bot.github.git import blob_sha
from bot.github.markdown import MARKER as ANY_MARKER
from bot.github.markdown import marker, markers
from bot.model import Finding
from bot.reference import name_of

__all__ = [
    "MARKER",
    "PREFIX",
    "Item",
    "PrState",
    "blocked",
    "branch_name",
    "content_of",
    "fingerprint",
    "held_back",
    "item",
    "open_pulls",
    "state_of",
    "with_state",
]

PREFIX = "pullable/"
MARKER = "pr"


@dataclass(frozen=True, order=True)
class Item:
    """One proposed change, independent of line numbers (a line added above must not make it a
    new change): the file, the reference there, its target."""

    path: str
    reference: str
    target: str
    image: str  # the old reference's repository name, what `/pullable ignore` names

    @property
    def key(self) -> str:
        raw = f"{self.path}\0{self.reference}\0{self.target}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def to_json(self) -> list[str]:
        return [self.path, self.reference, self.target, self.image]

    @classmethod
    def from_json(cls, v: Any) -> Item | None:
        if isinstance(v, list) and len(v) == 4 and all(isinstance(x, str) for x in v):
            return cls(*v)
        return None


def item(f: Finding) -> Item:
    """The change a fixable finding proposes."""
    assert f.fix is not None, "only findings with a fix are proposed"
    reference = f.ref.reference or f.ref.text
    return Item(f.ref.path, reference, f.fix.target or f.fix.after, name_of(reference) or reference)


def fingerprint(items: Iterable[Item]) -> str:
    return hashlib.sha256("\n".join(sorted(i.key for i in items)).encode()).hexdigest()[:32]


def content_of(files: Mapping[str, bytes]) -> str:
    """What the PR's branch holds in the files it changes (paths and git blob ids): when a
    rebuild on a moved base would write exactly this again, the base did not touch those files,
    so the PR neither conflicts nor changes, and its branch is left where it is."""
    lines = sorted(f"{path}\0{blob_sha(data)}" for path, data in files.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PrState:
    """The marker of one Pullable PR. ``head`` is the last commit Pullable pushed to its branch
    ("" before the first push); the flags say what happened since."""

    group: str = ""
    fingerprint: str = ""
    base: str = ""
    items: tuple[Item, ...] = ()
    head: str = ""
    content: str = ""  # content_of() the files written at ``head`` ("" in markers before it)
    human: bool = False  # a person committed to the branch: said once, then left alone
    noted: bool = False  # closed without merging, and the "no" was acknowledged
    retired: bool = False  # closed by Pullable itself: blocks nothing
    released: frozenset[str] = field(default_factory=frozenset)  # images `/pullable unignore` freed

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": 1,
            "group": self.group,
            "fingerprint": self.fingerprint,
            "base": self.base,
            "items": [i.to_json() for i in self.items],
        }
        if self.head:
            out["head"] = self.head
        if self.content:
            out["content"] = self.content
        for flag in ("human", "noted", "retired"):
            if getattr(self, flag):
                out[flag] = True
        if self.released:
            out["released"] = sorted(self.released)
        return out

    @classmethod
    def from_json(cls, data: Any) -> PrState | None:
        """The state in a marker; None when it is not one (people can edit PR bodies, so every
        field is checked and bad items are dropped)."""
        if not isinstance(data, dict):
            return None

        def text(key: str) -> str:
            v = data.get(key)
            return v if isinstance(v, str) else ""

        raw_items = data.get("items")
        items = [Item.from_json(v) for v in raw_items] if isinstance(raw_items, list) else []
        released = data.get("released")
        return cls(
            group=text("group"),
            fingerprint=text("fingerprint"),
            base=text("base"),
            items=tuple(i for i in items if i is not None),
            head=text("head"),
            content=text("content"),
            human=data.get("human") is True,
            noted=data.get("noted") is True,
            retired=data.get("retired") is True,
            released=frozenset(x for x in released if isinstance(x, str))
            if isinstance(released, list)
            else frozenset(),
        )

    def but(self, **changes: Any) -> PrState:
        """A copy with ``changes`` (flags set, images released)."""
        return replace(self, **changes)


def branch_name(group: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", group.lower()).strip("-.") or "changes"
    return PREFIX + slug[:60]


def state_of(pr: pulls.Pull) -> PrState | None:
    """The PR's hidden marker (the last one wins; None for a PR Pullable did not write)."""
    found = markers(pr.body, MARKER)
    return PrState.from_json(found[-1]) if found else None


def with_state(body: str, state: PrState) -> str:
    """``body`` with its marker replaced by ``state``."""
    new = marker(MARKER, state.to_json())
    kept = ANY_MARKER.sub(lambda m: "" if m.group("name") == MARKER else m.group(0), body).rstrip()
    return f"{kept}\n\n{new}\n"


def blocked(closed: Iterable[pulls.Pull]) -> set[str]:
    """Keys of items a person said no to: in PRs closed without merging (not retired by
    Pullable), minus the images released with ``/pullable unignore``."""
    out: set[str] = set()
    for pr in closed:
        st = state_of(pr)
        if pr.merged or st is None or st.retired:
            continue
        out |= {i.key for i in st.items if i.image not in st.released}
    return out


def held_back(pr: pulls.Pull, errors: Iterable[str]) -> list[str]:
    """The files of ``pr``'s changes among ``errors`` (paths that could not be scanned or read):
    while there are any, the PR is kept exactly as it is."""
    broken = set(errors)
    st = state_of(pr)
    return sorted({i.path for i in (st.items if st else ()) if i.path in broken})


def open_pulls(session: Session) -> list[pulls.Pull]:
    """Pullable's open pull requests in the session's repository."""
    return [p for p in pulls.listing(session, "open") if p.head.startswith(PREFIX)]
