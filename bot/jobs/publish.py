"""Opening, keeping and retiring Pullable's pull requests (issue 6 §1, §2).

The second step of every scan of a default branch: :func:`bot.jobs.scan_repo.scan_job` calls
:func:`write` with the repository's whole :class:`~bot.jobs.inventory.Inventory`. One branch per
change group, ``pullable/<rule>`` (or ``pullable/all`` with ``group: all``), rebuilt from the
current base when its change set or the content of one of its files would change: a tree with
the new file contents, one verified commit, the branch force-moved, the PR edited in place. A
push to the base that touches none of a PR's files leaves its branch alone (it cannot conflict,
and a new commit would only re-run its CI: Renovate's default, ``rebaseWhen: conflicted``).

**GitHub's calls** (issue 14 §4; ``bench/github_calls.py``): per run, the pull requests are
listed once (one page of every state for most repositories), the labels once (and only when a
PR lacks one; none is POSTed that exists), and new commits build on the scan's own tree; a
new PR then costs its tree, commit, branch, PR and labels.

The bot is stateless; its memory is GitHub's: each PR body ends with a hidden marker
(:class:`bot.jobs.pr_state.PrState`) holding the change set (one item per reference: path, old
reference, target, image name), its fingerprint, the base and head commits it was built from,
and flags.

- **Duplicates.** Branch names are deterministic, GitHub refuses a second open PR for a head,
  the journal runs one job per repository, a creation retried after a lost answer resolves to
  the PR that exists, and every other step converges when repeated. A notice comment (closing,
  "no" acknowledged, someone else committed) carries a hidden key and is not said again when a
  comment of ours holds it (a retry between the comment and the body edit recording it).
- **Human commits.** The marker's ``head`` is the last commit Pullable pushed. When the branch
  moved elsewhere, the commits on it are checked: any not authored by the App means a person is
  working there, so the PR is left alone (said once, in a comment). A ``pullable/<group>``
  branch that exists without an open PR (made by hand, or a closed PR's branch someone committed
  to) is only reused when its commits beyond the base are all the App's; otherwise no PR is
  opened for the group (logged, ``Report.skipped``, listed on the dashboard) until the branch
  is deleted.
- **Cleaning up.** On full scans (scheduled, on install, and the one a closed Pullable PR
  triggers), branches ``pullable/*`` without an open PR whose newest PR was merged (or closed
  and acknowledged, or retired) are deleted while they still point at the commit Pullable
  pushed last (:func:`_sweep`; one ETag-revalidated listing, free when nothing changed).
- **"No".** A PR closed without merging blocks its items (not the whole group): they are not
  proposed again until ``/pullable unignore <image>`` (:func:`unignore`) marks them released
  in that closed PR's marker. PRs Pullable closes itself are marked ``retired`` and block
  nothing.
- **No longer needed.** An open PR whose group has nothing left to propose is closed with a
  comment and its branch deleted, unless a registry could not be asked about one of its
  references this time (an outage must not look like a fix).
- **Outages.** Likewise an open PR is neither rebuilt nor shrunk while a registry could not be
  asked (unreachable, rate limited, unchecked, refused) about one of the references it changes,
  or about its target (:attr:`bot.model.Finding.unsure`: the target's tags or manifest): rebuilding
  would drop that change. The whole PR is left untouched for that run (even when other changes
  of its group are new, or its base moved) and brought up to date by the next scan that gets
  an answer; a change is never re-proposed from the marker without a fresh check.
- **Files that cannot be scanned.** A file that stops parsing (or cannot be read) yields no
  references, which must not look like a fix either: an open PR holding a change to such a file
  is kept exactly as it is (not rebuilt, not retired) until the file scans again; the dashboard
  lists the file and says the PR is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot import pipeline
from bot.github import WRITE_PERMISSIONS, GitHubError, Session, git, issues, pulls
from bot.github.markdown import code
from bot.jobs import inventory, pr_body
from bot.jobs.ignores import read_state
from bot.jobs.pr_state import (
    PREFIX,
    PrState,
    blocked,
    branch_name,
    content_of,
    fingerprint,
    held_back,
    item,
    state_of,
    with_state,
)
from bot.jobs.writelock import installation_writes
from bot.model import Finding, Status
from bot.reference import name_of, parse

if TYPE_CHECKING:
    from bot.jobs import Context
    from bot.jobs.inventory import Inventory

__all__ = ["PERMISSIONS", "Report", "publish", "unignore", "write"]

log = logging.getLogger(__name__)

LABEL_DESCRIPTION = "Pull requests opened by Pullable"
UNCERTAIN = frozenset({Status.UNREACHABLE, Status.RATE_LIMITED, Status.UNCHECKED})
# What the writer's token may do, no more (:data:`bot.github.WRITE_PERMISSIONS`: commits and
# branches, pull requests, their comments and labels). Check runs are another job's business.
# ``workflows`` only for the writes of a change set that edits a workflow file (:func:`_writer`).
# It is a second token beside the scan's read-only one on purpose: the scan never holds a token
# that could write, and this one is minted only under the installation's write lock.
PERMISSIONS = dict(WRITE_PERMISSIONS)
WORKFLOWS = ".github/workflows/"


# ------------------------------------------------------------------------------------ the hook
@dataclass
class Report:
    """What one run did, per branch (tests, logs and the benchmark read it)."""

    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)  # a person committed to the branch
    held: list[int] = field(default_factory=list)  # kept as they are: see :func:`held_back`
    skipped: list[str] = field(default_factory=list)  # branches holding a person's commits, no PR
    deleted: list[str] = field(default_factory=list)  # branches of merged or closed PRs cleaned up
    blocked: dict[str, int] = field(default_factory=dict)  # branch -> items held back by a "no"


def write(inv: Inventory, ctx: Context) -> Report:
    """The PR writer's step of the scan job: publish for a repository with a usable config."""
    if inv.config_error is not None:
        log.info("%s: not publishing: %s", inv.repo, inv.config_error)
        return Report()
    settings = ctx.queue.settings
    with installation_writes(settings, inv.installation_id):
        session = inventory.session(settings, inv.installation_id, inv.repo, PERMISSIONS)
        try:
            report = publish(session, inv)
        finally:
            session.close()
    log.info("%s: pull requests %s", inv.repo, report)
    return report


class _Known:
    """What one run reads once and asks again of no group: the pull requests (one page of every
    state when the repository has fewer than a page of them; otherwise the open ones, and the
    closed ones per branch when needed) and the repository's labels (listed at the first PR that
    lacks one, then kept up to date as labels are made)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        every, whole = pulls.recent(session)
        self.every: list[pulls.Pull] | None = every if whole else None
        listed = [p for p in every if p.state == "open"] if whole else pulls.listing(session, "open")
        self.open = [p for p in listed if p.head.startswith(PREFIX)]
        self._closed: dict[str, list[pulls.Pull]] = {}
        self._labels: set[str] | None = None

    def closed(self, head: str) -> list[pulls.Pull]:
        """Closed PRs from branch ``head``, newest first."""
        if self.every is not None:
            return [p for p in self.every if p.state == "closed" and p.head == head]
        if head not in self._closed:
            self._closed[head] = pulls.listing(self.session, "closed", head=head)
        return self._closed[head]

    def ensure_labels(self, names: list[str]) -> None:
        if self._labels is None:
            self._labels = pulls.labels(self.session)
        pulls.ensure_labels(self.session, names, LABEL_DESCRIPTION, self._labels)


def publish(session: Session, inv: Inventory) -> Report:
    """Bring the repository's Pullable PRs in line with ``inv`` (see the module docstring)."""
    report = Report()
    ignores = read_state(session)
    findings = [f for f in inv.findings if not ignores.ignores(f.ref.reference)]
    grouped = pipeline.groups(findings, inv.config.group)
    known = _Known(session)
    open_prs = {p.head: p for p in known.open if p.base == inv.ref}
    done: set[str] = set()
    for group, members in sorted(grouped.items()):
        name = branch_name(group)
        done.add(name)
        closed = [p for p in known.closed(name) if not p.merged]
        no = blocked(closed)
        for pr in closed:
            _acknowledge_no(session, pr, name in open_prs)
        wanted = [f for f in members if item(f).key not in no]
        if len(wanted) < len(members):
            report.blocked[name] = len(members) - len(wanted)
        _write_group(session, known, inv, group, name, wanted, findings, open_prs.get(name), report)
    for name, pr in sorted(open_prs.items()):
        if name not in done:
            _retire(session, pr, inv, report)
    if inv.full:
        _sweep(session, known, done | set(open_prs), report)
    return report


def _sweep(session: Session, known: _Known, busy: set[str], report: Report) -> None:
    """Delete the branches of Pullable PRs that were merged, or closed and acknowledged, while
    they still point at the last commit Pullable pushed (a branch a person moved stays theirs;
    one GitHub deleted already is not listed)."""
    for b in git.branches(session, PREFIX):
        if b.name in busy:
            continue
        closed = known.closed(b.name)
        st = state_of(closed[0]) if closed else None  # the newest
        if st is None or not (closed[0].merged or st.noted or st.retired):
            continue  # made by hand, or a "no" not acknowledged yet
        if b.sha == closed[0].head_sha == st.head and git.delete_branch(session, b.name):
            report.deleted.append(b.name)


def _write_group(  # noqa: PLR0917 - one call site, every argument named there
    session: Session,
    known: _Known,
    inv: Inventory,
    group: str,
    name: str,
    wanted: list[Finding],
    findings: Sequence[Finding],
    pr: pulls.Pull | None,
    report: Report,
) -> None:
    if pr is not None and not _ours(session, pr, inv.sha):
        _leave(session, pr, report)
        return
    if pr is not None and _hold(pr, inv, report):
        return
    result = pipeline.apply(wanted, inv.reader, inv.refs) if wanted else pipeline.Result([])
    applied = [f for f in result.applied if f.fix is not None]
    if not applied or not result.files:
        if pr is not None:
            _retire(session, pr, inv, report)
        return
    items = sorted({item(f) for f in applied})
    rules = {f.fix.rule for f in applied if f.fix is not None}
    advice = [
        f for f in findings
        if f.advice and f not in applied and (group == "all" or f.rule in rules)
        and (f.fix is None or not f.fix.edits)
    ]  # fmt: skip
    table = inventory.rule_table()
    origins = {r.id: r.origin for r in table.rules}
    whys = {f.fix.rule: f.fix.why for f in applied if f.fix is not None}
    title = pr_body.title(applied, origins)
    content = content_of(result.files)
    state = PrState(group, fingerprint(items), inv.sha, tuple(items), content=content)
    old = state_of(pr) if pr is not None else None
    if (
        pr is not None and old is not None and old.fingerprint == state.fingerprint
        and old.head == pr.head_sha and pr.title == title
        and (old.base == inv.sha or old.content == content)
    ):  # fmt: skip
        # The same change, and its files read the same on the new base: the branch stays
        # where it is (no new commit, no CI re-run); it is rebuilt when one of its files moves.
        _labels(known, session, pr, inv.config.labels)
        report.unchanged.append(pr.number)
        return
    entries = inv.reader.entries
    modes = {p: entries[p].mode for p in result.files if p in entries}
    writer = _writer(session, result.files)
    try:
        commit = git.commit_files(
            writer, inv.sha, result.files, pr_body.commit_message(title, applied),
            base_tree=inv.tree, modes=modes,
        )  # fmt: skip
        state = state.but(head=commit)
        if pr is None:
            made = git.create_branch(writer, name, commit) or _claim(writer, name, commit, inv.sha)
        else:
            _move(writer, name, commit)
    finally:
        if writer is not session:
            writer.close()
    body = pr_body.body(applied, advice, whys, state)
    if pr is None:
        if not made:
            log.info("%s: branch %s holds someone else's commits: no pull request opened", inv.repo, name)
            report.skipped.append(name)
            return
        pr, created = pulls.create(session, name, inv.ref, title, body)
        if not created and (pr.title != title or pr.body != body):
            pr = pulls.edit(session, pr.number, title=title, body=body)
        _labels(known, session, pr, inv.config.labels)
        (report.opened if created else report.updated).append(pr.number)
        return
    pr = pulls.edit(session, pr.number, title=title, body=body)
    _labels(known, session, pr, inv.config.labels)
    report.updated.append(pr.number)


def _writer(session: Session, paths: Iterable[str]) -> Session:
    """``session``, or one whose token may also write workflow files when ``paths`` holds one
    (GitHub refuses an App's change to ``.github/workflows/`` without that permission)."""
    if not any(p.startswith(WORKFLOWS) for p in paths) or session.permissions.get("workflows") == "write":
        return session
    return type(session)(session.app, session.installation_id, session.full_name,
                         {**session.permissions, "workflows": "write"})  # fmt: skip


def _move(session: Session, name: str, commit: str) -> None:
    """Force-move the PR's branch; when the base moved past a change to a workflow file, the move
    itself changes that file on the branch, which needs the ``workflows`` permission too."""
    try:
        git.set_branch(session, name, commit, exists=True)
    except GitHubError as exc:
        if exc.status != 422 or "workflow" not in exc.message.lower():
            raise
        writer = _writer(session, [WORKFLOWS])
        if writer is session:
            raise
        try:
            git.set_branch(writer, name, commit, exists=True)
        finally:
            writer.close()


def _labels(known: _Known, session: Session, pr: pulls.Pull, labels: Sequence[str]) -> None:
    have = {x.lower() for x in pr.labels}
    missing = [x for x in labels if x.lower() not in have]
    if missing:
        known.ensure_labels(missing)
        pulls.add_labels(session, pr.number, missing)


# ------------------------------------------------------------------------------------ ownership


def _ours(session: Session, pr: pulls.Pull, base_sha: str) -> bool:
    """Whether the PR's branch holds only Pullable's commits (a person's commit -> False)."""
    st = state_of(pr)
    if st is None:
        return False
    if st.head == pr.head_sha:
        return True
    # Moved since Pullable last wrote it: by Pullable itself when a run stopped between moving
    # the branch and editing the body, or by a person.
    try:
        commits = git.commits_between(session, base_sha, pr.head_sha)
    except GitHubError as exc:
        if exc.status in (404, 422):
            return False
        raise
    me = issues.bot_login(session)
    return all(((c.get("author") or {}).get("login") == me) for c in commits)


def _claim(session: Session, name: str, commit: str, base_sha: str) -> bool:
    """Move an existing branch ``name`` that no open PR uses to ``commit``, only when every
    commit it has beyond the base is Pullable's (a lost answer to our own create, or a closed
    PR's leftover); a branch a person made or committed to is theirs: False, left as it is."""
    found = git.branch(session, name)
    if found is not None:
        try:
            commits = git.commits_between(session, base_sha, found.sha)
        except GitHubError as exc:
            if exc.status in (404, 422):
                return False
            raise
        me = issues.bot_login(session)
        if not all(((c.get("author") or {}).get("login") == me) for c in commits):
            return False
    git.set_branch(session, name, commit, exists=found is not None)
    return True


def _leave(session: Session, pr: pulls.Pull, report: Report) -> None:
    """A person committed to the branch: say so once, then stay away."""
    report.left.append(pr.number)
    st = state_of(pr) or PrState()
    if st.human:
        return
    issues.notice(
        session,
        pr.number,
        "Someone else committed to this branch, so Pullable will no longer update this pull "
        "request: your commits stay as they are. Merge or close it as you see fit; close it "
        "and delete the branch to get a fresh proposal.",
        "human",
    )
    pulls.edit(session, pr.number, body=with_state(pr.body, st.but(human=True)))


def _retire(session: Session, pr: pulls.Pull, inv: Inventory, report: Report) -> None:
    """Close an open PR whose change is no longer needed, and delete its branch."""
    st = state_of(pr)
    if st is None:
        return  # not ours to close
    if not _ours(session, pr, inv.sha):
        _leave(session, pr, report)
        return
    if _hold(pr, inv, report):
        return
    issues.notice(
        session,
        pr.number,
        f"Pullable is closing this pull request: {code(inv.ref or pr.base)} no longer needs "
        "these changes (the references were changed, removed or resolve again).",
        "retired",
    )
    pulls.edit(session, pr.number, state="closed", body=with_state(pr.body, st.but(retired=True)))
    git.delete_branch(session, pr.head)
    report.closed.append(pr.number)


def _hold(pr: pulls.Pull, inv: Inventory, report: Report) -> bool:
    """Keep ``pr`` as it is when one of its files could not be scanned this time (its references
    vanished from the inventory, which is no sign they were fixed) or a registry could not be
    asked about one of its references (an outage is no sign either)."""
    files = held_back(pr, (e.path for e in inv.errors))
    now = {(f.ref.path, f.ref.reference or f.ref.text): f for f in inv.findings}
    st = state_of(pr)
    items = st.items if st is not None else ()
    unsure = [
        i for i in items if (f := now.get((i.path, i.reference))) and (f.status in UNCERTAIN or f.unsure)
    ]
    if not files and not unsure:
        return False
    why = [f"{', '.join(files)} could not be scanned"] if files else []
    why += [f"{len(unsure)} reference(s) not checked"] if unsure else []
    log.info("%s#%d: kept as it is: %s", inv.repo, pr.number, "; ".join(why))
    report.held.append(pr.number)
    return True


def _acknowledge_no(session: Session, pr: pulls.Pull, branch_in_use: bool) -> None:
    """Once per PR closed without merging: say the change will not come back and how to undo
    that, and delete its branch if it still holds only what Pullable put there."""
    st = state_of(pr)
    if st is None or st.retired or st.noted or pr.merged:
        return
    images = sorted({i.image for i in st.items})
    shown = ", ".join(code(i) for i in images[:5])
    example = code(f"/pullable unignore {_short(images[0]) if images else '<image>'}")
    issues.notice(
        session,
        pr.number,
        f"Understood: Pullable will not propose these changes ({shown}) again. To have them "
        f"proposed again, comment {example} on any issue or pull request of this repository.",
        "noted",
    )
    pulls.edit(session, pr.number, body=with_state(pr.body, st.but(noted=True)))
    if not branch_in_use and st.head == pr.head_sha:
        branch = git.branch(session, pr.head)
        if branch is not None and branch.sha == pr.head_sha:
            git.delete_branch(session, pr.head)


def _short(name: str) -> str:
    try:
        return parse(name).familiar_name()
    except ReferenceError:
        return name


def unignore(session: Session, image: str) -> int:
    """Release ``image`` (any spelling: ``bitnami/kubectl``, ``docker.io/bitnami/kubectl:1.31``)
    from every PR closed without merging, so its changes are proposed again on the next scan.
    Returns how many closed PRs held it."""
    name = name_of(image.strip()) or image.strip()
    count = 0
    for pr in pulls.listing(session, "closed"):
        st = state_of(pr)
        if not pr.head.startswith(PREFIX) or pr.merged or st is None or st.retired:
            continue
        hit = {i.image for i in st.items if name in (i.image, i.reference)} - st.released
        if not hit:
            continue
        pulls.edit(session, pr.number, body=with_state(pr.body, st.but(released=st.released | hit)))
        count += 1
    return count
