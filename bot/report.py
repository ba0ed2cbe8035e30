"""Findings as people and tools read them: a table, JSON, SARIF 2.1.0.

Every output is built from the same :class:`~bot.model.Finding` list, so the table, the JSON a CI
step parses and the code-scanning alert can never disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from bot import __version__
from bot.model import Finding, ScanError, Skip, Status

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/pullable/pullable"

# How bad each status is, for SARIF levels, --fail-on and the table's marks.
ERROR = frozenset({Status.TAG_MISSING, Status.REPO_MISSING, Status.DIGEST_MISSING, Status.INVALID})
WARNING = frozenset(
    {Status.AUTH_REQUIRED, Status.AUTH_FAILED, Status.FORBIDDEN, Status.RATE_LIMITED,
     Status.UNREACHABLE, Status.BLOCKED}
)  # fmt: skip

# Rules whose findings are notes whatever the registry said (a pull secret that may exist outside git).
NOTE_RULES = frozenset({"pull-secret-undefined"})

# Rules that are not in the rule table (checks of their own, bot.pullsecrets) describe themselves.
_RULE_DESCRIPTIONS = {
    "pull-secret-missing": "A private image whose pod has no pull secret by any route.",
    "pull-secret-wrong-namespace": "A listed pull secret is defined only in another namespace.",
    "pull-secret-wrong-registry": "A listed pull secret holds no credentials for the image's registry.",
    "pull-secret-undefined": "A listed pull secret is not defined in the repository.",
}
# Their ids, which `.github/pullable.yml` may disable like the table's.
CHECK_RULES = frozenset(_RULE_DESCRIPTIONS)

_DESCRIPTIONS = {
    Status.OK: "The reference resolves on its registry.",
    Status.TAG_MISSING: "The repository exists but the tag does not (manifest unknown).",
    Status.REPO_MISSING: "The repository does not exist on its registry.",
    Status.AUTH_REQUIRED: "Anonymous pulls are refused; the image may be private or missing.",
    Status.AUTH_FAILED: "The configured registry credentials were rejected.",
    Status.FORBIDDEN: "The registry denies access to this repository.",
    Status.DIGEST_MISSING: "The pinned digest is not on the registry.",
    Status.RATE_LIMITED: "The registry rate-limited the lookup; try again later.",
    Status.UNREACHABLE: "The registry could not be reached (DNS, connection, TLS or timeout).",
    Status.BLOCKED: "Pullable refused to contact this host (private or reserved address).",
    Status.INVALID: "The reference does not parse under Docker's reference grammar.",
    Status.UNCHECKED: "The reference was not checked (offline, or skipped).",
}


# C0 and C1 controls, DEL, and invisible format characters (bidi overrides, zero-width, line and
# paragraph separators): none may reach a terminal as written.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` safe for a terminal line: control characters, escape sequences, newlines and
    invisible format characters (bidi overrides) shown as ``\\xNN`` / ``\\uNNNN`` escapes. File names
    and everything else a repository provides go through here before we print them."""
    out = _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                           else f"\\u{ord(m.group()):04x}", text)  # fmt: skip
    if out.isascii():
        return out
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in out)


def level(f: Finding) -> str:
    """SARIF level: error (will not pull), warning (may not pull, or a rule advises), note."""
    if f.rule in NOTE_RULES:
        return "note"
    if f.status in ERROR:
        return "error"
    if f.status in WARNING or f.rule is not None:
        return "warning"
    return "note"


def to_json(findings: Sequence[Finding], errors: Sequence[ScanError]) -> str:
    doc = {
        "findings": [f.to_json() for f in findings],
        "errors": [{"path": e.path, "message": e.message, "level": e.level} for e in errors],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _shown(f: Finding) -> str:
    r = f.ref
    if r.reference is not None:
        return r.reference
    if r.skip is None:  # a chart that could not be read: the detail says which and why
        return f"({r.detail})"
    return f"({r.skip}: {r.detail})" if r.detail else f"({r.skip})"


def is_problem(f: Finding) -> bool:
    """Worth a reader's attention: will not or may not pull, or a rule fires (not "note")."""
    return level(f) != "note"


def select(
    findings: Sequence[Finding], only: str | None = None, severity: str | None = None
) -> list[Finding]:
    """The findings a reader asked to see: ``only="problems"`` drops the ones that are fine (level
    note); ``severity`` keeps those at or above error, warning or note. Display only: exit codes
    always judge every finding."""
    order = ("error", "warning", "note")
    out = list(findings)
    if only == "problems":
        out = [f for f in out if is_problem(f)]
    if severity is not None:
        out = [f for f in out if order.index(level(f)) <= order.index(severity)]
    return out


def cached_note(f: Finding) -> str | None:
    """The note "cached, N s old" when the registry's answer came from the cache, else None."""
    age = f.evidence.cached_age_s if f.evidence is not None else None
    return None if age is None else f"cached, {age} s old"


def _cell(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters (an ellipsis marks the cut). Every string the table
    shows passes here, so escaping what a terminal must not interpret belongs here too."""
    if width <= 0:
        return ""
    text = printable(text)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _status(f: Finding) -> str:
    return str(f.status) if f.ref.skip in (None, Skip.INVALID) else f"skip:{f.ref.skip}"


def _detail(f: Finding) -> str:
    """What the reader does next with this reference: the proposed fix, else what it resolves
    to (when that says more than the text as written), with the cache's age for bad answers."""
    if f.fix is not None and f.fix.edits:
        out = f"-> {f.fix.after} [{f.fix.rule}]"
    elif f.rule is not None:
        out = f"[{f.rule}]"
    else:
        out = _shown(f) if _shown(f) != f.ref.text else ""
    cached = cached_note(f)
    if cached and f.status is not Status.OK:
        out = f"{out} ({cached})".strip()
    return out


TABLE_HEADER = ("LINE:COL", "IMAGE", "STATUS", "RESOLVED / PROPOSED")


def to_table(
    findings: Sequence[Finding],
    errors: Sequence[ScanError],
    files: int | None = None,
    *,
    width: int = 100,
    total: int | None = None,
) -> str:
    """Grouped by file under a header row, one line per reference (position, as written,
    status, the fix or the normalised form), each line cut to ``width``; advice is printed once
    per distinct text at the end, with how many references it concerns, and referred to by
    number. ``total`` is how many findings there were before a filter (for the summary)."""
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_path[f.ref.path].append(f)
    notes: dict[str, list[Finding]] = {}
    for f in findings:
        for text in (f.advice, f.fix.advice if f.fix else None):
            if text and f not in notes.setdefault(text, []):
                notes[text].append(f)
    number = {text: i for i, text in enumerate(notes, 1)}
    pos_w = max([len(TABLE_HEADER[0])] + [len(f"{f.ref.line}:{f.ref.column}") for f in findings])
    status_w = max([len(TABLE_HEADER[2])] + [len(_status(f)) for f in findings])
    text_w = max([len(TABLE_HEADER[1])] + [len(f.ref.text) for f in findings])
    # The image and the last column share what is left (the image gets up to 45%, at least 20).
    fixed = 2 + pos_w + 2 + 2 + status_w + 2
    text_w = min(text_w, max(20, (width - fixed) * 45 // 100))

    def row(pos: str, text: str, status: str, detail: str) -> str:
        line = f"  {pos:<{pos_w}}  {_cell(text, text_w):<{text_w}}  {status:<{status_w}}  "
        return (line + _cell(detail, width - len(line))).rstrip()

    lines: list[str] = []
    if findings:
        lines.append(row(*TABLE_HEADER))
    for path in sorted(by_path):
        lines.append(_cell(path, max(width, 20)))
        for f in sorted(by_path[path], key=lambda f: (f.ref.line, f.ref.column)):
            marks = "".join(
                f" [{number[t]}]" for t in dict.fromkeys((f.advice, f.fix.advice if f.fix else None)) if t
            )
            detail = _detail(f)
            if marks:  # the note numbers must stay visible when the detail is cut
                room = max(width - (2 + pos_w + 2 + text_w + 2 + status_w + 2) - len(marks), 0)
                detail = _cell(detail, room) + marks
            lines.append(row(f"{f.ref.line}:{f.ref.column}", f.ref.text, _status(f), detail.strip()))
    if notes:
        lines.append("")
        lines.append("advice:")
        for text, fs in notes.items():
            head = f"  [{number[text]}] " + (f"({len(fs)} references) " if len(fs) > 1 else "")
            lines.extend(_wrap(head, text, width))
    for level in ("error", "warning"):
        these = [e for e in errors if e.level == level]
        if these:
            lines.append("")
            lines.append(f"{level}s:")
            lines.extend(_cell(f"  {e.path}: {e.message}", width) for e in these)
    counts: dict[str, int] = defaultdict(int)
    refs = {f.ref.key: f for f in reversed(findings)}  # a reference may have several findings
    for f in refs.values():
        counts[str(f.status)] += 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    scanned = f" in {files} files" if files is not None else ""
    shown = f" shown of {total}" if total is not None and total != len(findings) else ""
    lines.append("")
    lines.append(f"{len(refs)} references{shown}{scanned}" + (f" ({summary})" if summary else "")
                 + "".join(f", {n} {lv}s" for lv in ("error", "warning")
                           if (n := sum(e.level == lv for e in errors))))  # fmt: skip
    return "\n".join(lines) + "\n"


def _wrap(head: str, text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(
        printable(" ".join(text.split())), width=max(width, 40), initial_indent=head,
        subsequent_indent=" " * 6, break_on_hyphens=False,
    )  # fmt: skip


HELP_URI = INFO_URI + "#statuses"
RULES_HELP_URI = INFO_URI + "/blob/main/rules/README.md#the-built-in-rules"


def fingerprint(f: Finding) -> str:
    """Stable per location: the same reference written on two lines gives two alerts."""
    r = f.ref
    key = f"{r.path}\0{r.line}\0{r.column}\0{r.reference or r.text}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def to_sarif(
    findings: Sequence[Finding],
    errors: Sequence[ScanError],
    *,
    rule_help: Mapping[str, str] | None = None,
    unchecked: bool = False,
) -> str:
    """SARIF 2.1.0 for GitHub code scanning: one result per reference that is not known good,
    rule ids are the status (or the firing rule), locations are repository-relative.

    References that were not checked (``--offline``, templated values) and that no rule speaks
    about are left out unless ``unchecked``: hundreds of notes saying nothing bury the alerts.
    ``rule_help`` gives each rule id's explanation (the rule table's ``why``) for ``help.text``.
    """
    rule_help = rule_help or {}
    results = []
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.status is Status.OK and f.rule is None:
            continue
        if f.status is Status.UNCHECKED and f.rule is None and not unchecked:
            continue
        rule_id = f.rule or str(f.status)
        if rule_id not in rules:
            short = _RULE_DESCRIPTIONS.get(rule_id) or _DESCRIPTIONS.get(f.status, rule_id)
            why = rule_help.get(rule_id) or (f.fix.why if f.fix and f.fix.rule == rule_id else None)
            text = " ".join((why or short).split())
            rules[rule_id] = {
                "id": rule_id,
                "shortDescription": {"text": text.split(". ")[0].rstrip(".") + "." if why else short},
                "fullDescription": {"text": text},
                "help": {"text": text, "markdown": (why or short).strip()},
                "helpUri": RULES_HELP_URI if f.rule else HELP_URI,
            }
        r = f.ref
        message = f"{r.text}: {f.status}"
        if r.skip is not None:
            message += f" ({r.skip}{': ' + r.detail if r.detail else ''})"
        advice = f.advice or (f.fix.advice if f.fix else None)
        if f.fix is not None and f.fix.edits:
            message += f". Proposed: {f.fix.after} ({f.fix.rule})"
        elif advice:
            message += f". {advice}"
        cached = cached_note(f)
        if cached:
            message += f" ({cached})"
        end_col = r.column + len(r.parts[0].text) if r.parts else r.column + 1
        results.append({
            "ruleId": rule_id,
            "level": level(f),
            "message": {"text": message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": r.path, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": r.line, "startColumn": r.column, "endColumn": end_col},
                }
            }],
            "partialFingerprints": {"pullableLocation/v2": fingerprint(f)},
            "properties": {"reference": r.reference, "source": str(r.source), "status": str(f.status)},
        })  # fmt: skip
    notifications = [
        {
            "level": "warning" if e.level == "error" else "note",
            "message": {"text": e.message},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": e.path, "uriBaseId": "%SRCROOT%"}}}
            ],
        }
        for e in errors
    ]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "Pullable",
                "version": __version__,
                "informationUri": INFO_URI,
                "rules": [rules[rid] for rid in sorted(rules)],
            }},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False)
