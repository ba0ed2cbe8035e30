"""The dashboard issue (issue 6 §4): one issue per repository, "Pullable: image health".

It lists everything a person should know that a pull request cannot say: references Pullable
cannot fix (auth-required, repo-missing, advise-only rules), a broken ``.github/pullable.yml``,
files that could not be scanned, ``pullable/<group>`` branches holding a person's commits (no PR
opens from them: the PR writer's :attr:`bot.jobs.publish.Report.skipped`), the open Pullable PRs,
and what users ignored.

**State lives in the issue**: the ignore list is a hidden marker in its body
(:mod:`bot.jobs.ignores` reads it, and holds the one matcher everybody uses).

**Edited in place, only when something changed.** The body is rendered deterministically from the
inventory, so an unchanged repository costs one ETag-revalidated listing (a free 304) and no
write. The issue is created the first time there is something to show; a person may close it
(Pullable keeps it current and never reopens it).

The scan job calls :func:`write` after the PR writer (:func:`bot.jobs.scan_repo.scan_job`), so the
open PRs it lists are the ones that scan produced. The inventory of the last scan is kept in the
journal's store (``dashboard:<repo>``, :func:`recorded`) so that commands can re-render and
explain without scanning again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from bot import github
from bot.github import Session, issues
from bot.github.markdown import cell, code, line, marker
from bot.jobs.ignores import MARKER as MARKER_NAME
from bot.jobs.ignores import State, parse_state, read_state
from bot.jobs.pr_state import held_back, open_pulls
from bot.reference import name_of, parse

if TYPE_CHECKING:
    from bot.github.pulls import Pull
    from bot.jobs import Context
    from bot.jobs.inventory import Inventory
    from bot.jobs.journal import Journal

__all__ = [
    "PERMISSIONS",
    "TITLE",
    "State",
    "ignore",
    "parse_state",
    "read_state",
    "record",
    "recorded",
    "render",
    "unignore",
    "update",
    "what",
    "write",
]

log = logging.getLogger(__name__)

TITLE = "Pullable: image health"
PERMISSIONS = {"issues": "write", "pull_requests": "read", "metadata": "read"}
ROWS_LIMIT = 200
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65,536 characters

_WHAT = {
    "tag-missing": "The tag is gone from its registry and no rule knows a replacement: pick one that exists.",
    "repo-missing": "The repository does not exist on its registry: the image moved or was deleted.",
    "digest-missing": "The pinned digest is gone from its registry: pin a digest that exists.",
    "invalid": "Not a valid image reference: Docker would refuse it.",
    "auth-required": "Anonymous pulls are refused: a private image (give Pullable credentials) or a "
    "missing one.",
    "auth-failed": "The registry refused the credentials Pullable was given.",
    "forbidden": "The registry denies access to this repository.",
    "rate-limited": "The registry rate-limited Pullable; it will ask again at the next scan.",
    "unreachable": "The registry could not be reached; Pullable will ask again at the next scan.",
    "blocked": "Pullable does not contact this host (a private or reserved address).",
}
_PROBLEM = frozenset(_WHAT)


# ------------------------------------------------------------------------------------ inventory
def _key(repo: str) -> str:
    return f"dashboard:{repo.lower()}"


def recorded(journal: Journal, repo: str) -> dict[str, Any] | None:
    """The last inventory the dashboard was rendered from: ``{"sha", "ref", "full", "paths",
    "findings": [Finding.to_json()...], "errors": [{"path", "message"}], "config_error",
    "skipped_branches", "scanned_at"}``."""
    return journal.store.get_doc(_key(repo))


def record(journal: Journal, inv: Inventory, skipped_branches: Sequence[str] = ()) -> dict[str, Any]:
    """Store the inventory of ``inv``. A partial scan (a push) reports the errors of its own
    paths; errors of files it did not read are kept from the previous inventory."""
    scanned = None if inv.paths is None else set(inv.paths)
    mine = [e for e in inv.errors if scanned is None or e.path in scanned]
    errors = [{"path": e.path, "message": e.message} for e in mine]
    old = recorded(journal, inv.repo)
    if scanned is not None and old is not None:
        errors = [e for e in old.get("errors", []) if e["path"] not in scanned] + errors
    doc = {
        "sha": inv.sha,
        "ref": inv.ref,
        "full": inv.full,
        "paths": None if inv.paths is None else list(inv.paths),
        "findings": [f.to_json() for f in inv.findings],
        "errors": sorted(errors, key=lambda e: (e["path"], e["message"])),
        "config_error": inv.config_error,
        "skipped_branches": sorted(skipped_branches),
        "scanned_at": time.time(),
    }
    journal.store.put_doc(_key(inv.repo), doc)
    return doc


# ------------------------------------------------------------------------------------ rendering
def _where(f: Mapping[str, Any]) -> str:
    return code(f"{f['path']}:{f['line']}", in_table=True)


def what(f: Mapping[str, Any], in_table: bool = True) -> str:
    """What a person can do about a finding (escaped for a table cell, or for a line of text)."""
    text = cell if in_table else line
    fix = f.get("fix") or {}
    if fix.get("edits"):
        return f"Pull request proposes {code(fix.get('after') or '', in_table=in_table)}"
    advice = f.get("advice") or fix.get("advice")
    if advice:
        return text(advice)
    return text(_WHAT.get(f["status"], ""))


def attention(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Findings a person should see: a rule fired, or the registry gave a bad answer."""
    return [f for f in findings if f.get("rule") or f.get("status") in _PROBLEM]


def render(
    doc: Mapping[str, Any] | None,
    ignored: AbstractSet[str],
    pulls: Sequence[Pull] = (),
) -> str:
    """The dashboard body: deterministic for the same inputs, so "nothing changed" is "same text"."""
    out = [
        "Pullable checks every container image reference in this repository against its registry. "
        "This issue lists what needs a person: references it cannot fix on its own, configuration "
        "and scan problems, its open pull requests and what you told it to ignore. Pullable edits "
        "this issue after every scan; the hidden marker at the end holds the ignore list.",
        "",
    ]
    if doc is None:
        out += ["_No scan has finished yet._", ""]
        findings: list[Mapping[str, Any]] = []
    else:
        findings = list(doc.get("findings") or [])
        short = str(doc.get("sha") or "")[:12]
        out += [f"Last scan: {code(str(doc.get('ref') or 'default branch'))} at {code(short)}.", ""]
    matcher = State(ignored=frozenset(ignored))
    shown = [f for f in findings if not matcher.ignores(f.get("reference"))]
    hidden = [f for f in findings if matcher.ignores(f.get("reference"))]

    if doc is not None and doc.get("config_error"):
        problem = cell(doc["config_error"], 500)
        out += ["## Configuration", "", f"Pullable cannot use `.github/pullable.yml`: {problem}", "",
                "Until it is fixed, Pullable opens no pull requests here.", ""]  # fmt: skip

    rows = sorted(attention(shown), key=lambda f: (f["path"], f["line"], f["column"]))
    out += [f"## Needs attention ({len(rows)})", ""]
    if rows:
        out += ["| Where | Image | Registry says | Rule | What to do |", "| --- | --- | --- | --- | --- |"]
        for f in rows[:ROWS_LIMIT]:
            rule = code(f["rule"], in_table=True) if f.get("rule") else ""
            out.append(
                f"| {_where(f)} | {code(f.get('text') or '', in_table=True)} | {cell(f['status'])} "
                f"| {rule} | {what(f)} |"
            )
        if len(rows) > ROWS_LIMIT:
            out.append(f"\n_…and {len(rows) - ROWS_LIMIT} more._")
    else:
        out.append("Every image reference Pullable could check resolves. :tada:" if doc else "_Nothing yet._")
    out.append("")

    skipped = [f for f in shown if f.get("skip") and f.get("skip") != "invalid-reference"]
    if skipped:
        out += [
            f"<details><summary>Not checked ({len(skipped)}): templated or variable references</summary>",
            "",
        ]
        out += [f"- {_where(f)} {code(f.get('text') or '')}: {cell(f['skip'])}" for f in skipped[:ROWS_LIMIT]]
        out += ["", "</details>", ""]

    errors = list((doc or {}).get("errors") or [])
    if errors:
        out += [f"## Files that could not be scanned ({len(errors)})", ""]
        out += [f"- {code(e['path'])}: {cell(e['message'])}" for e in errors[:ROWS_LIMIT]]
        out.append("")

    taken = list((doc or {}).get("skipped_branches") or [])
    if taken:
        out += [f"## Branches Pullable cannot use ({len(taken)})", ""]
        out += [
            f"- {code(b)} holds commits Pullable did not make, so it opens no pull request for "
            "these changes. Merge or close the work on it, then delete the branch: the next scan "
            "proposes them again."
            for b in taken[:ROWS_LIMIT]
        ]
        out.append("")

    out += [f"## Open pull requests ({len(pulls)})", ""]
    for p in sorted(pulls, key=lambda p: p.number):
        line = f"- #{p.number} {cell(p.title)} ({code(p.head)})"
        kept = held_back(p, (e["path"] for e in errors))
        if kept:
            files = ", ".join(code(f) for f in kept[:5])
            line += f": kept as it is until {files} can be scanned again"
        out.append(line)
    if not pulls:
        out.append("_None._")
    out.append("")

    out += [f"## Ignored ({len(ignored)})", ""]
    for name in sorted(ignored):
        n = sum(1 for f in hidden if name_of(f.get("reference")) == name)
        short = parse(name).familiar_name()
        out.append(
            f"- {code(name)}, every tag ({n} reference{'s' if n != 1 else ''}): undo with "
            f"{code('/pullable unignore ' + short)}"
        )
    if not ignored:
        out.append(f"_Nothing. Comment {code('/pullable ignore <image>')} to stop changes to an image._")
    out.append("")
    out.append(f"Comment {code('/pullable help')} on any issue or pull request for the commands.")
    text = "\n".join(out)
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + "\n\n_…cut to fit GitHub's size limit._"
    # The marker goes last and is never cut: it is the state.
    return f"{text}\n\n{marker(MARKER_NAME, {'v': 1, 'ignored': sorted(ignored)})}\n"


# ------------------------------------------------------------------------------------ writing
def update(session: Session, doc: Mapping[str, Any] | None, state: State, ignored: AbstractSet[str]) -> State:
    """Write the dashboard for ``doc`` with ``ignored``: create it when there is something to say,
    edit it when its text changed, nothing otherwise. Returns the state now on GitHub."""
    pulls = open_pulls(session)
    body = render(doc, ignored, pulls)
    if state.issue_number is None:
        worth = ignored or pulls or (doc and (attention(doc.get("findings") or []) or doc.get("errors")
                                               or doc.get("config_error")
                                               or doc.get("skipped_branches")))  # fmt: skip
        if not worth:
            return state
        made = issues.create_issue(session, TITLE, body)
        return State(int(made["number"]), frozenset(ignored), body, True)
    if body == state.body:
        return state
    issues.edit_issue(session, state.issue_number, body=body)
    return State(state.issue_number, frozenset(ignored), body, state.open)


def ignore(session: Session, journal: Journal, name: str) -> bool:
    """Add ``name`` to the ignore list; False when it was already there."""
    state = read_state(session)
    if name in state.ignored:
        return False
    update(session, recorded(journal, session.full_name), state, state.ignored | {name})
    return True


def unignore(session: Session, journal: Journal, name: str) -> bool:
    """Remove ``name`` from the ignore list; False when it was not there."""
    state = read_state(session)
    if name not in state.ignored:
        return False
    update(session, recorded(journal, session.full_name), state, state.ignored - {name})
    return True


def write(inv: Inventory, skipped_branches: Sequence[str], ctx: Context) -> None:
    """The dashboard's step of the scan job: record the inventory (with the branches the PR
    writer could not use), then bring the issue up to date."""
    doc = record(ctx.queue.journal, inv, skipped_branches)
    session = github.session(ctx.queue.settings, inv.installation_id, inv.repo, PERMISSIONS)
    try:
        state = read_state(session)
        update(session, doc, state, state.ignored)
    finally:
        session.close()
