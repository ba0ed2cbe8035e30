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

if TYPE_CHECKING:
    from bot.model import Finding
    from bot.registry import Registry
    from bot.scan import ScanResult

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
    _config_arg(p)


def findings_for(result: ScanResult) -> list[Finding]:
    """One Finding per reference, unchecked (or invalid when the grammar refuses it)."""
    from bot.model import Finding, Skip, Status

    return [
        Finding(ref, Status.INVALID if ref.skip is Skip.INVALID else Status.UNCHECKED) for ref in result.refs
    ]


def resolve(findings: list[Finding], registry: Registry) -> None:
    """Fill status and evidence from the registry, asking each distinct reference once."""
    unique = sorted({f.ref.reference for f in findings if f.ref.reference and f.ref.artifact == "image"})
    answers = registry.check_many(unique)
    for f in findings:
        ans = answers.get(f.ref.reference or "")
        if ans is not None:
            f.status, f.evidence = ans.status, ans.evidence


def _write(args: argparse.Namespace, text: str) -> None:
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@command("scan", "report every image reference under PATH", _scan_setup)
def scan_command(args: argparse.Namespace) -> int:
    from bot import report
    from bot.scan import scan_single, scan_tree

    target = Path(args.path)
    if not target.exists():
        raise UsageError(f"{args.path}: no such file or directory")
    result = scan_tree(target, progress=_progress()) if target.is_dir() else scan_single(target)
    findings = findings_for(result)
    if not args.offline:
        registry = _open_registry(args)
        try:
            resolve(findings, registry)
        finally:
            registry.close()
    if args.format == "json":
        _write(args, report.to_json(findings, result.errors))
    elif args.format == "sarif":
        _write(args, report.to_sarif(findings, result.errors))
    else:
        _write(args, report.to_table(findings, result.errors, result.files))
    return EXIT_OK


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
            sys.stdout.write(f"{r['input']:<40} {r['status']:<14} {shown}{extra}\n")
    return EXIT_OK if all(r["valid"] for r in results) else EXIT_FINDINGS


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
