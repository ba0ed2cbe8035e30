"""The ``pullable`` command: the same engine as the App, on a local checkout.

Subcommands register themselves with :func:`command`; each is one function that receives the
parsed arguments and returns an exit code (:data:`EXIT_CODES`). Heavy imports happen inside the
commands so ``pullable --help`` and ``pullable check --offline`` answer fast. Whatever goes
wrong ends in one line on stderr, never a traceback (``PULLABLE_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.report import printable

if TYPE_CHECKING:
    from bot import pipeline
    from bot.model import Finding, ImageRef, Resolution
    from bot.registry import Registry, RegistryConfig
    from bot.repoconfig import RepoConfig
    from bot.rules import RuleTable
    from bot.scan import ScanResult

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  done (no finding at or above --fail-on)
  1  findings at or above --fail-on
  2  usage or configuration error (bad option, missing path, unwritable --output, bad config)
  3  internal error (a bug: please report it; PULLABLE_DEBUG=1 shows the traceback)"""

Setup = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[str, Setup, Run]] = {}


class UsageError(Exception):
    """A problem with what the user asked for (exit 2, message on stderr)."""


def command(name: str, help: str, setup: Setup) -> Callable[[Run], Run]:
    """Register a subcommand: ``setup`` adds its arguments, the decorated function runs it."""

    def register(run: Run) -> Run:
        _COMMANDS[name] = (help, setup, run)
        return run

    return register


def _max_file_arg(p: argparse.ArgumentParser) -> None:
    default = os.environ.get("PULLABLE_MAX_FILE_BYTES")
    p.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        default=int(default) / (1 << 20) if default and default.strip().isdigit() else 32.0,
        help="skip (and report) files larger than this; default 32, or $PULLABLE_MAX_FILE_BYTES",
    )


def _max_bytes(args: argparse.Namespace) -> int:
    return max(1, int(args.max_file_mb * (1 << 20)))


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("PULLABLE_CONFIG"),
        help="operator configuration (registries, credentials, network, rules); default $PULLABLE_CONFIG",
    )
    p.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="more rule files (*.yaml, validated like the built-ins), read in file-name order "
        "together with the built-in ones; may be repeated",
    )


def _registry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="ask the registries afresh: do not read or write the on-disk cache of their answers "
        "(not-found answers are otherwise kept for 5 minutes)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where registry answers are cached; default $PULLABLE_DATA_DIR, else ~/.local/share/pullable",
    )
    p.add_argument(
        "--no-docker-login",
        action="store_true",
        help="do not use your Docker login ($DOCKER_CONFIG/config.json or ~/.docker/config.json: "
        "auths, credsStore, credHelpers)",
    )


def _operator(args: argparse.Namespace) -> RegistryConfig:
    """The operator configuration (``--config``), read once and checked even when offline."""
    from bot.registry import ConfigError, RegistryConfig

    cached = getattr(args, "_operator", None)
    if cached is not None:
        return cached
    try:
        config = RegistryConfig.load(args.config) if args.config else RegistryConfig()
    except (ConfigError, OSError) as exc:
        raise UsageError(f"configuration: {exc}") from None
    args._operator = config
    return config


def _open_registry(args: argparse.Namespace) -> Registry:
    """The registry client for this run: the operator's configuration, the user's own Docker
    login (the CLI runs as the user; the App never reads it) and the cache the flags choose."""
    import sqlite3

    from bot.registry import ConfigError, MemoryStore, Registry, SQLiteStore, Store
    from bot.registry.dockerconfig import user_config_path

    config = _operator(args)
    if not getattr(args, "no_docker_login", False):
        path = user_config_path()
        try:
            config = config.with_docker_login(path, warn=_warn)
        except ConfigError as exc:
            raise UsageError(f"your Docker login: {exc}") from None
    store: Store | None = None
    if getattr(args, "no_cache", False):
        store = MemoryStore()
    elif getattr(args, "cache_dir", None):
        try:
            store = SQLiteStore(Path(args.cache_dir) / "registry-cache.sqlite3")
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"--cache-dir {args.cache_dir}: cannot use it: {exc}") from None
    return Registry(config, store=store)


def _warn(message: str) -> None:
    sys.stderr.write(f"pullable: {printable(message)}\n")


def _progress(
    label: str = "scanning", min_total: int = 200, every: int = 50
) -> Callable[[int, int], None] | None:
    """A one-line bar on stderr for a phase of ``total`` steps, only on a terminal and only when
    the phase is long enough to be worth one; wiped when done."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total < min_total:
            return
        if done == total or done % every == 0:
            width = 30
            filled = width * done // total
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done == total:
                sys.stderr.write("\r" + " " * (width + len(label) + 30) + "\r")
            sys.stderr.flush()

    return show


class _Reporting:
    """The registry as the pipeline sees it, showing progress while it is asked: the batch of
    checks in chunks (a bar), and the rules' follow-up questions (tags, digests) as a counter."""

    CHUNK = 64

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.workers = getattr(registry, "workers", 1)  # the rules ask side by side (pipeline.decide)
        self.asked = 0
        self._lock = threading.Lock()
        self.tty = sys.stderr.isatty()

    def check_many(self, references: Iterable[str]) -> dict[str, Resolution]:
        wanted = list(dict.fromkeys(references))
        if not self.tty or not wanted:
            return self.registry.check_many(wanted)  # one batch: all of it in parallel
        if len(wanted) <= self.CHUNK:
            sys.stderr.write(f"\rchecking {len(wanted)} image(s) on their registries...")
            sys.stderr.flush()
            try:
                return self.registry.check_many(wanted)
            finally:
                self._wipe()
        show = _progress("checking images", min_total=1, every=1)
        assert show is not None  # stderr is a terminal
        out: dict[str, Resolution] = {}
        for i in range(0, len(wanted), self.CHUNK):
            out.update(self.registry.check_many(wanted[i : i + self.CHUNK]))
            show(min(i + self.CHUNK, len(wanted)), len(wanted))
        return out

    @property
    def config(self) -> RegistryConfig:
        """The operator configuration (bot.pullsecrets asks which hosts have credentials)."""
        return self.registry.config

    def check(self, reference: str) -> Resolution:
        self._tick()
        return self.registry.check(reference)

    def tags(self, name: str) -> Sequence[str]:
        self._tick()
        return self.registry.tags(name)

    def pinned_digest(self, reference: str) -> str | None:
        self._tick()
        return self.registry.pinned_digest(reference)

    def platforms(self, reference: str) -> tuple[str, ...]:
        self._tick()
        return self.registry.platforms(reference)

    def _tick(self) -> None:
        with self._lock:  # the rules' lookups come from several threads
            self.asked += 1
            if self.tty:
                sys.stderr.write(f"\rverifying fixes: {self.asked} registry lookup(s)")
                sys.stderr.flush()

    def _wipe(self) -> None:
        sys.stderr.write("\r" + " " * 60 + "\r")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.asked:
            self._wipe()


@contextlib.contextmanager
def _lookups(args: argparse.Namespace, needed: bool = True) -> Iterator[_Reporting | None]:
    """The registry for the run (None with ``--offline``, or when there is nothing to ask:
    then no client is started, which keeps a scan of an empty tree fast), closed afterwards."""
    if getattr(args, "offline", False) or not needed:
        if getattr(args, "config", None):
            _operator(args)  # a bad --config is an error offline too
        yield None
        return
    registry = _open_registry(args)
    reporting = _Reporting(registry)
    try:
        yield reporting
    finally:
        reporting.done()
        registry.close()


# --- scan --------------------------------------------------------------------------------------


def _scan_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path", nargs="+", help="a directory (or one file) to scan; or files of the --root repository"
    )
    p.add_argument(
        "--root",
        metavar="DIR",
        help="read the given files as paths of the repository at DIR (its .github/pullable.yml, its "
        "variables); the default when several files are given is the current directory",
    )
    p.add_argument("--offline", action="store_true", help="parse and normalise only; contact no registry")
    p.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument(
        "--only",
        choices=("problems",),
        help="show only what needs attention: references that will or may not pull, or that a rule "
        "fires on (display only: --fail-on still judges every finding)",
    )
    p.add_argument(
        "--severity",
        choices=("error", "warning", "note"),
        help="show only findings at or above this level (display only)",
    )
    p.add_argument(
        "--sarif-unchecked",
        action="store_true",
        help="SARIF: also report references that were not checked (offline, templated) as notes",
    )
    _fail_on_arg(p)
    _repo_config_arg(p)
    _config_arg(p)
    _registry_args(p)
    _max_file_arg(p)


def _output_ok(args: argparse.Namespace) -> None:
    """Refuse an --output that cannot be written before the scan, not after it."""
    out = getattr(args, "output", None)
    if not out:
        return
    p = Path(out)
    if p.is_dir():
        raise UsageError(f"--output {out}: is a directory; give a file name")
    if not p.parent.is_dir():
        raise UsageError(f"--output {out}: directory {p.parent} does not exist")


def _write(args: argparse.Namespace, text: str) -> None:
    if getattr(args, "output", None):
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {args.output}: cannot write: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


KINDS = (
    "Kubernetes manifests, Helm values and templates, kustomize, compose, Dockerfiles/Containerfiles, "
    "Ansible, GitHub Actions, GitLab CI, Argo CD, Flux, Jinja templates"
)


def _scan_target(target: Path, config: RepoConfig, what: str, max_bytes: int) -> tuple[Path, ScanResult]:
    """Scan a directory, or one file (its directory standing in for the repository); returns the
    repository root and the result. A file no finder claims is an error that says so."""
    from bot.scan import scan_single, scan_tree

    if target.is_dir():
        result = scan_tree(target, ignore=config.ignore_paths, progress=_progress(), max_bytes=max_bytes)
        if result.files == 0 and not result.errors:
            _warn(f"{what}: no file here is of a kind Pullable reads ({KINDS})")
        return target, result
    result = scan_single(target, max_bytes=max_bytes)
    if result.files == 0 and not result.errors:
        raise UsageError(
            f"{what}: no finder claims this file, so it has no references to check; Pullable reads {KINDS}"
        )
    return target.resolve().parent, result


def git_origin(root: Path) -> str | None:
    """The checkout's ``origin`` URL (``git remote get-url origin``): this repository's address,
    for telling whether a Flux GitRepository names it. Asked only when a chart comes from a
    GitRepository (the pipeline calls this lazily), so a scan pays for it only then; None when
    there is no git, no ``origin``, or git refuses the checkout (owned by someone else). Reading a
    remote's URL runs no hook, filter or fsmonitor of the checkout."""
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments; the root is the user's own checkout
            [git, "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    url = done.stdout.strip()
    return url if done.returncode == 0 and url else None


def _width() -> int:
    return max(shutil.get_terminal_size((100, 24)).columns, 40)


@command("scan", "report every image reference under PATH", _scan_setup)
def scan_command(args: argparse.Namespace) -> int:
    from bot import report
    from bot.scan import LocalRepo

    _output_ok(args)
    root, result, config, table = _scan_paths(args)
    # Pull secrets are judged over a whole repository (a file, or a few, would miss the Secrets and
    # ServiceAccounts defined elsewhere); the checkout is read to plan their fixes.
    whole = args.root is None and len(args.path) == 1 and Path(args.path[0]).is_dir()
    facts = result.facts if whole else None
    findings: list[Finding] = []
    if result.refs:  # nothing to evaluate: the pipeline (and what it imports) is not loaded
        from bot import pipeline

        reader = LocalRepo(root)
        with _lookups(args, needed=True) as lookup:
            findings = pipeline.evaluate(
                result.refs, lookup, config, table, facts=facts, reader=reader, here=lambda: git_origin(root)
            )
    shown = report.select(findings, args.only, args.severity)
    if args.format == "json":
        _write(args, report.to_json(shown, result.errors))
    elif args.format == "sarif":
        helps = {r.id: r.why for r in table.rules}
        _write(args, report.to_sarif(shown, result.errors, rule_help=helps, unchecked=args.sarif_unchecked))
    else:
        width = _width() if not args.output else 1000
        _write(args, report.to_table(shown, result.errors, result.files, width=width, total=len(findings)))
    return _exit_for(findings, args.fail_on)


def _scan_paths(args: argparse.Namespace) -> tuple[Path, ScanResult, RepoConfig, RuleTable]:
    """One directory or file as given; or files inside a repository (``--root``, or several
    files: the pre-commit hook), read by their path there so finders claim them as in a full scan.
    Returns the repository root with the result."""
    from bot.scan import LocalRepo, ScanResult, scan_file

    for given in args.path:
        if not Path(given).exists():
            raise UsageError(f"{given}: no such file or directory")
    if args.root is None and len(args.path) == 1:
        target = Path(args.path[0])
        config, table = _repo_rules(target, args)
        found_in, result = _scan_target(target, config, args.path[0], _max_bytes(args))
        return found_in, result, config, table
    root = Path(args.root or ".")
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    config, table = _repo_rules(root, args)
    repo, out = LocalRepo(root, _max_bytes(args)), ScanResult()
    for given in args.path:
        rel = os.path.relpath(Path(given).resolve(), repo.root)
        if Path(given).is_dir() or rel.startswith(".."):
            raise UsageError(f"{given}: not a file inside {root} (give files with --root or several paths)")
        one = scan_file(rel, repo.read_bytes(rel) or b"", repo, max_bytes=_max_bytes(args))
        out.refs += one.refs
        out.errors += one.errors
        out.files += one.files
        out.bytes += one.bytes
    return root, out, config, table


# --- rules, fix and --fail-on -----------------------------------------------------------------


def _fail_on_arg(p: argparse.ArgumentParser, default: str = "never") -> None:
    p.add_argument(
        "--fail-on",
        choices=("error", "warning", "note", "never"),
        default=default,
        help="exit 1 when a finding is at or above this level: error (will not pull), warning (may not "
        f"pull, or a rule fires), note (any finding); default {default}",
    )


def _repo_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repo-config",
        metavar="FILE",
        help="repository configuration to use instead of PATH/.github/pullable.yml",
    )


def _repo_rules(target: Path | None, args: argparse.Namespace) -> tuple[RepoConfig, RuleTable]:
    """The rule table (built-in, plus the operator's and ``--rules`` directories) and the
    repository's config (PATH/.github/pullable.yml, or --repo-config); a bad rule file or config
    is a usage error with the file and field, never a traceback."""
    from bot import repoconfig, rules
    from bot.scan import LocalRepo

    # No --config: no operator rules, and no need to import the registry package (start-up).
    extra = [*(_operator(args).rules if getattr(args, "config", None) else ()), *getattr(args, "rules", [])]
    try:
        table = rules.load_layered(extra) if extra else rules.load()
        given = getattr(args, "repo_config", None)
        if given:
            config = repoconfig.load(
                Path(given).read_text(encoding="utf-8"), table=table, origin=given, alone=True
            )
        elif target is not None and target.is_dir():
            config = repoconfig.read(LocalRepo(target), table, alone=True)
        else:
            config = repoconfig.RepoConfig()
    except (rules.RuleError, repoconfig.ConfigError) as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"repository configuration: {exc}") from None
    if config.extends:
        _warn(
            f"{config.path}: _extends: {config.extends} is read by the App from GitHub; "
            "here the file is used alone (pass the merged file with --repo-config)"
        )
    return config, table


def _exit_for(findings: Iterable[Finding], fail_on: str) -> int:
    findings = list(findings)
    if not findings:
        return EXIT_OK  # nothing can fail: the pipeline need not be imported to say so
    from bot import pipeline

    return EXIT_FINDINGS if pipeline.fails(findings, fail_on) else EXIT_OK


def _fix_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the repository checkout (or one file) to fix")
    p.add_argument("--dry-run", action="store_true", help="print a unified diff instead of changing files")
    _fail_on_arg(p)
    _repo_config_arg(p)
    _config_arg(p)
    _registry_args(p)
    _max_file_arg(p)
    p.epilog = (
        "--fail-on judges what the fix leaves: findings it could not fix (or, with --dry-run, would not)."
    )


@command("fix", "fix rotten image references under PATH in place", _fix_setup)
def fix_command(args: argparse.Namespace) -> int:
    import difflib

    from bot import pipeline
    from bot.scan import LocalRepo

    target = Path(args.path)
    if not target.exists():
        raise UsageError(f"{args.path}: no such file or directory")
    config, table = _repo_rules(target, args)
    root, scanned = _scan_target(target, config, args.path, _max_bytes(args))
    repo = LocalRepo(root, _max_bytes(args))
    with _lookups(args) as lookup:
        facts = scanned.facts if target.is_dir() else None  # a whole repository only, as scan
        result = pipeline.run(
            repo, scanned.refs, lookup, config, table, facts=facts, here=lambda: git_origin(root)
        )
    out = sys.stdout
    if args.dry_run:
        for path, new in sorted(result.files.items()):
            old = (repo.read_bytes(path) or b"").decode("utf-8", "replace").splitlines(keepends=True)
            diff = difflib.unified_diff(old, new.decode("utf-8", "replace").splitlines(keepends=True),
                                        f"a/{printable(path)}", f"b/{printable(path)}")  # fmt: skip
            sys.stdout.writelines(diff)
        out = sys.stderr  # the diff owns stdout, so `fix --dry-run > fix.patch` works
    else:
        for path, new in sorted(result.files.items()):
            try:
                (root / path).write_bytes(new)
            except OSError as exc:
                raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    out.write(fix_table(result, dry_run=args.dry_run))
    for e in scanned.errors:
        sys.stderr.write(f"pullable: {printable(e.path)}: {printable(e.message)}\n")
    fixed = {f.ref.key for f in result.applied}
    return _exit_for((f for f in result.findings if f.ref.key not in fixed), args.fail_on)


def fix_table(result: pipeline.Result, *, dry_run: bool = False) -> str:
    """file:line  before -> after  [rule]  why, then what was only advised, then a summary. A
    note or advice shared by several references is printed in full once, with their number;
    the others point back to it."""
    counts: dict[str, int] = {}
    advised = [f for f in result.findings if f.advice and f not in result.applied]
    for text in [f.fix.advice for f in result.applied if f.fix] + [f.advice for f in advised]:
        if text:
            counts[text] = counts.get(text, 0) + 1
    first: dict[str, str] = {}

    def say(text: str, where: str) -> str:
        if text in first:
            return f"as for {first[text]}"
        first[text] = where
        return (f"({counts[text]} references) " if counts[text] > 1 else "") + text

    lines: list[str] = []
    for f in sorted(result.applied, key=lambda f: f.ref.key):
        assert f.fix is not None
        why = f.fix.why.split(". ")[0].replace("\n", " ").rstrip(".")
        lines.append(
            printable(f"{f.ref.path}:{f.ref.line}  {f.fix.before} -> {f.fix.after}  [{f.fix.rule}]  {why}")
        )
        if f.fix.advice:
            lines.append(printable(f"    note: {say(f.fix.advice, f'{f.ref.path}:{f.ref.line}')}"))
    for f in sorted(advised, key=lambda f: f.ref.key):
        assert f.advice is not None
        where = f"{f.ref.path}:{f.ref.line}"
        lines.append(printable(f"{where}  {f.ref.text}  [{f.rule}]  advice: {say(f.advice, where)}"))
    files = len(result.files)
    verb = "would change" if dry_run else "changed"
    lines.append(
        f"{len({f.ref.key for f in result.applied})} reference(s) fixed, {verb} {files} file(s); "
        f"{len(advised)} advised; {len(result.dropped)} edit(s) dropped"
    )
    return "\n".join(lines) + "\n"


# --- check -------------------------------------------------------------------------------------


def _check_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("refs", nargs="+", metavar="REF", help="image references, e.g. nginx:1.27")
    p.add_argument("--offline", action="store_true", help="parse and normalise only")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _fail_on_arg(p, default="error")
    _repo_config_arg(p)
    _config_arg(p)
    _registry_args(p)


def _command_line_ref(i: int, text: str) -> ImageRef:
    """A reference typed on the command line, as if a file held it (argument ``i`` is line ``i``),
    so that it goes through the same rules as a scan."""
    from bot.model import ImageRef, Part, Role, Skip, Source, Span
    from bot.reference import ReferenceError, parse

    span = Span(0, len(text.encode("utf-8", "surrogateescape")), i, 1)
    try:
        reference, skip, detail = str(parse(text)), None, None
    except ReferenceError as exc:
        reference, skip, detail = None, Skip.INVALID, str(exc)
    return ImageRef("<command line>", i, 1, Source.YAML, text, (Part(Role.IMAGE, text, span),),
                    reference, skip, detail)  # fmt: skip


@command("check", "inspect image references (with the fix or advice a scan would give)", _check_setup)
def check_command(args: argparse.Namespace) -> int:
    import json

    from bot import pipeline, report
    from bot.model import Status
    from bot.reference import parse

    config, table = _repo_rules(None, args)
    refs = [_command_line_ref(i, text) for i, text in enumerate(args.refs, 1)]
    with _lookups(args) as lookup:
        findings = pipeline.evaluate(refs, lookup, config, table)
    results: list[dict[str, object]] = []
    for f in findings:
        ev = f.evidence
        results.append({
            "input": f.ref.text,
            "valid": f.ref.reference is not None,
            "reference": f.ref.reference,
            "error": f.ref.detail if f.ref.reference is None else None,
            "familiar": parse(f.ref.reference).familiar() if f.ref.reference else None,
            "status": str(f.status),
            "digest": ev.digest if ev else None,
            "detail": ev.detail if ev else f.ref.detail,
            "level": report.level(f),
            "rule": f.rule,
            "fix": None if f.fix is None else {"after": f.fix.after, "target": f.fix.target,
                                                "digest": f.fix.digest, "why": f.fix.why},
            "advice": f.advice or (f.fix.advice if f.fix else None),
            **({"evidence": {"http_status": ev.http_status, "error_code": ev.error_code,
                             "checked_at": ev.checked_at, "platforms": list(ev.platforms),
                             "cached_age_s": ev.cached_age_s}} if ev else {}),
        })  # fmt: skip
    if args.format == "json":
        sys.stdout.write(json.dumps({"results": results}, indent=2) + "\n")
        return _exit_for(findings, args.fail_on)
    width = _width()
    in_w = min(max(len(f.ref.text) for f in findings), 40)

    def status(f: Finding) -> str:
        cached = report.cached_note(f)
        return f"{f.status} ({cached})" if cached and f.status is not Status.OK else str(f.status)

    st_w = max(len(status(f)) for f in findings)
    for f in findings:
        shown = f.ref.reference or f.ref.detail or ""
        extra = f"  {f.evidence.digest}" if f.evidence and f.evidence.digest else ""
        text = f.ref.text if len(f.ref.text) <= in_w else f.ref.text[: in_w - 1] + "…"
        line = printable(f"{text:<{in_w}}  {status(f):<{st_w}}  {shown}{extra}")
        sys.stdout.write(line[:width].rstrip() + "\n")
        if f.fix is not None and f.fix.edits:
            sys.stdout.write(printable(f"  -> {f.fix.after}  [{f.fix.rule}]") + "\n")
        for note in dict.fromkeys((f.advice, f.fix.advice if f.fix else None)):
            if note:
                text = printable(" ".join(note.split()))
                sys.stdout.write(textwrap.fill(text, width, initial_indent="  ! ",
                                               subsequent_indent="    ") + "\n")  # fmt: skip
    return _exit_for(findings, args.fail_on)


# --- the App --------------------------------------------------------------------------------------


# What `pip install 'pullable[app]'` adds (import names); the CLI's own commands need none of it.
APP_MODULES = frozenset({"flask", "werkzeug", "markupsafe", "gunicorn", "huey", "redis", "prometheus_client",
                         "github", "jwt", "cryptography", "markdown_it"})  # fmt: skip


def _no_args(p: argparse.ArgumentParser) -> None:
    from importlib import resources

    listed = resources.files("bot").joinpath("env.example")
    p.epilog = f"Configured from the environment: every setting, with its default, is listed in {listed}"


def _needs_app(command: str, exc: ModuleNotFoundError) -> UsageError:
    """A missing web/queue package is an install choice, not a crash: say which extra to add."""
    top = (exc.name or "").partition(".")[0]
    if top not in APP_MODULES:
        raise exc
    return UsageError(
        f"`pullable {command}` needs the App's packages ({top} is missing): pip install 'pullable[app]'"
    )


@command("serve", "run the webhook receiver (gunicorn on $HOST:$PORT, default 127.0.0.1:3000)", _no_args)
def serve_command(args: argparse.Namespace) -> int:
    from bot.settings import SettingsError

    try:
        from bot.web import serve

        return serve()
    except ModuleNotFoundError as exc:
        raise _needs_app("serve", exc) from None
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


@command("worker", "run a job worker (huey: SQLite under $PULLABLE_DATA_DIR, or $REDIS_URL)", _no_args)
def worker_command(args: argparse.Namespace) -> int:
    from bot.settings import SettingsError

    try:
        from bot.jobs.worker import main as worker_main

        return worker_main()
    except ModuleNotFoundError as exc:
        raise _needs_app("worker", exc) from None
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


# --- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from bot import __version__

    parser = argparse.ArgumentParser(
        prog="pullable",
        description="Keep every container image reference in a repository pullable.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pullable {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, setup, run) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        setup(p)
        p.epilog = f"{p.epilog}\n\n{EXIT_CODES}" if p.epilog else EXIT_CODES
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        sys.stderr.write(f"pullable: {printable(str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # one line, not a traceback, and a code of its own
        if os.environ.get("PULLABLE_DEBUG"):
            raise
        sys.stderr.write(
            f"pullable: internal error: {type(exc).__name__}: {exc}\n"
            "pullable: this is a bug; please report it (PULLABLE_DEBUG=1 shows the traceback)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
