"""The pull-secret check end to end: `pullable scan` of a realistic GitOps repository whose private
images live on a real htpasswd registry on loopback (``registry.example.com`` is pointed at it),
public ones on an open one. Every route (pod, ServiceAccount, Helm values, kustomize namespace,
Argo CD destination) and every finding, and no credential from a Secret in any output or log."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from bot import cli, pullsecrets, report
from bot.model import Context, Finding, ImageRef, Part, Role, Source, Span, Status
from tests.support.helmrepo import HelmRepo, chart
from tests.support.registry import PASSWORD_ENV

pytestmark = pytest.mark.registry

FIXTURE = Path(__file__).parent / "fixtures" / "pullsecrets" / "shop"
PRIVATE = "registry.example.com"
PUBLIC = "public.example.com"
# What the fixture's Secrets hold: none of it may ever be printed or logged.
PASSWORDS = ("Fx7-pull-s3cret-9Q", "Qy-robot-T0ken-77")
AUTH = base64.b64encode(b"deploy-bot:Fx7-pull-s3cret-9Q").decode()

PRIVATE_REPOS = ("web", "api", "toolbox", "legacy", "report", "builder", "runner", "checkout", "payments",
                 "site", "storefront", "search", "reports", "billing")  # fmt: skip


@pytest.fixture
def charts(tmp_path):
    """The chart repository argocd/billing.yaml deploys from (charts are read too, issue 12): a
    chart whose defaults name no image, so the findings are the repository's own."""
    repo = HelmRepo(tmp_path / "charts")
    repo.add(chart("billing", "2.4.1", values="replicaCount: 1\n"))
    yield repo.config_mapping("charts.example.com")["registries"]
    repo.stop()


@pytest.fixture
def shop(registry_basic, registry_open, tmp_path, monkeypatch, charts):
    """The fixture repository, its images pushed, and an operator config naming both registries
    (anonymous for the private one: its images answer auth-required; or with its credentials)."""
    monkeypatch.setenv(PASSWORD_ENV, registry_basic.password)
    for repo in PRIVATE_REPOS:
        registry_basic.push(f"shop/{repo}", "1.0")
    registry_open.push("library/redis", "7.2")
    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)

    def operator(credentials: bool) -> Path:
        mapping = registry_basic.config_mapping(host=PRIVATE, credentials=credentials)
        mapping["registries"].update(registry_open.config_mapping(host=PUBLIC)["registries"])
        mapping["registries"].update(charts)
        path = tmp_path / f"operator-{credentials}.yml"
        path.write_text(json.dumps(mapping))
        return path

    return root, operator


def _scan(root: Path, operator: Path, capsys, fmt: str = "json") -> str:
    cli.main(["scan", str(root), "--config", str(operator), "--format", fmt])
    return capsys.readouterr().out


def _ours(doc: dict) -> dict[tuple[str, str], list[dict]]:
    """Pull-secret findings by (file, rule)."""
    out: dict[tuple[str, str], list[dict]] = {}
    for f in doc["findings"]:
        if f["rule"] in pullsecrets.RULES:
            out.setdefault((f["path"], f["rule"]), []).append(f)
    return out


EXPECTED = {
    ("apps/api/deployment.yaml", pullsecrets.WRONG_NAMESPACE),  # pod route, secret only in shop
    ("apps/batch/cronjob.yaml", pullsecrets.MISSING),  # pod route, nothing listed
    ("apps/builder/deployments.yaml", pullsecrets.MISSING),  # ServiceAccount runner carries none
    ("apps/legacy/deployment.yaml", pullsecrets.UNDEFINED),  # made outside git: a note
    ("apps/tools/pod.yaml", pullsecrets.WRONG_REGISTRY),  # quay-pull holds quay.io only
    ("charts/site/values.yaml", pullsecrets.MISSING),  # global.imagePullSecrets: []
    ("deploy/argo/deployment.yaml", pullsecrets.WRONG_NAMESPACE),  # Argo CD destination payments
    ("kustomize/base/deployment.yaml", pullsecrets.WRONG_NAMESPACE),  # overlay namespace staging
    ("flux/storefront.yaml", pullsecrets.WRONG_NAMESPACE),  # HelmRelease search -> namespace search
    ("flux/reports.yaml", pullsecrets.MISSING),  # imagePullSecrets: [] in namespace batch
    ("argocd/billing.yaml", pullsecrets.WRONG_NAMESPACE),  # helm.values string, destination billing
}


@pytest.mark.parametrize("credentials", [False, True], ids=["auth-required", "operator-credentials"])
def test_every_route_and_finding(shop, capsys, credentials):
    root, operator = shop
    doc = json.loads(_scan(root, operator(credentials), capsys))
    statuses = {f["reference"]: f["status"] for f in doc["findings"]}
    want = "ok" if credentials else "auth-required"
    assert statuses[f"{PRIVATE}/shop/web:1.0"] == want
    assert statuses[f"{PUBLIC}/library/redis:7.2"] == "ok"
    ours = _ours(doc)
    assert set(ours) == EXPECTED, sorted(ours)
    for found in ours.values():
        assert len(found) == 1 and found[0]["status"] == want

    def advice(path: str, rule: str) -> str:
        (f,) = ours[(path, rule)]
        return f["advice"] or f["fix"]["advice"]

    # pod route: the namespace has a suitable secret (sealed, its only one): the fix names it
    text = advice("apps/batch/cronjob.yaml", pullsecrets.MISSING)
    assert "CronJob/nightly-report" in text and "batch-pull" in text and "Namespace batch" in text
    assert "spec.jobTemplate.spec.template.spec" in text
    # ServiceAccount route: runner is defined without secrets; builder's carries regcred (no finding)
    text = advice("apps/builder/deployments.yaml", pullsecrets.MISSING)
    assert "Deployment/runner" in text and "ServiceAccount runner" in text and "regcred" in text
    assert ours[("apps/builder/deployments.yaml", pullsecrets.MISSING)][0]["reference"].endswith("runner:1.0")
    # wrong namespace, through each way of getting a namespace
    assert "not in api" in advice("apps/api/deployment.yaml", pullsecrets.WRONG_NAMESPACE)
    assert "not in payments" in advice("deploy/argo/deployment.yaml", pullsecrets.WRONG_NAMESPACE)
    assert "Application/billing" in advice("argocd/billing.yaml", pullsecrets.WRONG_NAMESPACE)
    assert "not in staging" in advice("kustomize/base/deployment.yaml", pullsecrets.WRONG_NAMESPACE)
    text = advice("flux/storefront.yaml", pullsecrets.WRONG_NAMESPACE)
    assert "not in search" in text and "HelmRelease/search" in text and "defined in namespace shop" in text
    # wrong registry names what the secret has and what the image needs
    text = advice("apps/tools/pod.yaml", pullsecrets.WRONG_REGISTRY)
    assert "quay.io" in text and f"not for {PRIVATE}" in text
    # Helm values: nothing is suitable without a namespace: advise creating one
    text = advice("charts/site/values.yaml", pullsecrets.MISSING)
    assert "Create a kubernetes.io/dockerconfigjson Secret" in text and PRIVATE in text
    assert ours[("charts/site/values.yaml", pullsecrets.MISSING)][0]["fix"] is None
    # mechanical where the namespace has a suitable secret: an edit, proposed not advised
    mechanical = [("apps/batch/cronjob.yaml", "batch-pull"), ("apps/builder/deployments.yaml", "regcred"),
                  ("flux/reports.yaml", "batch-pull")]  # fmt: skip
    for path, secret in mechanical:
        (f,) = ours[(path, pullsecrets.MISSING)]
        assert f["advice"] is None and f["fix"]["after"] == f"imagePullSecrets: [{{name: {secret}}}]", path
        (e,) = f["fix"]["edits"]
        assert e["path"] == path and secret in e["new"] and e["old"] == ""
    # the undefined secret is a note
    (note,) = ours[("apps/legacy/deployment.yaml", pullsecrets.UNDEFINED)]
    assert "made-by-terraform" in note["advice"] and "outside git" in note["advice"]


def test_findings_in_table_and_sarif_with_levels(shop, capsys):
    root, operator = shop
    op = operator(False)
    out = root.parent / "table.txt"  # a file: lines are not cut to a terminal's width
    assert cli.main(["scan", str(root), "--config", str(op), "-o", str(out)]) == 0
    table = out.read_text()
    assert "-> imagePullSecrets: [{name: batch-pull}] [pull-secret-missing]" in table
    assert "[pull-secret-undefined]" in table and "[pull-secret-wrong-registry]" in table
    assert table.count("Pull secret made-by-terraform") == 1
    assert "15 references in" in table  # one line per finding, references counted once
    sarif = json.loads(_scan(root, op, capsys, "sarif"))
    run = sarif["runs"][0]
    levels = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"]): r["level"]
              for r in run["results"]}  # fmt: skip
    assert levels[("apps/legacy/deployment.yaml", pullsecrets.UNDEFINED)] == "note"
    assert levels[("apps/api/deployment.yaml", pullsecrets.WRONG_NAMESPACE)] == "warning"
    assert levels[("apps/batch/cronjob.yaml", pullsecrets.MISSING)] == "warning"
    rules = {r["id"]: r["shortDescription"]["text"] for r in run["tool"]["driver"]["rules"]}
    assert "only in another namespace" in rules[pullsecrets.WRONG_NAMESPACE]
    # --fail-on: the note alone does not fail at warning, the others do
    assert cli.main(["scan", str(root), "--config", str(op), "--fail-on", "error"]) == 0
    assert cli.main(["scan", str(root), "--config", str(op), "--fail-on", "warning"]) == 1
    capsys.readouterr()


def test_public_images_never_get_pull_secret_findings(registry_open, tmp_path, capsys, charts):
    """The same repository on an open registry: every image resolves anonymously, so the missing,
    misplaced and undefined secrets do not matter and nothing is said about them."""
    for repo in PRIVATE_REPOS:
        registry_open.push(f"shop/{repo}", "1.0")
    registry_open.push("library/redis", "7.2")
    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)
    mapping = registry_open.config_mapping(host=PRIVATE)
    mapping["registries"].update(registry_open.config_mapping(host=PUBLIC)["registries"])
    mapping["registries"].update(charts)
    op = tmp_path / "op.yml"
    op.write_text(json.dumps(mapping))
    doc = json.loads(_scan(root, op, capsys))
    assert {f["status"] for f in doc["findings"]} == {"ok"}
    assert _ours(doc) == {}


def test_public_images_on_a_host_with_operator_credentials_are_still_public(
    registry_open, tmp_path, capsys, monkeypatch, charts
):
    """Credentials for a registry (Docker Hub's rate limits, a Docker login) do not make its
    public images private: they are asked again anonymously, and resolve."""
    for repo in PRIVATE_REPOS:
        registry_open.push(f"shop/{repo}", "1.0")
    registry_open.push("library/redis", "7.2")
    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)
    monkeypatch.setenv(PASSWORD_ENV, "rate-limit-token")
    creds = {"endpoint": registry_open.url, "username": "robot", "password_env": PASSWORD_ENV}
    op = tmp_path / "op.yml"
    op.write_text(json.dumps({"registries": {PRIVATE: creds, PUBLIC: creds, **charts}}))
    doc = json.loads(_scan(root, op, capsys))
    assert {f["status"] for f in doc["findings"]} == {"ok"}
    assert _ours(doc) == {}


def test_no_credential_from_a_secret_reaches_any_output_or_log(shop, capsys, caplog, monkeypatch):
    root, operator = shop
    monkeypatch.setenv("COLUMNS", "400")  # the table's lines are not cut (the rule ids stay whole)
    caplog.set_level("DEBUG")
    blob = (root / "secrets" / "regcred.yaml").read_text().split(".dockerconfigjson: ")[1].strip()
    seen = []
    for credentials in (False, True):
        op = operator(credentials)
        for fmt in ("table", "json", "sarif"):
            out = _scan(root, op, capsys, fmt)
            assert "pull-secret-wrong-namespace" in out and "made-by-terraform" in out, fmt
            seen.append(out)
        cli.main(["fix", str(root), "--config", str(op), "--dry-run"])
        both = capsys.readouterr()
        seen += [both.out, both.err]
    everything = "\n".join(seen) + caplog.text
    for secret in (*PASSWORDS, AUTH, blob, blob[:40], "deploy-bot", "shop+robot", "AgBy3i4OJSWK"):
        assert secret not in everything, secret


def test_fix_adds_the_pull_secret_with_minimal_edits_and_then_there_is_nothing_to_say(shop, capsys):
    root, operator = shop
    op = operator(False)
    before = {p: (root / p).read_text() for p in ("apps/batch/cronjob.yaml", "apps/builder/deployments.yaml",
                                                   "flux/reports.yaml")}  # fmt: skip
    untouched = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}
    assert cli.main(["fix", str(root), "--config", str(op), "--dry-run"]) == 0
    dry = capsys.readouterr()
    assert "+          imagePullSecrets:\n+            - name: batch-pull\n" in dry.out
    assert (root / "apps/batch/cronjob.yaml").read_text() == before["apps/batch/cronjob.yaml"]
    assert cli.main(["fix", str(root), "--config", str(op)]) == 0
    out = capsys.readouterr().out
    assert "[pull-secret-missing]" in out
    cron = (root / "apps/batch/cronjob.yaml").read_text()
    assert cron == before["apps/batch/cronjob.yaml"].replace(
        '              args: ["--since", "24h"]\n',
        '              args: ["--since", "24h"]\n'
        "          imagePullSecrets:\n            - name: batch-pull\n",
    )
    deployments = (root / "apps/builder/deployments.yaml").read_text()
    assert deployments == before["apps/builder/deployments.yaml"].replace(
        "          image: registry.example.com/shop/runner:1.0\n",
        "          image: registry.example.com/shop/runner:1.0\n"
        "      imagePullSecrets:\n        - name: regcred\n",
    )  # the runner's pod only: builder's has its ServiceAccount's secret
    reports = (root / "flux/reports.yaml").read_text()
    assert reports == before["flux/reports.yaml"].replace(
        "imagePullSecrets: []  #", "imagePullSecrets: [{name: batch-pull}]  #"
    )
    changed = {p for p, data in untouched.items() if (root / p).read_bytes() != data}
    assert changed == set(before)
    # nothing is missing any more where a fix was possible; a second run changes nothing
    doc = json.loads(_scan(root, op, capsys))
    assert {k for k in _ours(doc) if k[1] == pullsecrets.MISSING} == {
        ("charts/site/values.yaml", pullsecrets.MISSING)
    }
    assert cli.main(["fix", str(root), "--config", str(op)]) == 0
    assert "changed 0 file(s)" in capsys.readouterr().out
    assert {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")} != untouched


# --- the check on its own (no registry needed) ---------------------------------------------------


def test_note_rule_is_a_note_for_every_output():
    ref = ImageRef("a.yaml", 1, 1, Source.KUBERNETES, "x/y:1", (Part(Role.IMAGE, "x/y:1", Span(0, 5, 1, 1)),),
                   "docker.io/x/y:1", context=Context())  # fmt: skip
    assert pullsecrets.UNDEFINED in report.NOTE_RULES
    assert report.level(Finding(ref, Status.AUTH_REQUIRED, rule=pullsecrets.UNDEFINED)) == "note"
    assert report.level(Finding(ref, Status.AUTH_REQUIRED, rule=pullsecrets.MISSING)) == "warning"


def test_host_matching_follows_the_kubelet():
    assert pullsecrets.covers(["registry.example.com"], "registry.example.com")
    assert pullsecrets.covers(["*.example.com"], "registry.example.com")
    assert not pullsecrets.covers(["*.example.com"], "a.b.example.com")
    assert not pullsecrets.covers(["example.com"], "registry.example.com")
    assert not pullsecrets.covers(["registry.example.com"], "registry.example.com:5000")


def _checked(tmp_path: Path, files: dict[str, str]) -> list[Finding]:
    """The check on a small repository whose every image answered auth-required."""
    from bot.scan import LocalRepo, scan_tree

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    scanned = scan_tree(tmp_path)
    found = [Finding(r, Status.AUTH_REQUIRED) for r in scanned.refs]
    return pullsecrets.check(found, scanned.facts, None, LocalRepo(tmp_path))


PULL = """apiVersion: v1
kind: Secret
metadata: {name: regcred, namespace: shop}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"registry.example.com": {}}}'
"""


def test_the_fix_lands_in_the_right_document_after_a_comment_header(tmp_path):
    text = (
        "# generated by hand\n---\napiVersion: v1\nkind: ServiceAccount\n"
        "metadata: {name: app, namespace: shop}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: shop}\nspec:\n  containers:\n"
        "    - name: app\n      image: registry.example.com/shop/app:1.0\n"
    )
    (f,) = _checked(tmp_path, {"pull.yaml": PULL, "app.yaml": text})
    assert f.rule == pullsecrets.MISSING and f.fix is not None
    (e,) = f.fix.edits
    from bot.edit import apply

    assert apply(text.encode(), [e]).decode() == text + "  imagePullSecrets:\n    - name: regcred\n"


def test_no_fix_inside_a_list_or_across_namespaces_only_advice(tmp_path):
    listed = (
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n"
        "    metadata: {name: a, namespace: shop}\n    spec:\n      containers:\n"
        "        - {name: a, image: registry.example.com/shop/a:1.0}\n"
    )
    (f,) = _checked(tmp_path, {"pull.yaml": PULL, "list.yaml": listed})
    assert f.rule == pullsecrets.MISSING and f.fix is None and "regcred" in (f.advice or "")


def test_a_fix_that_would_edit_something_else_is_refused(tmp_path):
    """The edit is read back: were the document index off (a ServiceAccount where the pod was
    expected), the new pod spec it would create is caught and nothing is proposed."""
    from bot.scan import LocalRepo

    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app}\n"
    (tmp_path / "sa.yaml").write_text(sa)
    wanted = pullsecrets._Insert(
        "sa.yaml", 0, ("spec", "template", "spec", "imagePullSecrets"), "x", pod=True
    )
    problem = pullsecrets._plan(LocalRepo(tmp_path), wanted)
    assert isinstance(problem, str) and "edit it by hand" in problem
    wanted = pullsecrets._Insert("gone.yaml", 0, ("spec", "imagePullSecrets"), "x", pod=True)
    assert pullsecrets._plan(LocalRepo(tmp_path), wanted) == "gone.yaml cannot be read"


def test_two_images_of_one_pod_get_one_edit(tmp_path):
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: two, namespace: shop}\nspec:\n  containers:\n"
        "    - {name: a, image: registry.example.com/shop/a:1.0}\n"
        "    - {name: b, image: registry.example.com/shop/b:1.0}\n"
    )
    first, second = _checked(tmp_path, {"pull.yaml": PULL, "pod.yaml": pod})
    assert first.fix is not None and len(first.fix.edits) == 1
    assert second.fix is None and "once, for all its images" in (second.advice or "")


def test_public_and_unjudged_images_are_left_alone(tmp_path):
    from bot.scan import scan_tree

    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers:\n    - {name: a, image: nginx:1.27}\n"
    )
    scanned = scan_tree(tmp_path)
    for status in (Status.OK, Status.UNCHECKED, Status.TAG_MISSING, Status.UNREACHABLE):
        assert pullsecrets.check([Finding(r, status) for r in scanned.refs], scanned.facts, None) == []
    assert (
        len(pullsecrets.check([Finding(r, Status.AUTH_REQUIRED) for r in scanned.refs], scanned.facts, None))
        == 1
    )


def test_facts_are_gathered_only_when_an_image_needs_them(tmp_path):
    from bot.scan import scan_tree

    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers:\n    - {name: a, image: nginx:1.27}\n"
    )
    scanned = scan_tree(tmp_path)
    calls: list[int] = []

    def gather():
        calls.append(1)
        return scanned.facts

    assert pullsecrets.check([Finding(r, Status.OK) for r in scanned.refs], gather, None) == []
    assert calls == []
    assert pullsecrets.check([Finding(r, Status.AUTH_FAILED) for r in scanned.refs], gather, None)
    assert calls == [1]


def test_one_file_alone_is_not_judged(shop, capsys):
    """`scan FILE` sees neither the Secrets nor the ServiceAccounts of the repository: saying a
    pull secret is missing or undefined from there would be wrong, so nothing is said."""
    root, operator = shop
    doc = json.loads(_scan(root / "apps" / "legacy" / "deployment.yaml", operator(False), capsys))
    assert doc["findings"] and _ours(doc) == {}


def test_the_repository_may_disable_a_pull_secret_rule(shop, capsys):
    root, operator = shop
    (root / ".github").mkdir()
    (root / ".github" / "pullable.yml").write_text("rules:\n  disable: [pull-secret-undefined]\n")
    ours = _ours(json.loads(_scan(root, operator(False), capsys)))
    assert set(ours) == {k for k in EXPECTED if k[1] != pullsecrets.UNDEFINED}
    (root / ".github" / "pullable.yml").write_text("rules:\n  disable: [pull-secret-missin]\n")
    assert cli.main(["scan", str(root), "--config", str(operator(False))]) == 2
    assert "unknown rule 'pull-secret-missin'" in capsys.readouterr().err
