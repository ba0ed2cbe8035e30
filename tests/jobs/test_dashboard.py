"""The dashboard issue (issue 6 §4) against the fake GitHub: found by author and marker, edited in
place only when its text changes, every kind of problem listed, ignores kept in the marker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.github import GitHubApp, issues
from bot.github.markdown import marker
from bot.jobs import dashboard, publish, scan_repo
from bot.jobs import inventory as inventory_module
from bot.jobs.inventory import Inventory
from bot.jobs.journal import Job
from bot.jobs.queue import Queue
from bot.model import Context, Edit, Finding, Fix, ImageRef, Part, Role, ScanError, Skip, Source, Span, Status
from bot.repoconfig import RepoConfig
from tests.support.webhooks import app_settings

REPO = "octo-org/demo"


def ref(
    text: str, reference: str | None, path: str = "k8s/app.yaml", line: int = 10, skip: Skip | None = None
):
    part = Part(Role.IMAGE, text, Span(100, 100 + len(text), line, 16))
    return ImageRef(path, line, 16, Source.KUBERNETES, text, (part,), reference, skip,
                    None if skip is None else "templated", Context())  # fmt: skip


def inventory() -> list[Finding]:
    """One finding of each kind the dashboard must show, plus ones it must not."""
    kubectl = ref("bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31", line=3)
    return [
        Finding(kubectl, Status.TAG_MISSING, rule="bitnami-kubectl", fix=Fix(
            "bitnami-kubectl", "retired", kubectl.text, "alpine/kubectl:1.31.4",
            "docker.io/alpine/kubectl:1.31.4",
            edits=(Edit(kubectl.path, kubectl.parts[0].span, kubectl.text, "alpine/kubectl:1.31.4"),))),
        Finding(ref("ghcr.io/acme/private:2", "ghcr.io/acme/private:2", line=5), Status.AUTH_REQUIRED),
        Finding(ref("quay.io/gone/away:1", "quay.io/gone/away:1", line=7), Status.REPO_MISSING),
        Finding(ref("bitnami/redis:7", "docker.io/bitnami/redis:7", line=9), Status.OK, rule="bitnami-legacy",
                advice="Bitnami moved @everyone to <b>bitnamilegacy</b>; pin a digest"),
        Finding(ref("nginx:1.27", "docker.io/library/nginx:1.27", line=11), Status.OK),
        Finding(ref("{{ .Values.image }}", None, line=13, skip=Skip.TEMPLATED), Status.UNCHECKED),
    ]  # fmt: skip


def outcome(
    findings: list[Finding],
    *,
    full: bool = True,
    paths: list[str] | None = None,
    errors: list[ScanError] | None = None,
    config_error: str | None = None,
) -> Inventory:
    scope = None if full else tuple(paths or ())
    return Inventory(
        1, REPO, "main", "a" * 40, scope, tuple(findings), tuple(errors or ()), (),
        None,  # type: ignore[arg-type]  # the dashboard reads no file
        RepoConfig(), config_error, False,
    )  # fmt: skip


@pytest.fixture
def world(fake_github, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    app = fake_github.create_app()
    inst = fake_github.create_installation(app)
    repo = fake_github.create_repo(REPO, {"README.md": "# demo\n"}, installation=inst)
    settings = app_settings(tmp_path / "data", app, fake_github.base_url)
    queue = Queue(settings)
    ctx = SimpleNamespace(queue=queue)
    session = GitHubApp.from_settings(settings).session(inst.id, REPO, dashboard.PERMISSIONS)
    issues._logins.clear()
    return SimpleNamespace(fake=fake_github, app=app, inst=inst, repo=repo, ctx=ctx, session=session)


def run(world, out: Inventory, skipped: list[str] | None = None) -> None:
    dashboard.write(replace(out, installation_id=world.inst.id), skipped or [], world.ctx)


def the_issue(world):
    (issue,) = [i for i in world.repo.issues.values() if i.pull is None and i.user == "pullable[bot]"]
    return issue


def test_runs_after_the_pr_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan job composes its writers explicitly: inventory, then the PR writer, then the
    dashboard with the branches the PR writer could not use; nothing for an archived repository
    or one without a commit."""
    calls: list[tuple[str, object]] = []
    inv = outcome(inventory())
    taken: list[Inventory | None] = [inv, replace(inv, archived=True), None]
    monkeypatch.setattr(inventory_module, "take", lambda *a, **kw: taken.pop(0))
    monkeypatch.setattr(
        publish, "write", lambda i, ctx: calls.append(("prs", i)) or publish.Report(skipped=["pullable/x"])
    )
    monkeypatch.setattr(dashboard, "write", lambda i, skipped, ctx: calls.append(("dashboard", skipped)))
    job = Job("scan", {"installation_id": 1, "repo": REPO, "ref": None, "paths": None, "compare": []})
    notes: list[str] = []
    journal = SimpleNamespace(note=lambda key, doc: notes.append(key))
    ctx = SimpleNamespace(queue=SimpleNamespace(settings=SimpleNamespace(report_only=False), journal=journal))
    scan_repo.scan_job(job, ctx)  # type: ignore[arg-type]
    assert calls == [("prs", inv), ("dashboard", ["pullable/x"])]
    assert notes == ([f"scanned:{REPO.lower()}"] if inv.full else [])
    scan_repo.scan_job(job, ctx)  # type: ignore[arg-type]  # archived
    scan_repo.scan_job(job, ctx)  # type: ignore[arg-type]  # no commit yet
    assert len(calls) == 2


def test_lists_every_kind_of_problem(world) -> None:
    run(world, outcome(inventory(), errors=[ScanError("charts/x/values.yaml", "invalid YAML at line 3")]))
    issue = the_issue(world)
    assert issue.title == "Pullable: image health"
    body = issue.body
    for text in ("bitnami/kubectl:1.31", "alpine/kubectl:1.31.4", "ghcr.io/acme/private:2", "auth-required",
                 "quay.io/gone/away:1", "repo-missing", "bitnami-legacy", "charts/x/values.yaml",
                 "invalid YAML at line 3", "Not checked (1)"):  # fmt: skip
        assert text in body, text
    assert "Needs attention (4)" in body  # nginx resolves and fires no rule: not listed
    assert "| `k8s/app.yaml:11`" not in body
    # text from files and registries is escaped: no mention, no HTML
    assert "@everyone" not in body and "@\u200beveryone" in body
    assert "<b>" not in body and "&lt;b&gt;" in body
    assert dashboard.read_state(world.session).ignored == set()


def test_configuration_errors_are_shown(world) -> None:
    run(world, outcome([], config_error=".github/pullable.yml: check: 'loud' is not valid"))
    assert "## Configuration" in the_issue(world).body
    assert "check: 'loud' is not valid" in the_issue(world).body


def test_nothing_to_show_creates_no_issue(world) -> None:
    ok = [f for f in inventory() if f.status is Status.OK and f.rule is None]
    run(world, outcome(ok))
    assert not world.repo.issues


def test_edited_in_place_only_when_something_changed(world) -> None:
    run(world, outcome(inventory()))
    number = the_issue(world).number
    world.fake.reset_log()
    run(world, outcome(inventory()))  # same inventory: no write at all
    assert world.fake.count(method="PATCH") == 0 and world.fake.count(method="POST") == 0
    fewer = [f for f in inventory() if f.status is not Status.REPO_MISSING]
    run(world, outcome(fewer))
    assert world.fake.count(method="PATCH", path=f"/issues/{number}$") == 1
    assert "quay.io/gone/away" not in the_issue(world).body
    assert len([i for i in world.repo.issues.values() if i.pull is None]) == 1


def test_partial_scans_keep_other_files_errors(world) -> None:
    run(world, outcome(inventory(), errors=[ScanError("a.yaml", "bad"), ScanError("b.yaml", "worse")]))
    run(world, outcome(inventory(), full=False, paths=["a.yaml"], errors=[]))
    body = the_issue(world).body
    assert "b.yaml" in body and "`a.yaml`" not in body


def test_found_by_author_and_marker_not_by_title(world) -> None:
    # A person opens a look-alike issue with a marker that would ignore an image: not the dashboard.
    fake_marker = marker("dashboard", {"v": 1, "ignored": ["docker.io/bitnami/kubectl"]})
    world.fake._new_issue(world.repo, dashboard.TITLE, f"spoof {fake_marker}", "mallory")
    # The App's own issue with the dashboard's title but no marker: not the dashboard either.
    issues.create_issue(world.session, dashboard.TITLE, "an unrelated note")
    assert dashboard.read_state(world.session).issue_number is None
    run(world, outcome(inventory()))
    state = dashboard.read_state(world.session)
    assert state.issue_number is not None and state.ignored == set()
    assert "bitnami/kubectl:1.31" in world.repo.issues[state.issue_number].body


def test_ignore_and_unignore_keep_state_in_the_marker(world) -> None:
    run(world, outcome(inventory()))
    number = the_issue(world).number
    assert dashboard.ignore(world.session, world.ctx.queue.journal, "docker.io/bitnami/kubectl")
    assert not dashboard.ignore(world.session, world.ctx.queue.journal, "docker.io/bitnami/kubectl")
    state = dashboard.read_state(world.session)
    assert state.issue_number == number and state.ignored == {"docker.io/bitnami/kubectl"}
    assert state.ignores("docker.io/bitnami/kubectl:1.99")  # every tag of the name
    assert not state.ignores("docker.io/bitnami/redis:7")
    body = world.repo.issues[number].body
    assert "Needs attention (3)" in body and "## Ignored (1)" in body
    assert "/pullable unignore bitnami/kubectl" in body
    # a scan keeps the ignore (the state survives re-rendering)
    run(world, outcome(inventory()))
    assert dashboard.read_state(world.session).ignored == {"docker.io/bitnami/kubectl"}
    assert dashboard.unignore(world.session, world.ctx.queue.journal, "docker.io/bitnami/kubectl")
    assert not dashboard.unignore(world.session, world.ctx.queue.journal, "docker.io/bitnami/kubectl")
    assert dashboard.read_state(world.session).ignored == set()
    assert "Needs attention (4)" in world.repo.issues[number].body


def test_ignore_before_any_scan_creates_the_dashboard(world) -> None:
    assert dashboard.ignore(world.session, world.ctx.queue.journal, "docker.io/library/nginx")
    assert dashboard.read_state(world.session).ignored == {"docker.io/library/nginx"}
    assert "No scan has finished yet" in the_issue(world).body


def test_a_closed_dashboard_is_kept_current_but_not_reopened(world) -> None:
    run(world, outcome(inventory()))
    issue = the_issue(world)
    world.fake.close_issue(world.repo, issue.number)
    run(world, outcome(inventory()[:2]))
    assert issue.state == "closed" and "quay.io/gone/away" not in issue.body


def test_edited_markers_are_validated() -> None:
    good = marker("dashboard", {"v": 1, "ignored": ["docker.io/library/nginx", "nginx", "../x", 3]})
    assert dashboard.parse_state(f"text\n{good}") == {"docker.io/library/nginx"}
    assert dashboard.parse_state("<!-- pullable:dashboard {not json} -->") == set()
    assert dashboard.parse_state(None) == set()


def test_render_is_deterministic_and_fits() -> None:
    docs = {"sha": "b" * 40, "ref": "main", "findings": [f.to_json() for f in inventory()], "errors": []}
    assert dashboard.render(docs, set()) == dashboard.render(dict(docs), set())
    many = {**docs, "findings": [f.to_json() for f in inventory()] * 2000}
    body = dashboard.render(many, {"docker.io/library/nginx"})
    assert len(body) < 65536
    assert body.rstrip().endswith("-->") and dashboard.parse_state(body) == {"docker.io/library/nginx"}
