"""The ``pullable`` command: the same engine as the App, on a local checkout.

Subcommands register themselves with :func:`command`; each is one function that receives the
parsed arguments and returns an exit code (0 done, 1 findings at or above ``--fail-on``, 2 usage
or configuration error). Heavy imports happen inside the commands so ``pullable --help`` and
``pullable check --offline`` answer fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.report import printable

if TYPE_CHECKING:
    from bot import pipeline
    from bot.model import Finding
    from bot.registry import Registry
    from bot.repoconfig import RepoConfig
    from bot.rules import RuleTable

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

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


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("PULLABLE_CONFIG"),
        help="operator configuration (registries, credentials, network); default $PULLABLE_CONFIG",
    )


def _open_registry(args: argparse.Namespace) -> Registry:
    from bot.registry import ConfigError, Registry

    try:
        return Registry.from_file(args.config)
    except (ConfigError, OSError) as exc:
        raise UsageError(f"configuration: {exc}") from None


def _progress() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total < 200:
            return
        if done == total or done % 50 == 0:
            width = 30
            filled = width * done // total
            sys.stderr.write(f"\rscanning [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done == total:
                sys.stderr.write("\r" + " " * (width + 30) + "\r")
            sys.stderr.flush()

    return show


# --- scan --------------------------------------------------------------------------------------


def _scan_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a directory (or one file) to scan")
    p.add_argument("--offline", action="store_true", help="parse and normalise only; contact no registry")
    p.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    _fail_on_arg(p)
    _repo_config_arg(p)
    _config_arg(p)


def _write(args: argparse.Namespace, text: str) -> None:
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@command("scan", "report every image reference under PATH", _scan_setup)
def scan_command(args: argparse.Namespace) -> int:
    from bot import pipeline, report
    from bot.scan import scan_single, scan_tree

    target = Path(args.path)
    if not target.exists():
        raise UsageError(f"{args.path}: no such file or directory")
    config, table = _repo_rules(target, args)
    result = scan_tree(target, progress=_progress()) if target.is_dir() else scan_single(target)
    if args.offline:
        findings = pipeline.evaluate(result.refs, None, config, table)
    else:
        registry = _open_registry(args)
        try:
            findings = pipeline.evaluate(result.refs, registry, config, table)
        finally:
            registry.close()
    if args.format == "json":
        _write(args, report.to_json(findings, result.errors))
    elif args.format == "sarif":
        _write(args, report.to_sarif(findings, result.errors))
    else:
        _write(args, report.to_table(findings, result.errors, result.files))
    return _exit_for(findings, args.fail_on)


# --- rules, fix and --fail-on -----------------------------------------------------------------


def _fail_on_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fail-on",
        choices=("error", "warning", "note", "never"),
        default="never",
        help="exit 1 when a finding is at or above this level: error (will not pull), warning (may not "
        "pull, or a rule fires), note (any finding); default never",
    )


def _repo_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repo-config",
        metavar="FILE",
        help="repository configuration to use instead of PATH/.github/pullable.yml",
    )


def _repo_rules(target: Path, args: argparse.Namespace) -> tuple[RepoConfig, RuleTable]:
    """The rule table and the repository's config (PATH/.github/pullable.yml, or --repo-config);
    a bad rule file or config is a usage error with the file and field, never a traceback."""
    from bot import repoconfig, rules
    from bot.scan import LocalRepo

    try:
        table = rules.load()
        given = getattr(args, "repo_config", None)
        if given:
            return repoconfig.load(Path(given).read_text(encoding="utf-8"), table=table, origin=given), table
        if target.is_dir():
            return repoconfig.read(LocalRepo(target), table), table
        return repoconfig.RepoConfig(), table
    except (rules.RuleError, repoconfig.ConfigError) as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"repository configuration: {exc}") from None


def _exit_for(findings: list[Finding], fail_on: str) -> int:
    from bot import pipeline

    return EXIT_FINDINGS if pipeline.fails(findings, fail_on) else EXIT_OK


def _fix_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the repository checkout to fix")
    p.add_argument("--dry-run", action="store_true", help="print a unified diff instead of changing files")
    _repo_config_arg(p)
    _config_arg(p)


@command("fix", "fix rotten image references under PATH in place", _fix_setup)
def fix_command(args: argparse.Namespace) -> int:
    import difflib

    from bot import pipeline
    from bot.scan import LocalRepo, scan_tree

    root = Path(args.path)
    if not root.is_dir():
        raise UsageError(f"{args.path}: not a directory")
    config, table = _repo_rules(root, args)
    scanned = scan_tree(root, ignore=config.ignore_paths, progress=_progress())
    repo = LocalRepo(root)
    registry = _open_registry(args)
    try:
        result = pipeline.run(repo, scanned.refs, registry, config, table)
    finally:
        registry.close()
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
            (root / path).write_bytes(new)
    out.write(fix_table(result, dry_run=args.dry_run))
    for e in scanned.errors:
        sys.stderr.write(f"pullable: {printable(e.path)}: {printable(e.message)}\n")
    return EXIT_OK


def fix_table(result: pipeline.Result, *, dry_run: bool = False) -> str:
    """file:line  before -> after  [rule]  why, then what was only advised, then a summary."""
    lines: list[str] = []
    for f in sorted(result.applied, key=lambda f: f.ref.key):
        assert f.fix is not None
        why = f.fix.why.split(". ")[0].replace("\n", " ").rstrip(".")
        lines.append(
            printable(f"{f.ref.path}:{f.ref.line}  {f.fix.before} -> {f.fix.after}  [{f.fix.rule}]  {why}")
        )
        if f.fix.advice:
            lines.append(f"    note: {printable(f.fix.advice)}")
    advised = [f for f in result.findings if f.advice and f not in result.applied]
    for f in sorted(advised, key=lambda f: f.ref.key):
        lines.append(printable(f"{f.ref.path}:{f.ref.line}  {f.ref.text}  [{f.rule}]  advice: {f.advice}"))
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
    _config_arg(p)


@command("check", "inspect image references", _check_setup)
def check_command(args: argparse.Namespace) -> int:
    import json

    from bot.reference import ReferenceError, parse

    results: list[dict[str, object]] = []
    for text in args.refs:
        try:
            ref = parse(text)
            results.append({"input": text, "valid": True, "reference": str(ref), "error": None,
                            "familiar": ref.familiar(), "status": "unchecked", "digest": None,
                            "detail": None})  # fmt: skip
        except ReferenceError as exc:
            results.append({"input": text, "valid": False, "reference": None, "error": str(exc),
                            "familiar": None, "status": "invalid", "digest": None,
                            "detail": str(exc)})  # fmt: skip
    if not args.offline:
        registry = _open_registry(args)
        try:
            valid = [str(r["reference"]) for r in results if r["valid"]]
            answers = registry.check_many(valid)
            for r in results:
                ans = answers.get(str(r["reference"])) if r["valid"] else None
                if ans is not None:
                    r["status"] = str(ans.status)
                    r["digest"] = ans.evidence.digest
                    r["detail"] = ans.evidence.detail
                    r["evidence"] = {"http_status": ans.evidence.http_status,
                                     "error_code": ans.evidence.error_code,
                                     "checked_at": ans.evidence.checked_at,
                                     "platforms": list(ans.evidence.platforms)}  # fmt: skip
        finally:
            registry.close()
    if args.format == "json":
        sys.stdout.write(json.dumps({"results": results}, indent=2) + "\n")
    else:
        for r in results:
            shown = r["reference"] or r["error"]
            extra = f"  {r['digest']}" if r.get("digest") else ""
            sys.stdout.write(printable(f"{r['input']:<40} {r['status']:<14} {shown}{extra}") + "\n")
    return EXIT_OK if all(r["valid"] for r in results) else EXIT_FINDINGS


# --- the App --------------------------------------------------------------------------------------


def _no_args(p: argparse.ArgumentParser) -> None:
    p.epilog = "Configured from the environment: see .env.example."


@command("serve", "run the webhook receiver (gunicorn on $HOST:$PORT, default 127.0.0.1:3000)", _no_args)
def serve_command(args: argparse.Namespace) -> int:
    from bot.settings import SettingsError
    from bot.web import serve

    try:
        return serve()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


@command("worker", "run a job worker (huey: SQLite under $PULLABLE_DATA_DIR, or $REDIS_URL)", _no_args)
def worker_command(args: argparse.Namespace) -> int:
    from bot.jobs.worker import main as worker_main
    from bot.settings import SettingsError

    try:
        return worker_main()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


# --- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from bot import __version__

    parser = argparse.ArgumentParser(
        prog="pullable",
        description="Keep every container image reference in a repository pullable.",
    )
    parser.add_argument("--version", action="version", version=f"pullable {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, setup, run) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        setup(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        sys.stderr.write(f"pullable: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
