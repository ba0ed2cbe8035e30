"""The words of a Pullable pull request: title, commit message and body.

A reviewer decides from the description alone, so it carries what changes (file:line, before ->
after, rule), why (the rule's text), the evidence (what the registry answered about the old
reference; the new one's digest and when it was checked), what could not be fixed, and how to
talk to the bot. Everything quoted from files or registries goes through
:mod:`bot.github.markdown`; the hidden marker at the end is the PR's memory (see
:mod:`bot.jobs.pr_state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.github.markdown import cell, code, line, marker, sanitize, strip
from bot.jobs.pr_state import MARKER, PrState
from bot.model import Finding, Status
from bot.reference import ReferenceError, parse

TITLE_LIMIT = 200
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65,536 characters
ROWS_LIMIT = 200

_REASON = {
    Status.TAG_MISSING: "missing",
    Status.REPO_MISSING: "missing",
    Status.DIGEST_MISSING: "missing",
}
_SAID = {
    Status.OK: "resolves",
    Status.TAG_MISSING: "the tag does not exist",
    Status.REPO_MISSING: "the repository does not exist",
    Status.DIGEST_MISSING: "the digest does not exist",
    Status.AUTH_REQUIRED: "credentials are required",
    Status.AUTH_FAILED: "the credentials were refused",
    Status.FORBIDDEN: "access is forbidden",
    Status.RATE_LIMITED: "rate limited",
    Status.UNREACHABLE: "unreachable",
    Status.BLOCKED: "blocked by policy",
    Status.INVALID: "not a valid reference",
    Status.UNCHECKED: "not checked",
}

# Pullable's own codes for answers that never came (bot.registry.client): words, not "HTTP X"
_OUR_CODES = {
    "CONNECT": "no connection",
    "TIMEOUT": "timed out",
    "DEADLINE": "took too long",
    "JOB_DEADLINE": "the scan ran out of time",
    "TOO_LARGE": "answer too large",
    "ENCODING": "answer not readable",
    "BLOCKED": "refused by Pullable's network policy",
    "HOST_DOWN": "the registry did not answer earlier",
    "HOST_CAP": "request cap reached",
    "SCAN_CAP": "reference cap reached",
}

HELP = """\
Comment on this pull request with one of these, alone on its own line:

- `/pullable rescan`: check the repository again now.
- `/pullable explain`: list the findings behind this pull request and why.
- `/pullable ignore <image>`: never propose changes to that image (e.g. `/pullable ignore bitnami/kubectl`).
- `/pullable unignore <image>`: undo an ignore, and propose again changes closed without merging.
- `/pullable help`: this list.

Closing this pull request without merging tells Pullable not to propose this change again.
Pullable keeps this branch up to date while it holds only Pullable's commits; push a commit of
your own and it will leave the branch to you."""


def _familiar(reference: str | None, fallback: str) -> tuple[str, str]:
    """(familiar name, tag or short digest) of a normalised reference."""
    try:
        r = parse(reference or fallback)
    except ReferenceError:
        return strip(fallback), ""
    version = r.tag or (r.digest[:19] if r.digest else "")
    return r.familiar_name(), version


def _reason(f: Finding, origins: Mapping[str, str]) -> str:
    if "retired" in origins.get(f.fix.rule if f.fix else "", ""):
        return "retired "
    word = _REASON.get(f.status)
    return f"{word} " if word else ""


def title(findings: Sequence[Finding], origins: Mapping[str, str]) -> str:
    """ "Replace retired bitnami/kubectl with alpine/kubectl 1.33.4": what, and why in one word.

    A fix with no target adds configuration beside a reference instead of replacing it (a pull
    secret): the title names what is added and for which images, not a replacement."""
    if findings and all(f.fix is not None and f.fix.target is None for f in findings):
        names = sorted({_familiar(f.ref.reference, f.ref.text)[0] for f in findings})
        added = sorted({f.fix.after for f in findings if f.fix is not None})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        keys = sorted({a.split(":", 1)[0] for a in added})
        what = added[0] if len(added) == 1 else ", ".join(keys)
        text = " ".join(strip(f"Add {what} for {shown}").split())
        return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"
    pairs = {
        (_familiar(f.ref.reference, f.ref.text), _familiar(f.fix.target, f.fix.after))
        for f in findings
        if f.fix is not None
    }
    reasons = {_reason(f, origins) for f in findings}
    why = reasons.pop() if len(reasons) == 1 else ""
    moves = {(old[0], new) for old, new in pairs}
    if len(moves) == 1:
        (old_name, (new_name, new_version)) = moves.pop()
        if old_name != new_name:
            text = f"Replace {why}{old_name} with {new_name} {new_version}".rstrip()
        elif len(pairs) == 1:
            text = f"Update {why}{old_name}:{next(iter(pairs))[0][1]} to {new_version}"
        else:
            text = f"Update {why}{old_name} to {new_version}"
    else:
        names = sorted({p[0][0] for p in pairs})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        text = f"Replace {len(pairs)} {why}image references ({shown})"
    text = " ".join(strip(text).split())
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def commit_message(head: str, findings: Sequence[Finding]) -> str:
    lines = [head, ""]
    for f in sorted(findings, key=lambda f: f.ref.key):
        assert f.fix is not None
        where, before, after = line(f"{f.ref.path}:{f.ref.line}"), line(f.fix.before), line(f.fix.after)
        lines.append(f"- {where}: {before} -> {after} [{f.fix.rule}]")
    return "\n".join(lines[:ROWS_LIMIT]) + "\n"


def _evidence(f: Finding) -> str:
    e = f.evidence
    said = _SAID.get(f.status, str(f.status))
    if e is not None:
        parts = [f"HTTP {e.http_status}"] if e.http_status else []
        if e.error_code:
            parts.append(_OUR_CODES.get(e.error_code, sanitize(e.error_code, 64)))
        if parts:
            said += f" ({', '.join(parts)})"
        if e.detail:
            said += f": {sanitize(e.detail, 300)}"
        if e.checked_at:
            said += f", checked {sanitize(e.checked_at, 40)}"
    return f"- {code(f.ref.reference or f.ref.text)}: {said}"


def _verified(f: Finding) -> str | None:
    fx = f.fix
    if fx is None or not fx.target:
        return None
    out = f"- {code(fx.target)}: verified"
    if fx.digest:
        out += f", digest {code(fx.digest)}"
    if fx.checked_at:
        out += f", checked {sanitize(fx.checked_at, 40)}"
    return out


def body(
    findings: Sequence[Finding],
    advice: Sequence[Finding],
    whys: Mapping[str, str],
    state: PrState,
) -> str:
    """The description: per rule a table of changes, the why, the evidence; then advice, help
    and the hidden marker carrying ``state``."""
    if findings and all(f.fix is not None and f.fix.target is None for f in findings):
        out = ["Pullable found container images that the cluster will not be able to pull as "
               "configured, and proposes the additions below. Nothing else in the files changes.",
               ""]  # fmt: skip
    else:
        out = ["Pullable found container image references that no longer resolve or are retired, "
               "checked them against their registries and proposes the changes below. Only the "
               "bytes of each reference change.", ""]  # fmt: skip
    by_rule: dict[str, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: f.ref.key):
        assert f.fix is not None
        by_rule.setdefault(f.fix.rule, []).append(f)
    for rule, items in sorted(by_rule.items()):
        out += [f"### Rule {code(rule)}", "", "| File | Before | After | Rule |", "| --- | --- | --- | --- |"]
        for f in items[:ROWS_LIMIT]:
            assert f.fix is not None
            where = code(f"{f.ref.path}:{f.ref.line}", in_table=True)
            before, after = code(f.fix.before, in_table=True), code(f.fix.after, in_table=True)
            out.append(f"| {where} | {before} | {after} | {cell(rule)} |")
        if len(items) > ROWS_LIMIT:
            out.append(f"| … and {len(items) - ROWS_LIMIT} more | | | |")
        out += ["", f"**Why:** {sanitize(' '.join(whys.get(rule, '').split()), 3000)}", ""]
        notes = sorted({f.fix.advice for f in items if f.fix and f.fix.advice})
        out += [f"**Note:** {sanitize(n, 1000)}" for n in notes] + ([""] if notes else [])
        out += ["<details><summary>Evidence</summary>", ""]
        seen: set[str] = set()
        for f in items:
            for entry in (_evidence(f), _verified(f)):
                if entry and entry not in seen:
                    seen.add(entry)
                    out.append(entry)
        out += ["", "</details>", ""]
    if advice:
        out += ["### Could not be fixed automatically", ""]
        for f in sorted(advice, key=lambda f: f.ref.key)[:ROWS_LIMIT]:
            out.append(
                f"- {code(f'{f.ref.path}:{f.ref.line}')} {code(f.ref.text)} ({cell(f.rule or '')}): "
                f"{sanitize(f.advice or '', 1000)}"
            )
        out.append("")
    out += ["<details><summary>Talk to Pullable</summary>", "", HELP, "", "</details>", ""]
    text = "\n".join(out)
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + "\n\n(description truncated)\n"
    return text + "\n" + marker(MARKER, state.to_json()) + "\n"
