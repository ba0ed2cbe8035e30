"""Findings as people and tools read them: a table, JSON, SARIF 2.1.0.

Every output is built from the same :class:`~bot.model.Finding` list, so the table, the JSON a CI
step parses and the code-scanning alert can never disagree.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

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
    if f.status in ERROR:
        return "error"
    if f.status in WARNING or f.rule is not None:
        return "warning"
    return "note"


def to_json(findings: Sequence[Finding], errors: Sequence[ScanError]) -> str:
    doc = {
        "findings": [f.to_json() for f in findings],
        "errors": [{"path": e.path, "message": e.message} for e in errors],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _shown(f: Finding) -> str:
    r = f.ref
    if r.reference is not None:
        return r.reference
    return f"({r.skip}: {r.detail})" if r.detail else f"({r.skip})"


def to_table(findings: Sequence[Finding], errors: Sequence[ScanError], files: int | None = None) -> str:
    """Grouped by file, one line per reference: position, as written, status, normalised form."""
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_path[f.ref.path].append(f)
    lines: list[str] = []
    width = max((len(f.ref.text) for f in findings), default=10)
    width = min(max(width, 10), 60)
    for path in sorted(by_path):
        lines.append(printable(path))
        for f in sorted(by_path[path], key=lambda f: (f.ref.line, f.ref.column)):
            status = str(f.status) if f.ref.skip in (None, Skip.INVALID) else f"skip:{f.ref.skip}"
            text = printable(f.ref.text)
            text = text if len(text) <= width else text[: width - 1] + "…"
            row = f"  {f.ref.line:>5}:{f.ref.column:<4} {text:<{width}}  {status:<14} {printable(_shown(f))}"
            lines.append(row.rstrip())
            if f.fix is not None and f.fix.edits:
                lines.append(f"  {'':>10} -> {printable(f.fix.after)}  [{printable(f.fix.rule)}]")
            advice = f.advice or (f.fix.advice if f.fix else None)
            if advice:
                lines.append(f"  {'':>10} !  {printable(advice)}")
    if errors:
        lines.append("")
        lines.append("errors:")
        lines.extend(f"  {printable(e.path)}: {printable(e.message)}" for e in errors)
    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[str(f.status)] += 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    scanned = f" in {files} files" if files is not None else ""
    lines.append("")
    lines.append(f"{len(findings)} references{scanned}" + (f" ({summary})" if summary else "")
                 + (f", {len(errors)} errors" if errors else ""))  # fmt: skip
    return "\n".join(lines) + "\n"


def to_sarif(findings: Sequence[Finding], errors: Sequence[ScanError]) -> str:
    """SARIF 2.1.0 for GitHub code scanning: one result per reference that is not known good,
    rule ids are the status (or the firing rule), locations are repository-relative."""
    results = []
    rule_ids: dict[str, str] = {}
    for f in findings:
        if f.status is Status.OK and f.rule is None:
            continue
        rule_id = f.rule or str(f.status)
        rule_ids.setdefault(rule_id, _DESCRIPTIONS.get(f.status, rule_id))
        r = f.ref
        message = f"{r.text}: {f.status}"
        if r.skip is not None:
            message += f" ({r.skip}{': ' + r.detail if r.detail else ''})"
        advice = f.advice or (f.fix.advice if f.fix else None)
        if f.fix is not None and f.fix.edits:
            message += f". Proposed: {f.fix.after} ({f.fix.rule})"
        elif advice:
            message += f". {advice}"
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
            "partialFingerprints": {"pullableReference/v1": f"{r.path}:{r.text}"},
            "properties": {"reference": r.reference, "source": str(r.source), "status": str(f.status)},
        })  # fmt: skip
    notifications = [
        {
            "level": "warning",
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
                "rules": [
                    {"id": rid, "shortDescription": {"text": desc}} for rid, desc in sorted(rule_ids.items())
                ],
            }},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False)
