"""Commands in issue and pull request comments (issue 6 §3): ``/pullable rescan|ignore|unignore|
explain|help``.

Two steps. The webhook handler decides from the signed payload alone, without any API call,
whether a comment is a command at all: ``created`` only (an edit cannot turn an old comment into a
command), strict grammar (:mod:`bot.jobs.commands`), never from a bot (Pullable included), never
older than an hour (a replayed capture). Only then is a ``command`` job queued for the repository,
so it runs after (never beside) a scan or the PR writer of the same repository, which keeps the
dashboard's ignore list free of lost updates.

Commands cost the installation's rate limit, so they are rate-limited per author and repository
before any API call (W21), in the journal's store (shared by every process): at most
:data:`MEMBER_LIMIT` commands in :data:`WINDOW` seconds from an author the payload calls an
owner, member or collaborator, :data:`OTHER_LIMIT` from anyone else (``author_association`` never
authorises, see :mod:`bot.github.permissions`; it only picks the budget). The first command over
the budget is answered once ("too many"), later ones are dropped without a word. An author
Pullable has refused is not asked about again for :data:`REFUSED_QUIET` seconds: their later
commands cost no API call and no reply.

The job asks GitHub what the author may do (:func:`bot.github.permissions.authorise`: write,
maintain or admin; failures refuse) before anything else, so a refusal costs a token, one
permission call and one reply; an authorised command gets eyes (receipt), runs, and is answered
with the outcome. Owner, repository and installation come from the signed
payload. Replies quote no user text: only normalised image names, Pullable's own words and
escaped findings. A redelivered command is answered once: the reply carries a hidden marker with
the comment's id, and a reply already there ends the job (reactions are idempotent at GitHub).
The first token of a job can only read metadata and write issues; a wider one is minted only
after the author is authorised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot import github
from bot.github import Session, issues, permissions, pulls
from bot.github.markdown import code, line, marker, markers
from bot.jobs import Context, checks, commands, dashboard, publish, requests
from bot.jobs.journal import Job
from bot.jobs.router import Event, Router
from bot.reference import name_of, parse

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

KIND = requests.COMMAND
CONVERSE = {"issues": "write", "pull_requests": "read", "metadata": "read"}
RELEASE = {"pull_requests": "write", "metadata": "read"}
REPLY_MARKER = "reply"
EXPLAIN_LIMIT = 100
WINDOW = 600.0  # seconds over which commands of one author on one repository are counted
MEMBER_LIMIT = 10
OTHER_LIMIT = 2
MEMBERS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
REFUSED_QUIET = 3600.0  # an author refused here is not asked about (nor answered) again for this long
THROTTLED = "throttled"  # the verb of the one job that answers "too many"

router = Router()


@router.register("issue_comment", action="created")
def on_comment(event: Event, ctx: Context) -> None:
    p = event.payload
    comment, issue = p.get("comment") or {}, p.get("issue") or {}
    if commands.is_bot(comment.get("user")) or commands.is_bot(p.get("sender")):
        return
    cmd = commands.parse_comment(comment.get("body"))
    if cmd is None:
        return
    if not commands.is_fresh(comment.get("created_at")):
        log.info("%s: command in comment %s is older than an hour: ignored", event.repo, comment.get("id"))
        return
    if event.installation_id is None or not event.repo or not issue.get("number") or not comment.get("id"):
        return
    login = str(comment["user"]["login"])
    if refused(ctx, event.repo, login) is not None:
        log.info("%s: command from %s, refused lately: ignored", event.repo, login)
        return
    limit = MEMBER_LIMIT if comment.get("author_association") in MEMBERS else OTHER_LIMIT
    n = ctx.queue.journal.count(f"commands:{event.repo.lower()}:{login.lower()}", WINDOW, cap=limit + 1)
    if n > limit + 1:
        log.info("%s: more than %d commands from %s in %.0f s: ignored", event.repo, limit, login, WINDOW)
        return
    if n == limit + 1:
        cmd = commands.Command(THROTTLED)
    requests.command(
        ctx, event.installation_id, event.repo, cmd, number=int(issue["number"]),
        pull="pull_request" in issue, comment_id=int(comment["id"]), created_at=comment["created_at"],
        login=login,
    )  # fmt: skip


def refused(ctx: Context, repo: str, login: str) -> dict[str, Any] | None:
    """The record of Pullable's last refusal of ``login`` on ``repo``, while it lasts."""
    return ctx.queue.journal.recall(f"refused:{repo.lower()}:{login.lower()}")


def command_job(job: Job, ctx: Context) -> None:
    """The ``command`` job: authorise, react, run, reply (see the module docstring)."""
    p = job.payload
    settings = ctx.queue.settings
    earlier = refused(ctx, p["repo"], p["login"])
    if earlier is not None and earlier.get("comment_id") != p["comment_id"]:
        log.info("%s: command from %s, refused lately: not asked again", p["repo"], p["login"])
        return  # no API call at all
    session = github.session(settings, int(p["installation_id"]), p["repo"], CONVERSE)
    try:
        decision = permissions.authorise(session, p["login"])
        if not decision.allowed:
            log.info("%s: %s may not command Pullable (%s)", p["repo"], p["login"], decision.role)
            if decision.role not in ("error", "error 429") and not decision.role.startswith("error 5"):
                # GitHub's answer, not an outage of it: later commands need no question
                key = f"refused:{p['repo'].lower()}:{p['login'].lower()}"
                ctx.queue.journal.remember(key, {"comment_id": p["comment_id"]}, REFUSED_QUIET)
            if earlier is None or not answered(session, p["number"], p["comment_id"], p["created_at"]):
                reply(session, p, refusal())
            return
        issues.react(session, p["comment_id"], "eyes")
        if answered(session, p["number"], p["comment_id"], p["created_at"]):
            return
        if p["verb"] == THROTTLED:
            reply(session, p, throttled())
            return
        reply(session, p, run(settings, ctx, session, p))
    finally:
        session.close()


def answered(session: Session, number: int, comment_id: int, since: str) -> bool:
    """Whether Pullable already replied to this comment (a redelivery or a retried job)."""
    me = issues.bot_login(session)
    for c in issues.comments(session, number, since=since):
        if (c.get("user") or {}).get("login") != me:
            continue
        if any(m.get("to") == comment_id for m in markers(c.get("body"), REPLY_MARKER)):
            return True
    return False


def reply(session: Session, p: Mapping[str, Any], text: str) -> None:
    issues.comment(session, p["number"], f"{text}\n\n{marker(REPLY_MARKER, {'to': p['comment_id']})}")


def refusal() -> str:
    return (
        "Pullable only takes commands from people with write, maintain or admin access to this "
        "repository, and could not confirm that you have it. Nothing was done."
    )


def throttled() -> str:
    return (
        f"Pullable takes only a few commands in {WINDOW / 60:.0f} minutes from one person on one "
        "repository. This one and any more in that time are ignored; what is already queued still runs."
    )


def run(settings: Settings, ctx: Context, session: Session, p: Mapping[str, Any]) -> str:
    """Carry out an authorised command; the reply."""
    verb = p["verb"]
    if verb == "help":
        return commands.HELP
    if verb == "rescan":
        return rescan(ctx, session, p)
    if verb == "explain":
        return explain(settings, ctx, session, p)
    name = name_of(p.get("image"))
    if verb in ("ignore", "unignore") and name is not None:
        short = parse(name).familiar_name()
        if verb == "ignore":
            return ignore(ctx, session, p, name, short)
        return unignore(settings, ctx, session, p, name)
    return "Pullable did not recognise that command.\n\n" + commands.HELP


def _scan(ctx: Context, p: Mapping[str, Any], why: str) -> bool:
    """Queue a full scan of the default branch; True when it joined one already waiting."""
    job = requests.scan(ctx, int(p["installation_id"]), p["repo"], f"{why} (comment {p['comment_id']})")
    return len(job.payload.get("reasons", [])) > 1


def rescan(ctx: Context, session: Session, p: Mapping[str, Any]) -> str:
    joined = _scan(ctx, p, "/pullable rescan")
    text = (
        "A rescan of the default branch was already waiting; this request joined it."
        if joined
        else "Rescan queued: Pullable will scan the default branch again now."
    )
    text += " Its pull requests and the dashboard issue follow the result."
    if p.get("pull"):
        pr = pulls.get(session, p["number"])
        if pr.state == "open" and pr.same_repo:
            inst = int(p["installation_id"])
            requests.check(ctx, inst, p["repo"], number=pr.number, head_sha=pr.head_sha, base=pr.base)
            text += " The check of this pull request runs again too."
        elif not pr.same_repo:
            text += " This pull request comes from a fork: Pullable does not read or check its branch."
    return text


def ignore(ctx: Context, session: Session, p: Mapping[str, Any], name: str, short: str) -> str:
    added = dashboard.ignore(session, ctx.queue.journal, name)
    if not added:
        return f"{code(name)} is already ignored. Undo with {code('/pullable unignore ' + short)}."
    _scan(ctx, p, "/pullable ignore")
    return (
        f"Ignored {code(name)}, every tag and digest of it: Pullable will not propose changes to it "
        "or list it as a problem. A rescan is queued so its pull requests and the dashboard follow. "
        f"Undo with {code('/pullable unignore ' + short)}."
    )


def unignore(settings: Settings, ctx: Context, session: Session, p: Mapping[str, Any], name: str) -> str:
    removed = dashboard.unignore(session, ctx.queue.journal, name)
    writer = github.session(settings, int(p["installation_id"]), p["repo"], RELEASE)
    try:
        released = publish.unignore(writer, name)
    finally:
        writer.close()
    if not removed and not released:
        return (
            f"{code(name)} was not ignored, and no pull request about it was closed without merging. "
            "Nothing changed."
        )
    parts = []
    if removed:
        parts.append(f"{code(name)} is no longer ignored")
    if released:
        parts.append(
            f"changes to it in {released} pull request{'s' if released != 1 else ''} closed without "
            "merging may be proposed again"
        )
    _scan(ctx, p, "/pullable unignore")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + ". A rescan is queued."


def explain(settings: Settings, ctx: Context, session: Session, p: Mapping[str, Any]) -> str:
    """The findings and reasons for the repository, or for a pull request: the lines it changes."""
    if p.get("pull"):
        pr = pulls.get(session, p["number"])
        if pr.same_repo:
            reader = github.session(settings, int(p["installation_id"]), p["repo"], checks.PERMISSIONS)
            try:
                result = checks.evaluate_pull(settings, reader, pr.number, pr.head_sha, pr.base)
            finally:
                reader.close()
            found = [f.to_json() for f in result.findings]
            head = (
                f"In the {len(result.files)} file(s) this pull request changes, at {code(pr.head_sha[:12])}, "
                f"Pullable found {len(found)} image reference(s)."
            )
            return head + "\n\n" + _listing(found)
        prefix = "This pull request comes from a fork, so Pullable does not read its branch. "
    else:
        prefix = ""
    doc = dashboard.recorded(ctx.queue.journal, p["repo"])
    if doc is None:
        _scan(ctx, p, "/pullable explain")
        return (
            prefix
            + "Pullable has not scanned this repository yet; a scan is queued. Ask again when it is done."
        )
    state = dashboard.read_state(session)
    found = [f for f in doc.get("findings") or [] if not state.ignores(f.get("reference"))]
    head = (
        f"{prefix}At {code(str(doc.get('sha') or '')[:12])} on the default branch, Pullable found "
        f"{len(found)} image reference(s)"
        + (f" ({len(state.ignored)} image(s) ignored)." if state.ignored else ".")
    )
    return head + "\n\n" + _listing(found, doc.get("config_error"))


def _listing(found: Sequence[Mapping[str, Any]], config_error: str | None = None) -> str:
    lines = []
    if config_error:
        lines.append(f"- `.github/pullable.yml` cannot be used: {line(config_error)}")
    bad = sorted(dashboard.attention(found), key=lambda f: (f["path"], f["line"], f["column"]))
    for f in bad[:EXPLAIN_LIMIT]:
        rule = f", rule {code(f['rule'])}" if f.get("rule") else ""
        lines.append(
            f"- {code(f['path'] + ':' + str(f['line']))} {code(f.get('text') or '')}: "
            f"{line(f['status'])}{rule}. {dashboard.what(f, in_table=False)}"
        )
    if len(bad) > EXPLAIN_LIMIT:
        lines.append(f"- …and {len(bad) - EXPLAIN_LIMIT} more (see the dashboard issue).")
    fine = len(found) - len(bad)
    if fine:
        lines.append(
            f"- {fine} other reference(s) resolve or could not be checked (templated), and need nothing."
        )
    return "\n".join(lines) if lines else "Nothing to report."
