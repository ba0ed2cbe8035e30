"""The fix pipeline end to end: golden before/after trees for every file kind and rule (against
a registry in a dict), re-scan verification that drops bad edits, idempotence, and `pullable fix`
against a real loopback registry."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from bot import pipeline, repoconfig, rules
from bot.model import Edit, Finding, Status
from bot.repoconfig import RepoConfig
from bot.scan import LocalRepo, scan_tree
from tests.rules.fakes import FakeLookup, digest

TABLE = rules.load()
CASES = Path(__file__).parent / "fixtures" / "fix"
UPDATE = os.environ.get("PULLABLE_UPDATE_GOLDEN") == "1"  # rewrite after/ trees (review the diff!)

REGISTRY = FakeLookup(
    {
        "docker.io/bitnami/kubectl": {"latest": digest("bk")},
        "docker.io/alpine/kubectl": {
            "1.31.5": digest("k31"),
            "1.33.3": digest("k333"),
            "1.33.4": digest("k334"),
        },
        "docker.io/bitnami/postgresql": {"latest": digest("bp")},
        "docker.io/bitnamilegacy/postgresql": {"16.4.0-debian-12-r0": digest("blpg")},
        "registry.k8s.io/pause": {"3.9": digest("pause")},
        "docker.io/library/nginx": {
            "1.25.3-alpine": digest("n1"),
            "1.25.5-alpine": digest("n2"),
            "1.27.3": digest("n5"),
            "latest": digest("n5"),
        },
        "docker.io/library/python": {"3.12": digest("p7"), "3.12.6": digest("p6"), "3.12.7": digest("p7")},
        "docker.io/library/redis": {
            "7.2": digest("r5"),
            "7.2.5": digest("r5"),
            "7.4.1": digest("r7"),
            "latest": digest("r7"),
        },
        "docker.io/library/postgres": {"16": digest("pg"), "16.4": digest("pg"), "16.3": digest("pg3")},
        "harbor.internal/dockerhub/library/nginx": {"1.27.3": digest("n5")},
    },
    status={"ghcr.io": Status.AUTH_REQUIRED},
)


def fix_tree(root: Path, lookup: FakeLookup = REGISTRY) -> pipeline.Result:
    """What `pullable fix` does, minus printing: scan, evaluate, apply, write."""
    repo = LocalRepo(root)
    config = repoconfig.read(repo, TABLE)
    scan = scan_tree(root, ignore=config.ignore_paths)
    assert not scan.errors, scan.errors
    result = pipeline.run(repo, scan.refs, lookup, config, TABLE)
    for path, data in result.files.items():
        (root / path).write_bytes(data)
    return result


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_golden_fix_tree(case, tmp_path):
    work = tmp_path / "repo"
    shutil.copytree(CASES / case / "before", work)
    result = fix_tree(work)
    assert not result.dropped, result.dropped
    expected = CASES / case / "after"
    if UPDATE:
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(work, expected)
    assert tree(work) == tree(expected)
    again = fix_tree(work)  # idempotent: the fixed tree has nothing left to fix
    assert again.files == {} and again.applied == []


def test_golden_cases_cover_every_fixing_rule_and_edited_file_kind(tmp_path):
    fired: set[str] = set()
    kinds: set[str] = set()
    for case in CASES.iterdir():
        work = tmp_path / case.name
        shutil.copytree(case / "before", work)
        for f in fix_tree(work).applied:
            assert f.fix is not None
            fired.add(f.fix.rule)
            kinds.add(str(f.ref.source))
    assert fired >= {"bitnami-kubectl", "bitnami-retired", "k8s-registry-move", "floating-latest",
                     "floating-minor", "tag-missing", "digest-missing", "mirror"}  # fmt: skip
    assert kinds >= {"kubernetes", "helm-values", "compose", "dockerfile", "kustomize", "github-actions"}


def test_findings_carry_rule_fix_and_advice():
    root = CASES / "kubernetes" / "before"
    repo = LocalRepo(root)
    config = repoconfig.read(repo, TABLE)
    findings = pipeline.evaluate(scan_tree(root).refs, REGISTRY, config, TABLE)
    by_text = {f.ref.text: f for f in findings}
    kubectl = by_text["bitnami/kubectl:1.31"]
    assert kubectl.rule == "bitnami-kubectl" and kubectl.fix is not None
    assert (
        kubectl.fix.after == "alpine/kubectl:1.33.4"
        and kubectl.fix.target == "docker.io/alpine/kubectl:1.33.4"
    )
    assert kubectl.fix.digest == digest("k334") and kubectl.fix.edits
    private = by_text["ghcr.io/acme/private:1.0"]
    assert private.status is Status.AUTH_REQUIRED and private.rule == "auth-required" and private.fix is None
    assert "imagePullSecrets" in (private.advice or "")
    js = kubectl.to_json()
    assert js["rule"] == "bitnami-kubectl" and js["fix"]["after"] == "alpine/kubectl:1.33.4"


def test_offline_evaluation_proposes_nothing_unverified():
    root = CASES / "kubernetes" / "before"
    findings = pipeline.evaluate(scan_tree(root).refs, None, RepoConfig(), TABLE)
    assert all(f.fix is None for f in findings)
    pause = next(f for f in findings if "pause" in f.ref.text)
    assert pause.rule == "k8s-registry-move" and "offline" in (pause.advice or "")


def test_an_edit_the_rescan_does_not_confirm_is_dropped_with_the_reason(tmp_path):
    work = tmp_path / "repo"
    shutil.copytree(CASES / "kubernetes" / "before", work)
    repo = LocalRepo(work)
    refs = scan_tree(work).refs
    findings = pipeline.evaluate(refs, REGISTRY, repoconfig.read(repo, TABLE), TABLE)
    kubectl = next(f for f in findings if f.rule == "bitnami-kubectl")
    assert kubectl.fix is not None
    (e,) = kubectl.fix.edits
    # A wrong edit (the engine planned one thing, the bytes say another): the re-scan catches it.
    kubectl.fix = dataclasses.replace(
        kubectl.fix, edits=(dataclasses.replace(e, new="alpine/kubectl:1.33.3"),)
    )
    result = pipeline.apply(findings, repo, refs)
    assert kubectl in [f for f, _ in result.dropped]
    why = dict((id(f), w) for f, w in result.dropped)[id(kubectl)]
    assert "1.33.3" in why and "1.33.4" in why
    assert kubectl.fix.edits == () and "was not made" in (kubectl.advice or "")
    # the other fixes in the same file still go through
    assert any(f.rule == "k8s-registry-move" for f in result.applied)
    assert b"registry.k8s.io/pause:3.9" in result.files["k8s/job.yaml"]
    assert b"bitnami/kubectl:1.31" in result.files["k8s/job.yaml"]


def test_an_edit_that_changes_another_reference_is_dropped(tmp_path):
    work = tmp_path / "repo"
    shutil.copytree(CASES / "compose" / "before", work)
    repo = LocalRepo(work)
    refs = scan_tree(work).refs
    findings = pipeline.evaluate(refs, REGISTRY, RepoConfig(), TABLE)
    redis = next(f for f in findings if f.ref.text == "redis:7.2")
    assert redis.fix is not None
    data = (work / "compose.yaml").read_bytes()
    start = data.index(b"postgres:16.4")
    stray = Edit("compose.yaml", dataclasses.replace(redis.fix.edits[0].span, start=start, end=start + 13),
                 "postgres:16.4", "postgres:16.3")  # fmt: skip
    redis.fix = dataclasses.replace(redis.fix, edits=(*redis.fix.edits, stray))
    result = pipeline.apply(findings, repo, refs)
    (dropped, why), *_ = result.dropped
    assert dropped is redis and "no edit was meant for it" in why
    assert b"postgres:16.4" in result.files["compose.yaml"]


def test_edits_that_cannot_be_written_become_advice():
    root = CASES / "kustomize" / "before"
    refs = scan_tree(root).refs
    # kustomize matches on `name`; a new registry needs a newName field this entry lacks
    opts_table = rules.load_text(
        "rules:\n- id: move\n  why: w\n  match: {status: tag-missing}\n"
        "  replace: {name: 'registry.k8s.io/pause', tag: keep}\n"
    )
    lookup = FakeLookup({**REGISTRY.repos, "registry.k8s.io/pause": {"1.25.9-alpine": digest("x")}})
    (f,) = pipeline.evaluate(refs, lookup, RepoConfig(), opts_table)
    assert f.fix is not None and f.fix.edits == ()
    assert "cannot be written here" in (f.advice or "") and "by hand" in (f.advice or "")


def test_groups_by_rule_or_all(tmp_path):
    root = CASES / "kubernetes" / "before"
    config = repoconfig.read(LocalRepo(root), TABLE)
    findings = pipeline.evaluate(scan_tree(root).refs, REGISTRY, config, TABLE)
    by_rule = pipeline.groups(findings)
    assert set(by_rule) == {"bitnami-kubectl", "k8s-registry-move", "tag-missing"}
    assert list(pipeline.groups(findings, "all")) == ["all"]
    assert sum(map(len, by_rule.values())) == len(pipeline.groups(findings, "all")["all"])


@pytest.mark.parametrize(
    ("status", "rule", "levels"),
    [(Status.TAG_MISSING, None, {"error", "warning", "note"}),
     (Status.AUTH_REQUIRED, None, {"warning", "note"}),
     (Status.OK, "floating-latest", {"warning", "note"}),
     (Status.OK, None, {"note"})],
)  # fmt: skip
def test_fail_on_levels(status, rule, levels):
    f = Finding(scan_tree(CASES / "compose" / "before").refs[0], status, rule=rule)
    for threshold in pipeline.LEVELS:
        assert pipeline.fails([f], threshold) == (threshold in levels)


# --- `pullable fix` / `pullable scan` against a real registry on loopback ----------------------


@pytest.mark.registry
def test_pullable_fix_end_to_end_on_a_loopback_registry(registry_open, tmp_path, capsys):
    from bot import cli

    kubectl = registry_open.push("alpine/kubectl", "1.33.4")
    registry_open.push("alpine/kubectl", "1.33.3")
    registry_open.push("bitnami/kubectl", "latest")
    nginx = registry_open.push("library/nginx", "1.27.3")
    registry_open.push("library/nginx", "latest", content="library/nginx:1.27.3")
    registry_open.push("pause", "3.9")
    operator = tmp_path / "operator.yml"
    mapping = registry_open.config_mapping(host="docker.io")
    mapping["registries"].update(registry_open.config_mapping(host="registry.k8s.io")["registries"])
    mapping["registries"].update(registry_open.config_mapping(host="k8s.gcr.io")["registries"])
    operator.write_text(json.dumps(mapping))
    root = tmp_path / "repo"
    (root / ".github").mkdir(parents=True)
    (root / ".github" / "pullable.yml").write_text('cluster:\n  version: "1.33"\n')
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tools\nspec:\n  containers:\n"
        "    - name: kubectl\n      image: bitnami/kubectl:1.31  # old\n"
        "    - name: web\n      image: 'nginx:latest'\n"
        "    - name: pause\n      image: k8s.gcr.io/pause:3.9\n"
    )
    (root / "pod.yaml").write_text(manifest)

    # scan: rule and proposed fix per finding; --fail-on error trips on the missing tag
    scan = ["scan", str(root), "--config", str(operator)]
    assert cli.main([*scan, "--format", "json", "--fail-on", "error"]) == 1
    doc = json.loads(capsys.readouterr().out)
    by_text = {f["text"]: f for f in doc["findings"]}
    assert by_text["bitnami/kubectl:1.31"]["status"] == "tag-missing"
    assert by_text["bitnami/kubectl:1.31"]["rule"] == "bitnami-kubectl"
    assert by_text["bitnami/kubectl:1.31"]["fix"]["after"] == "alpine/kubectl:1.33.4"
    assert by_text["bitnami/kubectl:1.31"]["fix"]["digest"] == kubectl
    assert by_text["nginx:latest"]["fix"]["after"] == "nginx:1.27.3"
    assert cli.main([*scan, "--fail-on", "never"]) == 0
    capsys.readouterr()

    # --dry-run: a unified diff on stdout, nothing written
    assert cli.main(["fix", str(root), "--config", str(operator), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "-      image: bitnami/kubectl:1.31  # old" in out
    assert "+      image: alpine/kubectl:1.33.4  # old" in out
    assert "would change 1 file(s)" in err
    assert (root / "pod.yaml").read_text() == manifest

    # fix: in place, with a table; only the three values change
    assert cli.main(["fix", str(root), "--config", str(operator)]) == 0
    out = capsys.readouterr().out
    assert "pod.yaml:8  bitnami/kubectl:1.31 -> alpine/kubectl:1.33.4  [bitnami-kubectl]" in out
    assert "pod.yaml:12  k8s.gcr.io/pause:3.9 -> registry.k8s.io/pause:3.9  [k8s-registry-move]" in out
    assert "3 reference(s) fixed" in out
    assert (root / "pod.yaml").read_text() == (
        manifest.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4")
        .replace("'nginx:latest'", "'nginx:1.27.3'")
        .replace("k8s.gcr.io/pause", "registry.k8s.io/pause")
    )
    # idempotent
    assert cli.main(["fix", str(root), "--config", str(operator)]) == 0
    assert "0 reference(s) fixed, changed 0 file(s)" in capsys.readouterr().out
    assert nginx  # pushed above: nginx:latest shares its digest


def test_pullable_fix_reports_a_bad_repo_config_without_crashing(tmp_path, capsys):
    from bot import cli

    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "pullable.yml").write_text("pin: always\n")
    assert cli.main(["fix", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert ".github/pullable.yml: pin: 'always' is not valid" in err
    assert cli.main(["scan", str(tmp_path), "--offline"]) == 2
