"""The sample pull request and dashboard issue in ``docs/``, rendered by the App's own code.

``examples/`` is scanned for real and run through the real pipeline, against the demo's world
(:data:`tests.support.demo.LIVE`) served from a dict instead of a registry process, with fixed
timestamps, so the output is the same on every run. ``tests/test_samples.py`` fails when the
files in ``docs/`` differ from what this renders; regenerate them with
``.venv/bin/python -m tests.support.samples``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from bot import pipeline, repoconfig, rules
from bot.github.pulls import Pull
from bot.jobs import dashboard, pr_body
from bot.jobs.pr_state import PrState, branch_name, fingerprint, item
from bot.model import Resolution
from bot.scan import LocalRepo, scan_tree
from tests.rules.fakes import FakeLookup, digest
from tests.support.demo import HOSTS, LIVE

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CHECKED_AT = "2026-12-01T03:17:00Z"
SHA = "4f1c2e9a7b3d5e8f0a1b2c3d4e5f60718293a4b5"
GROUP = "bitnami-retired"
HEADER = (
    "<!-- Rendered from examples/ by tests/support/samples.py with the App's own templates; "
    "tests/test_samples.py keeps it current. Do not edit: run "
    "`.venv/bin/python -m tests.support.samples`. -->\n\n"
)


class _DemoWorld(FakeLookup):
    """The demo's registries as a dict: every host serves :data:`LIVE`; k8s.gcr.io is frozen."""

    def __init__(self) -> None:
        repos = {}
        for host in HOSTS:
            for repo, specs in LIVE.items():
                tags = {}
                for spec in specs:
                    tag, _, same_as = spec.partition("=")
                    tags[tag] = digest(f"{repo}:{same_as or tag}")
                repos[f"{host}/{repo}"] = tags
        super().__init__(repos)

    def check(self, reference: str) -> Resolution:
        res = super().check(reference)
        if res.evidence.checked_at is None:
            return res
        return dataclasses.replace(res, evidence=dataclasses.replace(res.evidence, checked_at=CHECKED_AT))


def render() -> dict[str, str]:
    """``{file name in docs/: text}``."""
    examples = ROOT / "examples"
    table = rules.load()
    repo = LocalRepo(examples)
    config = repoconfig.read(repo, table)
    scanned = scan_tree(examples, ignore=config.ignore_paths)
    result = pipeline.run(repo, scanned.refs, _DemoWorld(), config, table)

    applied = [f for f in result.applied if f.fix is not None and f.fix.rule == GROUP]
    advice = [
        f for f in result.findings
        if f.advice and f not in applied and f.rule == GROUP and (f.fix is None or not f.fix.edits)
    ]  # fmt: skip
    origins = {r.id: r.origin for r in table.rules}
    whys = {f.fix.rule: f.fix.why for f in applied if f.fix is not None}
    items = sorted({item(f) for f in applied})
    state = PrState(GROUP, fingerprint(items), SHA, tuple(items))
    title = pr_body.title(applied, origins)
    body = pr_body.body(applied, advice, whys, state)
    files = sorted({f.ref.path for f in applied})
    pr = (
        f"{HEADER}# {title}\n\n"
        f"_Branch `{branch_name(GROUP)}` into `main`; labels: {', '.join(config.labels) or 'none'}; "
        f"files changed: {', '.join(f'`{p}`' for p in files)}._\n\n---\n\n{body}"
    )

    doc = {
        "sha": SHA, "ref": "main", "findings": [f.to_json() for f in result.findings],
        "errors": [{"path": e.path, "message": e.message} for e in scanned.errors],
        "config_error": None, "skipped_branches": [], "scanned_at": 0,
    }  # fmt: skip
    pull = Pull(number=42, state="open", title=title, body=body, head=branch_name(GROUP), head_sha=SHA,
                base="main", base_sha=SHA, merged=False, same_repo=True)  # fmt: skip
    shown = dashboard.render(doc, {"docker.io/library/busybox"}, [pull])
    issue = f"{HEADER}# {dashboard.TITLE}\n\n---\n\n{shown}"
    return {"sample-pull-request.md": pr, "sample-dashboard-issue.md": issue}


def main() -> int:
    for name, text in render().items():
        (DOCS / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote docs/{name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
