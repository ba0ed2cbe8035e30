"""The "Pullable" check run on pull requests (issue 6 §5).

For a pull request whose branch lives in the repository itself: the files it changes are read at
its head commit through the API (never checked out), their references resolved on their registries
and run through the rules, and every reference that will not pull or that a rule would replace
becomes an annotation on its line, whether the PR adds that line or only keeps it in a file it
touches. The conclusion is ``success`` when nothing is rotten, otherwise ``neutral`` (the
default: a heads-up, never a blocked merge) or ``failure`` with ``check: strict``. References the
registry could not judge (auth-required, unreachable...) are notices and never fail the check.

The repository's config is read from the *base* branch, so a pull request cannot relax the check
it is judged by. Images ignored with ``/pullable ignore`` are not reported.

**Forks are skipped** (no check run at all): reading a fork's files means running our parsers on
content nobody with write access has looked at, and a check on a fork's head would be written
with a token of the base repository. Pullable never checks out, reads or pushes to fork heads.

Checks run as a ``check`` job per repository; a burst of ``synchronize`` events coalesces into one
job that checks each pull request's latest head.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot import github, repoconfig
from bot.github import GitHubError, Session
from bot.github import checks as gh_checks
from bot.github.markdown import strip
from bot.jobs import inventory
from bot.jobs.extends import config_fetcher
from bot.jobs.ignores import read_state
from bot.jobs.reader import scan_repository
from bot.model import Finding, Status
from bot.report import ERROR, NOTE_RULES

if TYPE_CHECKING:
    from bot.jobs import Context
    from bot.jobs.journal import Job
    from bot.settings import Settings

__all__ = ["NAME", "PERMISSIONS", "Result", "check_job", "check_pull", "evaluate_pull", "rotten"]

log = logging.getLogger(__name__)

NAME = "Pullable"
PERMISSIONS = {
    "checks": "write",
    "contents": "read",
    "pull_requests": "read",
    "issues": "read",
    "metadata": "read",
}
UNJUDGED = frozenset({Status.AUTH_REQUIRED, Status.AUTH_FAILED, Status.FORBIDDEN, Status.RATE_LIMITED,
                      Status.UNREACHABLE, Status.BLOCKED})  # fmt: skip


def rotten(f: Finding) -> bool:
    """Will not pull (tag, repository or digest gone, invalid), or a rule would replace it."""
    return f.status in ERROR or (f.rule is not None and f.rule not in NOTE_RULES)


@dataclass
class Result:
    """What a pull request's check found (explain replies and the check run both read it)."""

    findings: list[Finding] = field(default_factory=list)  # in the changed files, not ignored
    files: list[str] = field(default_factory=list)
    config_error: str | None = None
    strict: bool = False

    @property
    def rotten(self) -> list[Finding]:
        return [f for f in self.findings if rotten(f)]

    @property
    def conclusion(self) -> str:
        if not self.rotten:
            return "success"
        return "failure" if self.strict else "neutral"


class ContentsReader:
    """Files of one branch read through the contents API, one call each: enough for
    :func:`bot.repoconfig.read`, without listing the branch's tree."""

    def __init__(self, session: Session, ref: str) -> None:
        self.session, self.ref = session, ref
        self._read: dict[str, bytes | None] = {}

    def read_bytes(self, path: str) -> bytes | None:
        if path not in self._read:
            self._read[path] = self._fetch(path)
        return self._read[path]

    def _fetch(self, path: str) -> bytes | None:
        try:
            data = self.session.get_json(f"contents/{path}", {"ref": self.ref})
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        try:
            return base64.b64decode(data.get("content") or "")
        except binascii.Error:
            return None

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        try:
            return None if data is None else data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _config(settings: Settings, session: Session, ref: str) -> tuple[repoconfig.RepoConfig, str | None]:
    """``.github/pullable.yml`` at ``ref``, with its ``_extends`` base (defaults when absent;
    defaults and the error when broken)."""
    try:
        table = inventory.rule_table(settings)
        return repoconfig.read(ContentsReader(session, ref), table, fetch=config_fetcher(session)), None
    except repoconfig.ConfigError as exc:
        return repoconfig.RepoConfig(), str(exc)


def evaluate_pull(settings: Settings, session: Session, number: int, head_sha: str, base: str) -> Result:
    """Findings in the files pull request ``number`` changes, read at ``head_sha``."""
    files = sorted(
        {f["filename"] for f in gh_checks.pull_files(session, number) if f.get("status") != "removed"}
    )
    config, problem = _config(settings, session, base)
    if not files:
        return Result([], [], problem, config.check == "strict")
    scanned = scan_repository(session, ref=head_sha, paths=files)
    # pull secrets are judged over the whole repository at the head, scanned only when needed
    whole = lambda: scan_repository(session, ref=head_sha).facts  # noqa: E731
    found = inventory.evaluate(settings, scanned.refs, config, facts=whole, repo=session.full_name)
    ignores = read_state(session)
    kept = [f for f in found if f.ref.path in files and not ignores.ignores(f.ref.reference)]
    return Result(kept, files, problem, config.check == "strict")


def _annotation(f: Finding, strict: bool) -> dict[str, Any]:
    advice = f.advice or (f.fix.advice if f.fix else None)
    if f.fix is not None and f.fix.edits:
        message = f"Pullable would replace it with {f.fix.after} ({f.fix.rule}): {f.fix.why}"
    elif advice:
        message = advice
    else:
        message = {
            Status.TAG_MISSING: "The tag does not exist on its registry: this image will not pull.",
            Status.REPO_MISSING: "The repository does not exist on its registry: this image will not pull.",
            Status.DIGEST_MISSING: "The pinned digest does not exist on its registry.",
            Status.INVALID: f"Not a valid image reference: {f.ref.detail or 'Docker refuses it'}.",
        }.get(f.status, f"The registry said: {f.status}.")
    level = ("failure" if strict else "warning") if rotten(f) else "notice"
    return {
        "path": f.ref.path,
        "start_line": f.ref.line,
        "end_line": f.ref.line,
        "annotation_level": level,
        "title": strip(f"{f.ref.text}: {f.status}")[:255],
        "message": strip(message)[:4000],
    }


def check_pull(settings: Settings, session: Session, number: int, head_sha: str, base: str) -> Result:
    """Run the check for one pull request and report it as the "Pullable" check run."""
    run = gh_checks.start(session, head_sha, NAME, external_id=f"pr-{number}")
    result = evaluate_pull(settings, session, number, head_sha, base)
    shown = [f for f in result.findings if rotten(f) or f.status in UNJUDGED]
    shown.sort(key=lambda f: (not rotten(f), f.ref.path, f.ref.line, f.ref.column))
    annotations = [_annotation(f, result.strict) for f in shown]
    bad = len(result.rotten)
    if bad:
        title = f"{bad} image reference{'s' if bad != 1 else ''} will not pull or should be replaced"
    else:
        title = "Every image reference in the changed files resolves"
    lines = [
        f"Pullable checked {len(result.files)} changed file(s) at `{head_sha[:12]}`: "
        f"{len(result.findings)} image reference(s), {bad} rotten.",
    ]
    if bad and not result.strict:
        lines.append(
            "This check is neutral by default; set `check: strict` in `.github/pullable.yml` to fail it."
        )
    if result.config_error:
        lines.append(
            f"The configuration on the base branch is broken, defaults used: {strip(result.config_error)}"
        )
    gh_checks.complete(
        session,
        int(run["id"]),
        conclusion=result.conclusion,
        title=title,
        summary="\n\n".join(lines),
        annotations=annotations,
    )
    return result


def check_job(job: Job, ctx: Context) -> None:
    """The ``check`` job (:func:`bot.jobs.requests.check`): each pull request's latest head."""
    p = job.payload
    session = github.session(ctx.queue.settings, int(p["installation_id"]), p["repo"], PERMISSIONS)
    try:
        for number, pr in sorted(p["pulls"].items(), key=lambda kv: int(kv[0])):
            check_pull(ctx.queue.settings, session, int(number), pr["sha"], pr["base"])
    finally:
        session.close()
