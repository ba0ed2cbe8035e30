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
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import yaml

from bot import edit, pullsecrets, rules, versions
from bot.model import (
    ChartUse,
    Context,
    Edit,
    Evidence,
    Finding,
    Fix,
    ImageRef,
    Resolution,
    Skip,
    Source,
    Status,
)
from bot.repoconfig import RepoConfig
from bot.rules import Lookup, RuleTable
from bot.scan import scan_file
from bot.scan.pullsecrets import FileFacts

if TYPE_CHECKING:
    from concurrent.futures import Future

    from bot.registry.charts import Chart, ChartError, Charts

__all__ = [
    "LEVELS",
    "ChartRun",
    "Reader",
    "Result",
    "apply",
    "decide",
    "evaluate",
    "expand_charts",
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


T = TypeVar("T")
DEFAULT_RULE_WORKERS = 8  # rule lookups in flight when the lookup does not say (Registry does)


class _Memo:
    """Asks the registry once per question within one run (many references share a name), also
    when the rules of several references ask at the same time (one asks, the others wait)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self._checks: dict[str, Resolution] = {}
        self._tags: dict[str, versions.TagList] = {}
        self._digests: dict[str, str | None] = {}
        self._created: dict[str, dt.datetime | None] = {}
        self._lock = threading.Lock()
        self._asking: dict[tuple[int, str], threading.Lock] = {}

    def _once(self, table: dict[str, T], key: str, ask: Callable[[], T]) -> T:
        with self._lock:
            if key in table:
                return table[key]
            gate = self._asking.setdefault((id(table), key), threading.Lock())
        with gate:
            with self._lock:
                if key in table:
                    return table[key]
            value = ask()  # an exception is the rule's to handle; the next caller asks again
            with self._lock:
                table[key] = value
            return value

    def seed(self, res: Resolution) -> None:
        with self._lock:
            self._checks.setdefault(res.reference, res)

    def check(self, reference: str) -> Resolution:
        return self._once(self._checks, reference, lambda: self.lookup.check(reference))

    def tags(self, name: str) -> versions.TagList:
        def ask() -> versions.TagList:
            got = self.lookup.tags(name)
            return got if isinstance(got, versions.TagList) else versions.TagList(got)

        return self._once(self._tags, name, ask)

    def pinned_digest(self, reference: str) -> str | None:
        return self._once(self._digests, reference, lambda: self.lookup.pinned_digest(reference))

    def created(self, reference: str) -> dt.datetime | None:
        """When the image was built, if the lookup can say (``Registry.created``)."""
        ask = getattr(self.lookup, "created", None)
        if ask is None:
            return None
        return self._once(self._created, reference, lambda: ask(reference))


# This repository's address (a git URL), or a function giving it (asked only when needed).
Here = str | Callable[[], str | None] | None


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
    here: Here = None,
) -> list[Finding]:
    """Findings for the references ``config`` does not ignore, each with its registry status, the
    rule that fires and its verified fix (edits planned) or advice. ``lookup`` None: offline.
    Chart uses become the images of the charts' defaults first (:func:`expand_charts`).
    With the repository's pull-secret ``facts`` (``ScanResult.facts`` of the whole repository, or
    a function that scans for them, called only when a private image needs them), the
    pull-secret findings follow (:func:`pull_secret_findings`); with a ``reader`` their
    mechanical fixes carry edits. ``here``: this repository's address (:func:`expand_charts`)."""
    charts = ChartRun()
    expanded, unread = expand_charts(
        list(refs), lookup, charts, cluster_version=config.options().cluster_version, here=here
    )
    findings = [
        Finding(r, Status.INVALID if r.skip is Skip.INVALID else Status.UNCHECKED) for r in expanded
        if not config.ignores(r)
    ]  # fmt: skip
    for f in findings:
        if f.ref.key in unread and f.ref.chart is not None:
            ev = unread[f.ref.key]
            f.status, f.evidence = _CHART_STATUS.get(ev.error_code or "", Status.UNREACHABLE), ev
    found = _advise_newer_charts(decide(findings, lookup, config, table, charts=charts), charts)
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
    findings: list[Finding],
    lookup: Lookup | None,
    config: RepoConfig,
    table: RuleTable,
    *,
    charts: ChartRun | None = None,
) -> list[Finding]:
    """Set rule, fix and advice on ``findings`` in place (resolving the unchecked ones first)."""
    memo = _Memo(lookup) if lookup is not None else None
    if lookup is not None:
        resolve([f for f in findings if f.status is Status.UNCHECKED and f.evidence is None], lookup)
    opts = config.options()
    if memo is not None:
        for f in findings:
            if (res := _known(f)) is not None:
                memo.seed(res)

    def one(i: int) -> rules.Decision | None:
        return rules.evaluate(findings[i].ref, _known(findings[i]), memo, table, opts)

    # The rules' lookups (tag lists, target checks, digests) wait on the network: run them side
    # by side, as classification does; the registry client enforces the per-host limit and each
    # lookup's deadline. Offline there is nothing to wait for.
    workers = getattr(lookup, "workers", DEFAULT_RULE_WORKERS) if memo is not None else 1
    for f, d in zip(findings, _in_order(one, len(findings), workers), strict=True):
        if d is None:
            continue
        f.rule = d.rule.id
        if d.target is None:
            f.advice, f.unsure = d.advice, d.unsure
            continue
        target = str(d.target)
        note = None
        try:
            if f.ref.chart is not None:  # a chart's default: an override in the consumer's values
                (edits, note), problem = _plan_chart_override(f.ref, target, charts or ChartRun()), None
            else:
                edits, problem = edit.plan(f.ref, target), None
        except edit.EditError as exc:
            edits, problem = (), str(exc)
        f.fix = Fix(
            rule=d.rule.id,
            why=d.rule.why,
            before=f.ref.text,
            after=d.target.familiar()
            if f.ref.chart is not None
            else _written(f.ref, edits, d.target.familiar()),
            target=target,
            digest=d.digest,
            checked_at=d.checked_at,
            edits=edits,
            advice=" ".join(a for a in (d.advice, note) if a) or None,
        )
        if problem is not None:
            f.advice = f"{target} is verified but cannot be written here: {problem}"
    if charts is not None:
        _combine_chart_overrides(findings, charts)
    return findings


def _known(f: Finding) -> Resolution | None:
    """What the registry said about ``f`` (None when it was not asked)."""
    if f.ref.reference and (f.evidence is not None or f.status is not Status.UNCHECKED):
        return Resolution(f.ref.reference, f.status, f.evidence or Evidence())
    return None


def _in_order(work: Callable[[int], T], n: int, workers: int) -> Iterator[T]:
    """``work(0) .. work(n - 1)`` on ``workers`` threads, yielded in order, with at most a few
    per worker in flight (memory stays flat however many references a repository holds)."""
    if workers <= 1 or n <= 1:
        yield from (work(i) for i in range(n))
        return
    from concurrent.futures import ThreadPoolExecutor  # not needed offline (start-up)

    window = 4 * workers
    with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
        pending: deque[Future[T]] = deque()
        for i in range(n):
            pending.append(pool.submit(work, i))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


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
        if data is None and all(e.old == "" and e.span.start == 0 for e in edits if e.path == path):
            data = b""  # a values file the override creates
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
        old = originals.get(path) if path in originals else reader.read_bytes(path)
        if old is None:
            return {}, [f"{path}: cannot be read"]
        before.extend(scan_file(path, old, reader).refs)
        new_scan = scan_file(path, files.get(path, old), overlay)
        if new_scan.errors:
            return {}, [f"{e.path}: {e.message} after the edit" for e in new_scan.errors]
        after.extend(new_scan.refs)
    # Overrides inserted for chart defaults were verified against the chart when planned; here
    # the files they touch may only gain references that read as those targets.
    inserted = {e.path for f, fx in fixes if f.ref.chart is not None for e in fx.edits}
    inserted -= {e.path for f, fx in fixes if f.ref.chart is None for e in fx.edits}
    intended = {f.ref.key: edit.expected(fx.target) for f, fx in fixes if fx.target and f.ref.chart is None}
    problems = [
        m.why
        for m in edit.verify(
            [r for r in before if r.path not in inserted],
            [r for r in after if r.path not in inserted],
            intended,
        )
    ]
    targets = {fx.target for f, fx in fixes if f.ref.chart is not None}
    problems += _only_added(
        [r for r in before if r.path in inserted], [r for r in after if r.path in inserted], targets
    )
    return files, problems


def _only_added(before: Sequence[ImageRef], after: Sequence[ImageRef], targets: set[str | None]) -> list[str]:
    """Problems when a file that received an inserted override reads differently otherwise:
    every reference it had must still read the same, or be replaced by one reading as a target."""

    def sig(r: ImageRef) -> tuple[object, ...]:
        return (r.reference, r.skip, r.text, r.source)

    left = [sig(r) for r in after]
    gone = 0
    for r in before:
        if sig(r) in left:
            left.remove(sig(r))
        else:
            gone += 1
    extra = [s for s in left if s[0] not in targets]
    out = [f"the override also changed {s[2]!r}" for s in extra]
    if gone > len(left) - len(extra):
        out.append(f"{gone} reference(s) no longer read as before after the override")
    return out


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
    here: Here = None,
) -> Result:
    """The whole pipeline: evaluate ``refs`` and apply every fix that survives verification
    (``here``: this repository's address, see :func:`expand_charts`).

    A fixed reference can be one another rule still applies to (``nginx:latest`` becomes
    ``nginx:1.27.3``, which the ``mirror`` rule then moves to the mirror), so the changed files
    are re-scanned and evaluated again, a few rounds at most, until nothing changes: a second
    ``pullable fix`` then finds nothing to do. ``applied`` lists every round's fixes in order.
    """
    findings = evaluate(refs, lookup, config, table, facts=facts, reader=reader, here=here)
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
        more = apply(evaluate([r for r in fresh if (r.path, r.line) in where], lookup, config, table,
                              here=here), overlay, current)  # fmt: skip
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


# --- charts: images hidden in the defaults of the charts a repository deploys --------------------
#
# A finder (bot.scan.charts) reports each chart use (Chart.yaml dependency, Argo CD Application,
# Flux HelmRelease, helmfile release) as an ImageRef with ``chart`` set. ``expand_charts`` fetches
# each chart (bot.registry.charts), reads its default values with the Helm values finder, applies
# the consumer's values, and turns every effective image into an ordinary reference that the
# registry checks and the rules judge like any other. A fix is an override inserted into the
# consumer's values (bot.edit.insert), verified by recomputing the chart's effective image.


@dataclass(frozen=True)
class _ChartImage:
    """What planning an override for one chart default image needs."""

    use: ChartUse
    chart: Chart
    field: tuple[str, ...]  # the image's key path in the chart's values ("image",)
    effective: dict[str, Any]  # the chart's values with the consumer's applied
    app_tag: str | None
    bitnami: bool


@dataclass
class ChartRun:
    """What one :func:`evaluate` learns about charts, for planning their overrides in the same
    call: each synthetic reference's chart data, and the keys and target each override sets."""

    images: dict[tuple[object, ...], _ChartImage] = field(default_factory=dict)
    cluster_version: str | None = None  # the repository's cluster.version, for KubeVersion tags
    planned: dict[tuple[object, ...], tuple[list[tuple[tuple[str | int, ...], Any]], str]] = field(
        default_factory=dict
    )
    # (values file, image key) of a chart in this repository -> why its default is not deployed
    shadowed: dict[tuple[str, str], str] = field(default_factory=dict)


def _chart_key(ref: ImageRef) -> tuple[object, ...]:
    return (ref.key, ref.chart, ref.reference)


def expand_charts(
    refs: Sequence[ImageRef],
    lookup: Lookup | None,
    run: ChartRun | None = None,
    *,
    cluster_version: str | None = None,
    here: Here = None,
) -> tuple[list[ImageRef], dict[tuple[str, int, int], Evidence]]:
    """``refs`` with each chart use replaced by the images the chart's defaults make, once the
    consumer's values are applied (an image the consumer writes in full is reported where it is
    written, not again here). Uses whose chart cannot be read stay, with evidence saying why;
    offline (no lookup), chart uses are dropped: there is nothing to read them with.

    ``here`` is this repository's address (a git URL, or a function giving it, asked at most
    once and only when a Flux chart comes from a GitRepository): such a chart was found at its
    path in this checkout, but is only this repository's when the GitRepository's ``spec.url``
    is this address. Another address: skipped, naming it. Unknown (no ``here``, or the
    GitRepository not in the repository): read from here as before, with a note saying so."""
    run = run if run is not None else ChartRun()
    run.cluster_version = cluster_version
    out = [r for r in refs if r.chart is None]
    uses = [r for r in refs if r.chart is not None]
    failed: dict[tuple[str, int, int], Evidence] = {}
    if not uses:
        return out, failed
    from bot.registry.charts import local_chart

    fetcher = _chart_fetcher(lookup)
    address = _Address(here)
    for r in uses:
        use = r.chart
        assert use is not None
        skip, caveat = _git_source(use, address) if use.git_source is not None else (None, None)
        if skip is not None:
            out.append(dataclasses.replace(r, chart=None, detail=skip))
            continue
        local = use.repository.startswith("file://")
        if fetcher is None and not local:
            continue  # offline: a remote chart cannot be read
        try:
            if local:
                chart = local_chart(use.files, use.repository, use.name)
            else:
                assert fetcher is not None
                chart = fetcher.fetch(use.repository, use.name, use.version)
        except _chart_error() as exc:
            failed[r.key] = Evidence(error_code=exc.code.upper(), checked_at=_now(), detail=exc.detail)
            out.append(dataclasses.replace(r, skip=None, detail=f"{r.detail}: {exc.detail}"))
            continue
        try:
            images = _chart_images(r, use, chart, run)
            if caveat is not None:
                images = [_noted(i, caveat) for i in images]
            out.extend(images)
        except Exception as exc:  # noqa: BLE001 - one odd chart must not stop the repository's scan
            detail = f"the chart's values cannot be read: {type(exc).__name__}"
            failed[r.key] = Evidence(error_code="INVALID", checked_at=_now(), detail=detail)
            out.append(dataclasses.replace(r, skip=None, detail=f"{r.detail}: {detail}"))
    return _mark_shadowed(_one_finding_per_image(out, uses, failed), run), failed


class _Address:
    """This repository's address, asked for once, when first needed."""

    def __init__(self, here: Here) -> None:
        self._here = here
        self.known: str | None = None
        self._asked = False

    def same(self, url: str | None) -> bool | None:
        """Whether ``url`` is this repository; None when either address is unknown."""
        if not self._asked:
            self._asked = True
            here = self._here() if callable(self._here) else self._here
            self.known = repository_address(here) if here else None
        other = repository_address(url) if url else None
        if self.known is None or other is None:
            return None
        return other == self.known


def repository_address(url: str) -> str | None:
    """A git URL as ``host/path``, lower-cased, without scheme, credentials, port or ``.git``:
    ``https://github.com/Acme/Fleet.git``, ``ssh://git@github.com:22/acme/fleet`` and
    ``git@github.com:acme/fleet`` are all ``github.com/acme/fleet``. None when it is no URL."""
    text = url.strip()
    if "://" in text:
        rest = text.split("://", 1)[1]
        netloc, _, path = rest.partition("/")
        host = netloc.rsplit("@", 1)[-1].split(":", 1)[0]
    else:  # scp-like: [user@]host:path
        m = re.fullmatch(r"(?:[^@/\s]+@)?([A-Za-z0-9.-]+):(?!/)(\S+)", text)
        if m is None:
            return None
        host, path = m.group(1), m.group(2)
    path = path.strip("/").removesuffix(".git").strip("/")
    return f"{host}/{path}".lower() if host and path else None


def _git_source(use: ChartUse, address: _Address) -> tuple[str | None, str | None]:
    """(why it is not read, or a note saying what was assumed) for a Flux chart found at its
    GitRepository's path in this checkout."""
    same = address.same(use.git_url)
    if same is True:
        return None, None
    if same is False:
        path = use.repository.removeprefix("file://") or "."
        where = f"{use.git_source} at {use.git_url}, path {path}"
        return f"chart from a git source outside this repository ({where}): not read", None
    if not use.git_url:
        why = "its url is unknown (the GitRepository is not in the repository)"
    elif address.known is None:
        why = f"this repository's own address is unknown to the scan, so {use.git_url} cannot be compared"
    else:
        why = f"its url {use.git_url} cannot be read as a git address"
    return None, f"{use.git_source} is taken to be this repository, where its path holds the chart: {why}"


def _noted(ref: ImageRef, note: str) -> ImageRef:
    return dataclasses.replace(
        ref, context=dataclasses.replace(ref.context, notes=(*ref.context.notes, note))
    )


def _one_finding_per_image(
    refs: list[ImageRef], uses: Sequence[ImageRef], failed: Mapping[tuple[str, int, int], Evidence]
) -> list[ImageRef]:
    """Consumer values that write part of an image (``image.repository`` and no tag, or only
    ``image.tag``) were reported as ``tag-from-chart-default`` or ``repository-from-chart-default``:
    once the chart is read, the effective image replaces that finding (a note says where the
    written part is); when it could not be read, the skip stays and says why."""
    from bot.scan.yamlsrc import dotted

    covered: dict[tuple[str, str], int] = {}
    for i, r in enumerate(refs):
        use = r.chart
        if use is None or r.reference is None or use.site_in_string or not r.context.field:
            continue
        covered[(use.site, dotted((*use.site_keys, *r.context.field.split("."))))] = i
    unread = {
        (u.chart.site, dotted(u.chart.site_keys)): failed[u.key].detail
        for u in uses
        if u.chart is not None and u.key in failed and u.chart.site_keys
    }
    out = list(refs)
    drop: set[int] = set()
    for i, r in enumerate(refs):
        if r.chart is not None or r.skip not in (Skip.CHART_DEFAULT, Skip.REPOSITORY_FROM_CHART):
            continue
        at = covered.get((r.path, r.context.field or ""))
        if at is not None:
            syn = out[at]
            note = (
                f"the repository writes part of it at {r.path}:{r.line} ({r.text}); the rest is the chart's"
            )
            out[at] = dataclasses.replace(
                syn, context=dataclasses.replace(syn.context, notes=(*syn.context.notes, note))
            )
            drop.add(i)
            continue
        for (site, prefix), why in unread.items():
            if r.path == site and (r.context.field or "").startswith(prefix + "."):
                out[i] = dataclasses.replace(r, detail=f"{r.detail}; the chart could not be read: {why}")
                break
    return [r for i, r in enumerate(out) if i not in drop]


def _mark_shadowed(refs: list[ImageRef], run: ChartRun) -> list[ImageRef]:
    """A default of a chart kept in this repository that the parent overrides stays a finding
    of the chart's own values file (a rotten default there is fixed in place), marked as not
    what the parent deploys: the deployed image is the one reported at the dependency."""
    if not run.shadowed:
        return refs
    out: list[ImageRef] = []
    for r in refs:
        note = run.shadowed.get((r.path, r.context.field or "")) if r.chart is None else None
        if note is None:
            out.append(r)
        else:
            ctx = dataclasses.replace(r.context, notes=(*r.context.notes, note))
            out.append(dataclasses.replace(r, context=ctx))
    return out


# Why a chart could not be read (bot.registry.charts.ChartError codes) -> the finding's status.
_CHART_STATUS = {"NOT-FOUND": Status.REPO_MISSING, "INVALID": Status.INVALID, "HOSTILE": Status.INVALID}


def _chart_error() -> type[ChartError]:
    from bot.registry.charts import ChartError

    return ChartError


def _chart_fetcher(lookup: Lookup | None) -> Charts | None:
    """Chart lookups over the same client, guard, credentials and store as the image lookups:
    ``lookup`` is the :class:`~bot.registry.Registry`, or a wrapper holding it as ``registry``
    (the CLI's progress reporter). Anything else (a test double) reads no chart."""
    from bot.registry import Registry
    from bot.registry.charts import Charts

    registry = lookup if isinstance(lookup, Registry) else getattr(lookup, "registry", None)
    if not isinstance(registry, Registry):
        return None
    fetcher = getattr(registry, "_pullable_charts", None)
    if fetcher is None:
        fetcher = Charts(registry.client, registry.cache.store, registry.total_s)
        registry._pullable_charts = fetcher  # type: ignore[attr-defined]  # one per Registry
    return fetcher


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _ChartFiles:
    """The chart's files as a repository, for the Helm values finder (its appVersion)."""

    def __init__(self, app_version: str | None) -> None:
        self._chart = "" if not app_version else "appVersion: " + json.dumps(app_version) + "\n"

    def read_text(self, path: str) -> str | None:
        return self._chart if path == "Chart.yaml" and self._chart else None

    def listdir(self, path: str) -> list[str]:
        return ["Chart.yaml", "values.yaml"] if not path else []


def _values_refs(values: Mapping[str, Any], app_tag: str | None) -> dict[tuple[str, ...], ImageRef]:
    """Image references in a values tree, by key path, as the Helm values finder reads them."""
    from bot.scan import helm_values

    text = yaml.safe_dump(dict(values), sort_keys=False, allow_unicode=True)
    out: dict[tuple[str, ...], ImageRef] = {}
    try:
        found = list(helm_values.find(text, "values.yaml", _ChartFiles(app_tag)))
    except Exception:  # noqa: BLE001 - a chart's values that the finder refuses yield nothing
        return out
    for ref in found:
        field_ = ref.context.field or ""
        if field_ and "[" not in field_:
            out.setdefault(tuple(field_.split(".")), ref)
    return out


def _chart_images(
    use_ref: ImageRef, use: ChartUse, chart: Chart, run: ChartRun, *, depth: int = 0, offset: int = 1
) -> list[ImageRef]:
    from bot.scan import charts as chart_scan

    consumer = json.loads(use.values or "{}")
    try:  # a remote chart's values: untrusted, so the pure-Python loader (no libyaml recursion)
        docs = yaml.safe_load(chart.values or "{}")
    except (yaml.YAMLError, RecursionError):
        docs = {}
    defaults = docs if isinstance(docs, dict) else {}
    effective = chart_scan.merge(defaults, consumer)
    kube = _kube_tags(effective, chart_scan.kube_version_tags(chart.templates), run.cluster_version)
    effective = chart_scan.merge(effective, kube.values)
    fmt = chart_scan.app_version_tag(chart.templates)
    app_tag = fmt.format(chart.app_version) if chart.app_version else None
    mine = _values_refs(effective, app_tag)
    base = _values_refs(defaults, app_tag)
    written = _values_refs(consumer, None)
    bitnami = _is_bitnami(chart, defaults)
    out: list[ImageRef] = []
    for i, (keys, ref) in enumerate(sorted(mine.items())):
        if ref.reference is None or _disabled(effective, keys) or keys in kube.unknown:
            continue
        own = written.get(keys)
        if own is not None and own.reference == ref.reference:
            continue  # the consumer writes this image in full: reported where it is written
        default = base.get(keys)
        where = "`" + ".".join(keys) + "`"
        if use.files and default is not None:
            # A chart in this repository: a default deployed as written is reported (and fixed)
            # in the chart's own values file; one the parent overrides is reported here.
            if default.reference == ref.reference:
                continue
            run.shadowed[(_local_values(use), ".".join(keys))] = (
                f"not deployed as written by {use_ref.path}: it deploys {ref.reference} "
                f"(its values at `{'.'.join(str(k) for k in (*use.site_keys, *keys))}` in {use.site})"
            )
        came = f"default of `{use.name}` {chart.version}, values.yaml key {where}"
        if default is not None and default.reference != ref.reference:
            came = (
                f"`{use.name}` {chart.version} values.yaml key {where}, with the repository's values applied"
            )
        site = ".".join(str(k) for k in (*use.site_keys, *keys))
        notes: tuple[str, ...] = (
            came,
            f"an override goes in {use.site or use_ref.path} at `{site}`",
            use.via,
        )
        if keys in kube.filled:
            notes += (
                f"tag from the cluster version {run.cluster_version} (cluster.version), as the templates do",
            )
        synthetic = ImageRef(
            path=use_ref.path,
            line=use_ref.line,
            column=use_ref.column + offset + i,  # one key per image of the chart, never the use's own
            source=Source.HELM_CHART,
            text=ref.text,
            parts=(),
            reference=ref.reference,
            skip=None,
            detail=came,
            context=Context(
                kind="chart default", name=f"{use.alias or use.name}", field=".".join(keys), notes=notes
            ),
            chart=use,
        )
        run.images[_chart_key(synthetic)] = _ChartImage(use, chart, keys, effective, app_tag, bitnami)
        out.append(synthetic)
    if depth == 0:
        for n, (sub_name, sub) in enumerate(sorted(chart.subcharts.items()), 1):
            sub_values = effective.get(sub_name) if isinstance(effective.get(sub_name), dict) else {}
            scoped = dict(sub_values)
            if isinstance(effective.get("global"), dict):
                scoped["global"] = chart_scan.merge(effective["global"], scoped.get("global") or {})
            sub_use = dataclasses.replace(
                use,
                name=f"{use.name}/{sub_name}",
                alias=None,
                values=json.dumps(scoped),
                site_keys=(*use.site_keys, sub_name),
            )
            out.extend(_chart_images(use_ref, sub_use, sub, run, depth=depth + 1, offset=offset + 100 * n))
    return out


def _local_values(use: ChartUse) -> str:
    """The values file of a chart kept in this repository (``file://charts/common``)."""
    top = use.repository.removeprefix("file://")
    return f"{top}/values.yaml" if top else "values.yaml"


@dataclass
class _KubeTags:
    values: dict[str, Any] = field(default_factory=dict)  # tags to merge into the effective values
    filled: set[tuple[str, ...]] = field(default_factory=set)
    unknown: set[tuple[str, ...]] = field(default_factory=set)  # no cluster.version: tag unknown


def _kube_tags(
    effective: Mapping[str, Any], wanted: Mapping[tuple[str, ...], str], cluster: str | None
) -> _KubeTags:
    """Tags the chart's templates take from the cluster's version, for images whose tag the
    values leave empty: from ``cluster.version`` when the repository says it, else unknown."""
    out = _KubeTags()
    parts = (cluster or "").removeprefix("v").split(".")
    for keys, fmt in wanted.items():
        image = _get(effective, list(keys))
        if not isinstance(image, dict) or image.get("tag") or image.get("digest"):
            continue
        if len(parts) < 2 or ("{patch}" in fmt and len(parts) < 3):
            out.unknown.add(keys)
            continue
        tag = fmt.format(major=parts[0], minor=parts[1], patch=parts[2] if len(parts) > 2 else "")
        here = out.values
        for k in keys:
            here = here.setdefault(k, {})
        here["tag"] = tag
        out.filled.add(keys)
    return out


def _disabled(values: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """Whether a component on the image's path is switched off (``metrics.enabled: false``):
    its image is never pulled, so its default is not worth a finding."""
    here: Any = values
    for k in keys[:-1]:
        if not isinstance(here, dict):
            return False
        here = here.get(k)
        if isinstance(here, dict) and here.get("enabled") is False:
            return True
    return False


def _advise_newer_charts(findings: list[Finding], run: ChartRun) -> list[Finding]:
    """A chart default that does not pull and that no rule can replace: when the repository lists
    a newer chart version, the right fix is likely to upgrade the chart; say so."""
    if not run.images:
        return findings  # no chart read: nothing to advise, and no registry module to import
    from bot.registry.charts import semver

    for f in findings:
        data = run.images.get(_chart_key(f.ref)) if f.ref.chart is not None else None
        if data is None or f.fix is not None or f.status not in _ROTTEN:
            continue
        newest, current = data.chart.newest, data.chart.version
        if newest and (semver(newest) or (0,)) > (semver(current) or (0,)):
            tip = (
                f"`{data.use.name}` {newest} is newer than {current}: a newer chart version may default "
                "to an image that still exists; upgrading the chart is likely the right fix."
            )
            f.advice = f"{f.advice} {tip}" if f.advice else tip
    return findings


_ROTTEN = frozenset({Status.TAG_MISSING, Status.REPO_MISSING, Status.DIGEST_MISSING, Status.AUTH_REQUIRED})


def _is_bitnami(chart: Chart, defaults: Mapping[str, Any]) -> bool:
    """Bitnami charts refuse images that are not Bitnami's unless told otherwise
    (``global.security.allowInsecureImages``, bitnami/charts#30850)."""
    g = defaults.get("global")
    if isinstance(g, dict) and isinstance(g.get("security"), dict) and "allowInsecureImages" in g["security"]:
        return True
    return "bitnami" in chart.chart_yaml.lower() or "common.images.image" in "".join(chart.templates.values())


def _plan_chart_override(ref: ImageRef, target: str, run: ChartRun) -> tuple[tuple[Edit, ...], str]:
    """The edit that writes an override making the chart use ``target`` for ``ref``'s image,
    in the consumer's values (``bot.edit.insert``), verified by reading the chart again; and a
    note for the pull request saying where and why."""
    from bot.edit import insert
    from bot.reference import parse

    data = run.images.get(_chart_key(ref))
    use = ref.chart
    if data is None or use is None:
        raise edit.EditError("this chart default is not known any more; scan again")
    if use.site_problem or use.site_text is None:
        raise edit.EditError(use.site_problem or "no values file takes an override for this chart")
    want = parse(target)
    current = _get(data.effective, data.field)
    items: list[tuple[tuple[str | int, ...], Any]] = []
    if isinstance(current, dict):
        registry_key = "registry" in current
        g = data.effective.get("global")
        global_reg = g.get("imageRegistry") if isinstance(g, dict) else None
        if global_reg and global_reg != want.domain:
            raise edit.EditError(
                f"global.imageRegistry ({global_reg}) applies to every image of the chart; "
                f"set the image `{'.'.join(data.field)}` by hand"
            )
        repo_key = next((k for k in ("repository", "name", "image") if k in current), "repository")
        hub = want.domain == "docker.io"
        path = (
            want.path.removeprefix("library/")
            if hub and "/" in want.path.removeprefix("library/")
            else want.path
        )
        if registry_key:
            items.append((("registry",), want.domain))
            items.append(((repo_key,), path))
        else:
            items.append(((repo_key,), path if hub else f"{want.domain}/{want.path}"))
        if want.tag is not None:
            items.append((("tag",) if "version" not in current else ("version",), want.tag))
        if want.digest is not None:
            items.append((("digest",), want.digest))
        elif current.get("digest"):
            items.append((("digest",), ""))
    elif isinstance(current, str):
        items.append(((), want.familiar()))
    else:
        raise edit.EditError(f"`{'.'.join(data.field)}` is not an image map or string in the chart's values")
    prefix = (*use.site_keys, *data.field)
    sets = [((*data.field, *k) if use.site_in_string else (*prefix, *k), v) for k, v in items]
    where = ".".join(str(k) for k in prefix)
    note = (
        f"The image is a default of the chart `{data.use.name}` {data.chart.version} (values.yaml key "
        f"`{'.'.join(data.field)}`); the override goes in `{use.site}` at `{where}`."
    )
    if data.bitnami and not want.path.startswith("bitnami/"):
        note += (
            " Bitnami charts refuse images that are not Bitnami's unless "
            "`global.security.allowInsecureImages` is true (bitnami/charts#30850), so this change sets it."
        )
        # Bitnami charts refuse any other image unless told so; at the top level a parent chart's
        # global reaches its sub-charts.
        # Globals reach every sub-chart from the top of the values: a parent chart's own values.yaml
        # root, or the root of the values given to the chart used (a sub-chart adds a key level).
        base = use.site_keys[: len(use.site_keys) - use.name.count("/")]
        top = base[:-1] if use.via == "Chart.yaml dependency" else base
        sets.append(
            ((() if use.site_in_string else top) + ("global", "security", "allowInsecureImages"), True)
        )
    text = use.site_text
    for keys, value in sets:
        text = _set_at_site(text, use, keys, value)
    _check_override(text, data, str(want))
    run.planned[_chart_key(ref)] = (sets, str(want))
    one = insert.edit(use.site, (use.site_text or "").encode("utf-8"), text.encode("utf-8"), anchored=True)
    return ((one,) if one is not None else ()), note


def _set_at_site(text: str, use: ChartUse, keys: Sequence[str | int], value: Any) -> str:
    """Set ``keys`` in the consumer's values: in the file, or inside its YAML string."""
    from bot.edit import insert

    if use.site_in_string:
        return insert.set_value_in_string(text, use.site_keys, keys, value, document=use.site_document)
    return insert.set_value(text, list(keys), value, document=use.site_document)


def _check_override(text: str, data: _ChartImage, want: str) -> None:
    """The chart, given the edited values, must use ``want`` for the image."""
    effective = _merge_chart(data, _site_values(text, data.use))
    got = _values_refs(effective, data.app_tag).get(data.field)
    if got is None or got.reference != want:
        raise edit.EditError(
            f"the override would make the chart use {got.reference if got else 'nothing'}, not {want}"
        )


def _combine_chart_overrides(findings: Sequence[Finding], run: ChartRun) -> None:
    """Overrides for several images of one values file all insert near the same place, so their
    separate edits would collide; each gets the one edit that writes them all (the splice engine
    applies an identical edit once), checked for every image it overrides."""
    from bot.edit import insert

    groups: dict[tuple[str, int], list[Finding]] = {}
    for f in findings:
        if f.ref.chart is not None and f.fix is not None and f.fix.edits and _chart_key(f.ref) in run.planned:
            groups.setdefault((f.ref.chart.site, f.ref.chart.site_document), []).append(f)
    for group in groups.values():
        if len(group) < 2:
            continue
        use = group[0].ref.chart
        assert use is not None and use.site_text is not None
        text = use.site_text
        try:
            for f in group:
                sets, _ = run.planned[_chart_key(f.ref)]
                for keys, value in sets:
                    text = _set_at_site(text, use, keys, value)
            for f in group:
                _check_override(text, run.images[_chart_key(f.ref)], run.planned[_chart_key(f.ref)][1])
        except edit.EditError:
            continue  # each keeps its own edit; the first applies, the next run does the others
        one = insert.edit(use.site, use.site_text.encode("utf-8"), text.encode("utf-8"), anchored=True)
        for f in group:
            assert f.fix is not None
            f.fix = dataclasses.replace(f.fix, edits=(one,) if one is not None else ())


def _get(values: Any, keys: Sequence[str]) -> Any:
    for k in keys:
        if not isinstance(values, dict):
            return None
        values = values.get(k)
    return values


def _site_values(text: str, use: ChartUse) -> dict[str, Any]:
    """The consumer's values for the chart as the edited site file gives them (before the
    other sources Argo CD or Flux merge, which the edit does not touch)."""
    docs = list(yaml.safe_load_all(text))
    here: Any = docs[use.site_document] if use.site_document < len(docs) else {}
    if use.via == "Chart.yaml dependency":
        g = here.get("global") if isinstance(here, dict) else None
        here = _get(here, [str(k) for k in use.site_keys]) or {}
        if isinstance(g, dict):
            here = {**here, "global": {**g, **(here.get("global") or {})}}
        return here if isinstance(here, dict) else {}
    for k in use.site_keys:
        here = (
            here[k]
            if isinstance(here, list) and isinstance(k, int) and k < len(here)
            else (here.get(k) if isinstance(here, dict) else None)
        )
    if use.site_in_string and isinstance(here, str):
        here = yaml.safe_load(here)
    return here if isinstance(here, dict) else {}


def _merge_chart(data: _ChartImage, site_values: Mapping[str, Any]) -> dict[str, Any]:
    from bot.scan import charts as chart_scan

    return dict(chart_scan.merge(data.effective, dict(site_values)))
