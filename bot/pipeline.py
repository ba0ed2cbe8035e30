"""From references to verified fixes: the one path the CLI and the GitHub App both take.

``evaluate`` turns a scan's references into :class:`~bot.model.Finding` objects with the
registry's status, the rule that fires and its verified target (or advice); ``apply`` writes the
edits and proves them: every file touched, and every file whose references use a touched file, is
re-scanned, and each changed reference must read as intended and nothing else may change. An edit
that fails that proof is dropped with the reason, never committed.

No disk access here: files come through a :class:`Reader` (a checkout, or GitHub's API) and the
new contents go back to the caller as bytes, to write or to commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot import edit, pullsecrets, rules
from bot.model import Edit, Evidence, Finding, Fix, ImageRef, Resolution, Skip, Status
from bot.repoconfig import RepoConfig
from bot.rules import Lookup, RuleTable
from bot.scan import scan_file
from bot.scan.pullsecrets import FileFacts

__all__ = [
    "LEVELS",
    "Reader",
    "Result",
    "apply",
    "decide",
    "evaluate",
    "fails",
    "groups",
    "level",
    "pull_secret_findings",
    "resolve",
    "run",
]

# --fail-on levels, most severe first; a finding's level comes from bot.report.level.
LEVELS = ("error", "warning", "note", "never")


class Reader(Protocol):
    """Read access to a repository: what the finders need, plus raw bytes to splice into."""

    def read_bytes(self, path: str) -> bytes | None: ...

    def read_text(self, path: str) -> str | None: ...

    def listdir(self, path: str) -> list[str]: ...


@dataclass
class Result:
    """Findings with their outcome; ``files`` holds the new contents of every changed file."""

    findings: list[Finding]
    files: dict[str, bytes] = field(default_factory=dict)
    applied: list[Finding] = field(default_factory=list)
    dropped: list[tuple[Finding, str]] = field(default_factory=list)


class _Memo:
    """Asks the registry once per question within one run (many references share a name)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self._checks: dict[str, Resolution] = {}
        self._tags: dict[str, list[str]] = {}
        self._digests: dict[str, str | None] = {}
        self._created: dict[str, dt.datetime | None] = {}

    def seed(self, res: Resolution) -> None:
        self._checks.setdefault(res.reference, res)

    def check(self, reference: str) -> Resolution:
        if reference not in self._checks:
            self._checks[reference] = self.lookup.check(reference)
        return self._checks[reference]

    def tags(self, name: str) -> list[str]:
        if name not in self._tags:
            self._tags[name] = self.lookup.tags(name)
        return self._tags[name]

    def pinned_digest(self, reference: str) -> str | None:
        if reference not in self._digests:
            self._digests[reference] = self.lookup.pinned_digest(reference)
        return self._digests[reference]

    def created(self, reference: str) -> dt.datetime | None:
        """When the image was built, if the lookup can say (``Registry.created``)."""
        ask = getattr(self.lookup, "created", None)
        if ask is None:
            return None
        if reference not in self._created:
            self._created[reference] = ask(reference)
        return self._created[reference]


def resolve(findings: Sequence[Finding], lookup: Lookup) -> None:
    """Fill each finding's status and evidence, asking each distinct reference once (in one
    batch when the lookup can, as ``Registry.check_many`` does)."""
    wanted = sorted({f.ref.reference for f in findings if f.ref.reference and f.ref.artifact == "image"})
    many = getattr(lookup, "check_many", None)
    answers: Mapping[str, Resolution] = many(wanted) if many else {r: lookup.check(r) for r in wanted}
    for f in findings:
        ans = answers.get(f.ref.reference or "")
        if ans is not None:
            f.status, f.evidence = ans.status, ans.evidence


def evaluate(
    refs: Iterable[ImageRef],
    lookup: Lookup | None,
    config: RepoConfig,
    table: RuleTable,
    *,
    facts: Iterable[FileFacts] | Callable[[], Iterable[FileFacts]] | None = None,
    reader: Reader | None = None,
) -> list[Finding]:
    """Findings for the references ``config`` does not ignore, each with its registry status, the
    rule that fires and its verified fix (edits planned) or advice. ``lookup`` None: offline.
    With the repository's pull-secret ``facts`` (``ScanResult.facts`` of the whole repository, or
    a function that scans for them, called only when a private image needs them), the
    pull-secret findings follow (:func:`pull_secret_findings`); with a ``reader`` their
    mechanical fixes carry edits."""
    found = decide(
        [Finding(r, Status.INVALID if r.skip is Skip.INVALID else Status.UNCHECKED) for r in refs
         if not config.ignores(r)],
        lookup, config, table,
    )  # fmt: skip
    if facts is not None and lookup is not None:
        disabled = config.options().disable
        found += [f for f in pull_secret_findings(found, facts, lookup, reader) if f.rule not in disabled]
    return found


def pull_secret_findings(
    findings: Sequence[Finding],
    facts: Iterable[FileFacts] | Callable[[], Iterable[FileFacts]],
    lookup: Lookup,
    reader: Reader | None = None,
) -> list[Finding]:
    """Private images whose pods will lack credentials (bot.pullsecrets): the registry's answers
    (or the operator's credentials) meet what the repository says about pods and secrets. Their
    fixes add to a file (``imagePullSecrets``) and name no new reference (``target`` None)."""
    return pullsecrets.check(findings, facts, lookup, reader)


def decide(
    findings: list[Finding], lookup: Lookup | None, config: RepoConfig, table: RuleTable
) -> list[Finding]:
    """Set rule, fix and advice on ``findings`` in place (resolving the unchecked ones first)."""
    memo = _Memo(lookup) if lookup is not None else None
    if lookup is not None:
        resolve([f for f in findings if f.status is Status.UNCHECKED and f.evidence is None], lookup)
    opts = config.options()
    for f in findings:
        res = None
        if f.ref.reference and (f.evidence is not None or f.status is not Status.UNCHECKED):
            res = Resolution(f.ref.reference, f.status, f.evidence or Evidence())
            if memo is not None:
                memo.seed(res)
        d = rules.evaluate(f.ref, res, memo, table, opts)
        if d is None:
            continue
        f.rule = d.rule.id
        if d.target is None:
            f.advice = d.advice
            continue
        target = str(d.target)
        try:
            edits, problem = edit.plan(f.ref, target), None
        except edit.EditError as exc:
            edits, problem = (), str(exc)
        f.fix = Fix(
            rule=d.rule.id,
            why=d.rule.why,
            before=f.ref.text,
            after=_written(f.ref, edits, d.target.familiar()),
            target=target,
            digest=d.digest,
            checked_at=d.checked_at,
            edits=edits,
            advice=d.advice,
        )
        if problem is not None:
            f.advice = f"{target} is verified but cannot be written here: {problem}"
    return findings


def _written(ref: ImageRef, edits: Sequence[Edit], fallback: str) -> str:
    """The reference as the file will show it: ``ref.text`` with each edited part's new text."""
    if not edits:
        return fallback
    text, pos = ref.text, 0
    by_span = {(e.path, e.span.start): e for e in edits}
    for p in sorted(ref.parts, key=lambda p: ((p.path or ref.path) != ref.path, p.span.start)):
        e = by_span.get((p.path or ref.path, p.span.start))
        if e is None:
            continue
        new = e.new
        if not p.quote and len(new) >= 2 and new[0] == new[-1] and new[0] in "'\"":
            new = new[1:-1]  # quotes the edit engine added to keep the YAML type
        at = text.find(p.text, pos) if p.text else -1
        if at < 0:
            return fallback
        text = text[:at] + new + text[at + len(p.text) :]
        pos = at + len(new)
    return text


def groups(findings: Iterable[Finding], mode: str = "rule") -> dict[str, list[Finding]]:
    """Fixable findings by pull request: one group per rule id (``mode="rule"``) or ``"all"``."""
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.fix is not None and f.fix.edits:
            out.setdefault(f.fix.rule if mode == "rule" else "all", []).append(f)
    return out


class _Overlay:
    """The repository as it will read after the edits (for re-scanning: a role's tasks read its
    edited ``defaults/main.yml``)."""

    def __init__(self, base: Reader, files: Mapping[str, bytes]) -> None:
        self._base, self._files = base, files

    def read_bytes(self, path: str) -> bytes | None:
        return self._files[path] if path in self._files else self._base.read_bytes(path)

    def read_text(self, path: str) -> str | None:
        if path not in self._files:
            return self._base.read_text(path)
        from bot.scan import decode

        try:
            return decode(self._files[path])[0]
        except ValueError:
            return None

    def listdir(self, path: str) -> list[str]:
        return self._base.listdir(path)


def apply(findings: Sequence[Finding], reader: Reader, refs: Sequence[ImageRef] = ()) -> Result:
    """Write the planned edits of ``findings`` and keep only those a re-scan confirms.

    ``refs`` is the whole scan (so references that use an edited file elsewhere, such as an
    Ansible task reading ``defaults/main.yml``, are checked too). Findings whose edits are dropped
    lose them and get advice saying why.
    """
    everyone = list(refs) or [f.ref for f in findings]
    candidates = [f for f in findings if f.fix is not None and f.fix.edits]
    result = Result(list(findings))
    files, problems = _try(candidates, reader, everyone)
    if problems:  # find the culprits: add fixes one at a time, keep those that still verify
        kept: list[Finding] = []
        for f in candidates:
            _, mine = _try([*kept, f], reader, everyone)
            if mine:
                result.dropped.append((f, "; ".join(mine)))
            else:
                kept.append(f)
        candidates = kept
        files, problems = _try(kept, reader, everyone)
        if problems:  # cannot happen: the last step verified this very set; stay safe anyway
            result.dropped.extend((f, "; ".join(problems)) for f in kept)
            files, candidates = {}, []
    result.files, result.applied = files, candidates
    for f, why in result.dropped:
        assert f.fix is not None
        f.fix = dataclasses.replace(f.fix, edits=())
        f.advice = f"the edit to {f.fix.after} was not made: {why}"
    _record_written(result, reader, everyone)
    return result


def _try(
    candidates: Sequence[Finding], reader: Reader, everyone: Sequence[ImageRef]
) -> tuple[dict[str, bytes], list[str]]:
    """(new file contents, problems) for applying ``candidates`` together."""
    fixes = [(f, f.fix) for f in candidates if f.fix is not None]
    edits = [e for _, fx in fixes for e in fx.edits]
    originals: dict[str, bytes] = {}
    for path in dict.fromkeys(e.path for e in edits):
        data = reader.read_bytes(path)
        if data is None:
            return {}, [f"{path}: cannot be read"]
        originals[path] = data
    try:
        files = edit.apply_all(originals, edits)
    except edit.EditError as exc:
        return {}, [str(exc)]
    touched = set(files)
    paths = dict.fromkeys(
        [f.ref.path for f in candidates] + [r.path for r in everyone if r.touches(touched)] + sorted(touched)
    )
    overlay = _Overlay(reader, files)
    before, after = [], []
    for path in paths:
        old = reader.read_bytes(path)
        if old is None:
            return {}, [f"{path}: cannot be read"]
        before.extend(scan_file(path, old, reader).refs)
        new_scan = scan_file(path, files.get(path, old), overlay)
        if new_scan.errors:
            return {}, [f"{e.path}: {e.message} after the edit" for e in new_scan.errors]
        after.extend(new_scan.refs)
    intended = {f.ref.key: edit.expected(fx.target) for f, fx in fixes if fx.target}
    problems = [m.why for m in edit.verify(before, after, intended)]
    return files, problems


def _record_written(result: Result, reader: Reader, everyone: Sequence[ImageRef]) -> None:
    """Set each applied fix's ``after`` to the text the re-scan reads (exactly what the file shows)."""
    if not result.applied:
        return
    overlay = _Overlay(reader, result.files)
    for path in dict.fromkeys(f.ref.path for f in result.applied):
        old_data, new_data = reader.read_bytes(path), overlay.read_bytes(path)
        if old_data is None or new_data is None:
            continue
        old = scan_file(path, old_data, reader).refs
        new = scan_file(path, new_data, overlay).refs
        if len(old) != len(new):
            continue
        after = {b.key: a.text for b, a in zip(old, new, strict=True)}
        for f in result.applied:
            if f.ref.path == path and f.ref.key in after and f.fix is not None and f.fix.target:
                f.fix = dataclasses.replace(f.fix, after=after[f.ref.key])


def run(
    reader: Reader,
    refs: Sequence[ImageRef],
    lookup: Lookup | None,
    config: RepoConfig,
    table: RuleTable,
    *,
    facts: Iterable[FileFacts] | None = None,
) -> Result:
    """The whole pipeline: evaluate ``refs`` and apply every fix that survives verification.

    A fixed reference can be one another rule still applies to (``nginx:latest`` becomes
    ``nginx:1.27.3``, which the ``mirror`` rule then moves to the mirror), so the changed files
    are re-scanned and evaluated again, a few rounds at most, until nothing changes: a second
    ``pullable fix`` then finds nothing to do. ``applied`` lists every round's fixes in order.
    """
    findings = evaluate(refs, lookup, config, table, facts=facts, reader=reader)
    result = apply(findings, reader, refs)
    current, fixed = list(refs), result.applied
    for _ in range(_ROUNDS - 1):
        if not fixed or lookup is None:
            break
        overlay = _Overlay(reader, result.files)
        changed = set(result.files)
        again = dict.fromkeys([r.path for r in current if r.touches(changed)] + sorted(changed))
        fresh = [r for path in again for r in scan_file(path, overlay.read_bytes(path) or b"", overlay).refs]
        current = [r for r in current if r.path not in again] + fresh
        # Only the references just fixed are asked again: the others were decided already.
        where = {(f.ref.path, f.ref.line) for f in fixed if f.fix is not None and f.fix.target}
        more = apply(evaluate([r for r in fresh if (r.path, r.line) in where], lookup, config, table),
                     overlay, current)  # fmt: skip
        result.findings += [f for f in more.findings if f.rule is not None]
        result.applied += more.applied
        result.dropped += more.dropped
        result.files = {**result.files, **more.files}
        fixed = more.applied
    return result


_ROUNDS = 3  # rounds of fixing in one run: a rule's result meeting another rule (mirror) needs two


def level(f: Finding) -> str:
    """error, warning or note: the scale ``--fail-on`` and SARIF share (bot.report.level)."""
    from bot.report import level as report_level

    return report_level(f)


def fails(findings: Iterable[Finding], threshold: str) -> bool:
    """Whether any finding is at or above ``threshold`` (``never`` never fails)."""
    if threshold == "never":
        return False
    limit = LEVELS.index(threshold)
    return any(LEVELS.index(level(f)) <= limit for f in findings)
