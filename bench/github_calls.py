"""GitHub API budget of the PR writer, counted on the fake GitHub (issue 6 §6).

For k files holding a retired reference, runs the scan job and the PR publisher in-process against
the fake GitHub and a loopback registry, and prints the calls each step costs:

- open:    a push adds k rotten files -> scan + one PR changing k files (target <= 6 + labels)
- update:  a push adds one more rotten file -> the same PR updated in place
- rescan:  a scheduled full rescan of the unchanged repository (target <= 3; 304s are free)
- install: the first full scan of a small repository where three rules fire: three PRs opened at
           once (target <= 6 per PR opened, labels apart; no error answers; labels, the pull
           list and the tree read once per run)
- push:    an unrelated file pushed to the default branch, then a scan: commits and branch
           moves on the open PRs' branches (target 0: no PR's CI re-run for nothing)
- large:   the first scan of a repository with --large manifests (default 500): API calls read
           from one archive, against the same scan blob by blob (target: bounded, not per file)

Token minting (once an hour per repository and permission set) is listed apart.

    .venv/bin/python bench/github_calls.py [--files 1,5,20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import github  # noqa: E402
from bot.github import WRITE_PERMISSIONS, GitHubApp  # noqa: E402
from bot.jobs import inventory, reader  # noqa: E402
from bot.jobs.publish import publish  # noqa: E402
from tests.jobs.pr_world import CONFIG, CRON, DEPLOY, push_images  # noqa: E402
from tests.support.fakegithub import FakeGitHub  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402
from tests.support.webhooks import app_settings  # noqa: E402

LABELS = ("issues/create-label", "issues/add-labels", "issues/list-labels-for-repo")
BRANCH_WRITES = ("git/create-tree", "git/create-commit", "git/create-ref", "git/update-ref")
COMPOSE = "services:\n  cache:\n    image: bitnami/budget-cache:7.2\n  web:\n    image: budget-web:1.25.99\n"
# The dashboard issue (bot.jobs.dashboard) is where `/pullable ignore` lives; the publisher reads
# it once per run. Listed apart: it is the dashboard's budget, not the pull request's.
DASHBOARD = ("issues/list-for-repo", "issues/get")


def counted(fake: FakeGitHub) -> Counter[str]:
    """Rate-limited requests by operation (304s are free; tokens apart)."""
    return Counter(
        e.operation or e.path for e in fake.log if e.status != 304 and "access_tokens" not in e.path
    )


def show(name: str, c: Counter[str], target: str) -> int:
    labels = sum(c[o] for o in LABELS)
    board = sum(c[o] for o in DASHBOARD)
    pr = sum(c.values()) - labels - board
    detail = ", ".join(f"{op} {n}" for op, n in sorted(c.items()))
    print(f"  {name:<7} {pr:>3} calls  (+ {labels} labels, + {board} dashboard read)  target {target}")
    print(f"          {detail}")
    return pr


def run(k: int, tmp: Path, reg: LocalRegistry) -> None:
    os.environ["PULLABLE_DATA_DIR"] = str(tmp / "data")
    with FakeGitHub() as fake:
        app = fake.create_app()
        inst = fake.create_installation(app)
        repo = fake.create_repo(
            "octo-org/demo", {".github/pullable.yml": CONFIG, "README.md": "# demo\n"}, installation=inst
        )
        settings = app_settings(tmp / "data", app, fake.base_url, reg)
        key = (settings.app_id, settings.github_api_url, str(settings.data_dir))
        github._apps[key] = GitHubApp(
            app.id, app.private_key, fake.base_url, settings.data_dir, sleep=lambda s: None, pacing=False
        )

        def step(paths: list[str] | None) -> Counter[str]:
            fake.reset_log()
            outcome = inventory.take(settings, inst.id, repo.full_name, None, paths)
            assert outcome is not None
            scan = counted(fake)
            fake.reset_log()
            s = inventory.session(settings, inst.id, repo.full_name, WRITE_PERMISSIONS)
            try:
                publish(s, outcome)
            finally:
                s.close()
            detail = ", ".join(f"{o} {n}" for o, n in sorted(scan.items()))
            print(f"  (scan   {sum(scan.values()):>3} calls: {detail})")
            return counted(fake)

        print(f"k = {k} file(s)")
        files = {f"k8s/job-{i}.yaml": DEPLOY.replace("migrate", f"migrate-{i}") for i in range(k)}
        fake.push(repo, files)
        step(None)  # warm: tokens minted, first PR opened; measured again below on a fresh branch
        fixed = {p: t.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4") for p, t in files.items()}
        fake.push(repo, fixed)
        step(None)  # the references fixed on main: the PR retires
        fake.push(repo, files)
        opened = show("open", step(sorted(files)), "<= 6 + labels")
        fake.push(repo, {"k8s/cleanup.yaml": CRON})
        updated = show("update", step(["k8s/cleanup.yaml"]), "-")
        rescan = show("rescan", step(None), "<= 3")
        ok = opened <= 6 and rescan <= 3
        print(f"  {'ok' if ok else 'OVER BUDGET'}: open {opened}, update {updated}, rescan {rescan}\n")


def install(tmp: Path, reg: LocalRegistry) -> None:
    """The first full scan of a small repository where three rules fire, then an unrelated push."""
    os.environ["PULLABLE_DATA_DIR"] = str(tmp / "data")
    reg.push("bitnamilegacy/budget-cache", "7.2")
    reg.push("library/budget-web", "1.25.3")
    with FakeGitHub() as fake:
        app = fake.create_app()
        inst = fake.create_installation(app)
        files = {".github/pullable.yml": CONFIG, "README.md": "# demo\n", "k8s/job.yaml": DEPLOY,
                 "compose.yaml": COMPOSE}  # fmt: skip
        repo = fake.create_repo("octo-org/demo", files, installation=inst)
        settings = app_settings(tmp / "data", app, fake.base_url, reg)
        key = (settings.app_id, settings.github_api_url, str(settings.data_dir))
        github._apps[key] = GitHubApp(
            app.id, app.private_key, fake.base_url, settings.data_dir, sleep=lambda s: None, pacing=False
        )

        def run_once() -> tuple[Counter[str], Counter[str], int, list[int]]:
            fake.reset_log()
            inv = inventory.take(settings, inst.id, repo.full_name, None, None)
            assert inv is not None
            scan = counted(fake)
            fake.reset_log()
            s = inventory.session(settings, inst.id, repo.full_name, WRITE_PERMISSIONS)
            try:
                report = publish(s, inv)
            finally:
                s.close()
            errors = sum(1 for e in fake.log if e.status >= 400 and "access_tokens" not in e.path)
            return scan, counted(fake), errors, report.opened

        scan, c, errors, opened = run_once()
        n = max(len(opened), 1)
        labels = sum(c[o] for o in LABELS)
        board = sum(c[o] for o in DASHBOARD)
        pr = sum(c.values()) - labels - board
        detail = ", ".join(f"{op} {k}" for op, k in sorted(c.items()))
        print(f"install: {len(opened)} PRs opened; scan {sum(scan.values())} calls")
        print(
            f"  publisher {sum(c.values())} calls = {pr} PR + {labels} labels + {board} dashboard read;"
            f" error answers {errors}"
        )
        print(f"          {detail}")
        print(
            f"  per PR opened: {pr / n:.1f} (labels apart, target <= 6), {sum(c.values()) / n:.1f} all in;"
            f" create-label {c['issues/create-label']}, pulls/list {c['pulls/list']},"
            f" tree re-reads {sum(1 for e in fake.log if e.operation == 'git/get-tree')}"
        )
        fake.push(repo, {"docs/notes.md": "notes\n"})
        _, c, errors, _ = run_once()
        rewrites = sum(c[o] for o in BRANCH_WRITES)
        print(
            f"push:    an unrelated file pushed: {rewrites} branch writes on the {n} open PRs"
            f" (target 0), {sum(c.values())} publisher calls\n"
        )


def large(tmp: Path, n: int) -> None:
    """A first scan of ``n`` manifests (and as many files never read), archive vs blob by blob."""
    deploy = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n"
    deploy += "    - image: team/app-{i}:1.{i}\n"
    files = {f"apps/a{i:05}/pod.yaml": deploy.format(i=i) for i in range(n)}
    files |= {f"src/m{i:05}.py": f"print({i})\n" for i in range(n)}
    for how, minimum in (("blob by blob", 10**9), ("archive", reader.ARCHIVE_MIN_FILES)):
        reader.ARCHIVE_MIN_FILES = minimum
        with FakeGitHub() as fake:
            app = fake.create_app()
            inst = fake.create_installation(app)
            fake.create_repo("octo-org/big", files, installation=inst)
            gh = GitHubApp(app.id, app.private_key, fake.base_url, tmp / how.replace(" ", "-"), pacing=False)
            s = gh.session(inst.id, "octo-org/big")
            fake.reset_log()
            result = reader.scan_repository(s)
            calls = sum(1 for e in fake.log if e.operation != "codeload" and "access_tokens" not in e.path)
            print(
                f"large:   {n} manifests, {how:<12}: {calls:>5} API calls, {len(result.refs)} references,"
                f" {result.archived} files from the archive, {result.fetched} blobs"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default="1,5,20", help="values of k (default 1,5,20)")
    ap.add_argument("--large", type=int, default=500, help="manifests in the large first scan")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "registry").mkdir()
        reg = LocalRegistry(Path(tmp) / "registry", "open")
        try:
            push_images(reg)
            for k in (int(x) for x in args.files.split(",")):
                (Path(tmp) / f"k{k}").mkdir()
                run(k, Path(tmp) / f"k{k}", reg)
            (Path(tmp) / "install").mkdir()
            install(Path(tmp) / "install", reg)
            large(Path(tmp), args.large)
        finally:
            reg.stop()


if __name__ == "__main__":
    main()
